"""The warm Prefect server's socket in a deep TMPDIR: a Unix socket address holds at most 107 bytes, and a CI
runner's or pytest's temporary directory makes longer paths. The server must still listen and runs reach it,
with the socket kept in the private directory (no Prefect needed: the socket layer alone)."""

from __future__ import annotations

import os
from pathlib import Path

from reconciler.runtime import prefect_warm


def test_a_socket_deeper_than_an_address_allows_still_listens_and_connects(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    path = deep / "0123456789abcdef.sock"
    assert len(os.fsencode(str(path))) > 107  # too long to bind or connect by its path
    listener = prefect_warm._bind(path)
    assert listener is not None
    try:
        assert path.is_socket()  # in the private directory itself, not somewhere shorter
        conn = prefect_warm._connect(path)
        assert conn is not None
        accepted, _ = listener.accept()
        with conn, accepted:
            conn.sendall(b"ping\n")
            assert accepted.recv(5) == b"ping\n"
    finally:
        listener.close()


def test_a_short_socket_path_is_used_as_it_is(tmp_path: Path) -> None:
    path = tmp_path / "s.sock"
    with prefect_warm._addressable(path) as address:
        assert address == str(path)
