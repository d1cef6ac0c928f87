"""The provider's TLS server certificate: a fresh self-signed ECDSA P-256 certificate for `localhost`.

Owns its DER encoding, written here by hand: `cryptography.x509` costs ~80 ms to import, paid by every one of
the 3-4 provider processes Terraform starts per command, while the key and the signature need only the cheap
`ec` primitives. What go-plugin checks: SAN localhost (+127.0.0.1), CA, key usage, EKU server+client auth.
Must never write the key anywhere (it lives as long as the process).
"""

from __future__ import annotations

import datetime as dt
import secrets

_ECDSA_SHA256 = "1.2.840.10045.4.3.2"
_ORGANIZATION, _COMMON_NAME = "2.5.4.10", "2.5.4.3"
_SAN, _BASIC_CONSTRAINTS, _KEY_USAGE, _EKU = "2.5.29.17", "2.5.29.19", "2.5.29.15", "2.5.29.37"
_SERVER_AUTH, _CLIENT_AUTH = "1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"
# digitalSignature, keyEncipherment, keyAgreement, keyCertSign: bits 0, 2, 4, 5 → 0b10101100, 2 unused bits
_KEY_USAGE_BITS = b"\x02\xac"


def _tlv(tag: int, body: bytes) -> bytes:
    n = len(body)
    if n < 0x80:
        return bytes([tag, n]) + body
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + body


def _seq(*parts: bytes) -> bytes:
    return _tlv(0x30, b"".join(parts))


def _oid(dotted: str) -> bytes:
    nums = [int(x) for x in dotted.split(".")]
    out = bytearray([40 * nums[0] + nums[1]])
    for n in nums[2:]:
        chunk = [n & 0x7F]
        while n > 0x7F:
            n >>= 7
            chunk.append(0x80 | (n & 0x7F))
        out.extend(reversed(chunk))
    return _tlv(0x06, bytes(out))


def _integer(value: bytes) -> bytes:
    return _tlv(0x02, b"\x00" + value if value[0] & 0x80 else value)


def _name() -> bytes:
    def rdn(oid: str, text: str) -> bytes:
        return _tlv(0x31, _seq(_oid(oid), _tlv(0x0C, text.encode())))

    return _seq(rdn(_ORGANIZATION, "HashiCorp"), rdn(_COMMON_NAME, "localhost"))


def _time(at: dt.datetime) -> bytes:
    return _tlv(0x17, at.strftime("%y%m%d%H%M%SZ").encode())


def _extension(oid: str, value: bytes, critical: bool = False) -> bytes:
    flag = _tlv(0x01, b"\xff") if critical else b""
    return _seq(_oid(oid), flag, _tlv(0x04, value))


def _extensions() -> bytes:
    san = _seq(_tlv(0x82, b"localhost"), _tlv(0x87, bytes([127, 0, 0, 1])))
    return _tlv(
        0xA3,
        _seq(
            _extension(_SAN, san),
            _extension(_BASIC_CONSTRAINTS, _seq(_tlv(0x01, b"\xff")), critical=True),
            _extension(_KEY_USAGE, _tlv(0x03, _KEY_USAGE_BITS), critical=True),
            _extension(_EKU, _seq(_oid(_SERVER_AUTH), _oid(_CLIENT_AUTH))),
        ),
    )


def server_certificate(now: dt.datetime | None = None) -> tuple[bytes, bytes, bytes]:
    """(key PEM, certificate PEM, certificate DER), valid from 30 s ago for one day."""
    import base64

    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    now = now or dt.datetime.now(dt.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    algorithm = _seq(_oid(_ECDSA_SHA256))
    serial = bytes([secrets.randbelow(0x7F) + 1]) + secrets.token_bytes(15)
    tbs = _seq(
        _tlv(0xA0, _integer(b"\x02")),  # version 3
        _integer(serial),
        algorithm,
        _name(),
        _seq(_time(now - dt.timedelta(seconds=30)), _time(now + dt.timedelta(days=1))),
        _name(),
        spki,
        _extensions(),
    )
    signature = key.sign(tbs, ec.ECDSA(hashes.SHA256()))
    der = _seq(tbs, algorithm, _tlv(0x03, b"\x00" + signature))
    body = base64.encodebytes(der).decode().replace("\n", "")
    lines = "\n".join(body[i : i + 64] for i in range(0, len(body), 64))
    cert_pem = f"-----BEGIN CERTIFICATE-----\n{lines}\n-----END CERTIFICATE-----\n".encode()
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return key_pem, cert_pem, der
