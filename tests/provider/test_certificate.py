"""The hand-encoded TLS certificate is one go-plugin accepts: parseable, self-signed, for localhost, a CA,
server and client auth, and fresh for every process."""

from __future__ import annotations

import datetime as dt

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from provider.certificate import server_certificate


def test_certificate_is_a_valid_self_signed_localhost_ca() -> None:
    now = dt.datetime(2030, 5, 17, 12, 0, tzinfo=dt.UTC)
    key_pem, cert_pem, der = server_certificate(now)
    cert = x509.load_der_x509_certificate(der)
    assert x509.load_pem_x509_certificate(cert_pem) == cert
    assert b"PRIVATE KEY" in key_pem
    cert.public_key().verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(hashes.SHA256()))  # type: ignore[union-attr, call-arg, arg-type]
    assert cert.subject == cert.issuer
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "localhost"
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(eku) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    assert cert.not_valid_before_utc < now < cert.not_valid_after_utc


def test_every_certificate_has_its_own_key_and_serial() -> None:
    a, b = (x509.load_der_x509_certificate(server_certificate()[2]) for _ in range(2))
    assert a.serial_number != b.serial_number
    assert a.public_key() != b.public_key()
