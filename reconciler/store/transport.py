"""The wire under HttpStore: one HTTP request in, status and body out, connection failures as TransportError.

Owns `HttpTransport`, the default: the standard library's `http.client`, one keep-alive connection per thread
(the worker's wake long-poll runs beside its claims), HTTPS, and the `HTTP(S)_PROXY`/`NO_PROXY` variables. It is
not httpx because importing httpx costs a CLI command more than the rest of its work: httpx loads its own
command line (click, rich, pygments) and httpcore looks for trio. `ClientTransport` wraps an injected
`httpx.Client` (tests pass Starlette's TestClient). Must never interpret an answer: that is HttpStore's job.
"""

from __future__ import annotations

import json as jsonlib
import os
import select
import threading
import urllib.parse
from collections.abc import Mapping
from http.client import HTTPConnection, HTTPException, HTTPSConnection
from typing import Any, Protocol


class TransportError(Exception):
    """The server could not be reached or broke off; `retryable`: it may be restarting."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class Response(Protocol):
    @property
    def status_code(self) -> int: ...
    @property
    def content(self) -> bytes: ...
    @property
    def text(self) -> str: ...
    @property
    def reason_phrase(self) -> str: ...
    @property
    def is_error(self) -> bool: ...
    @property
    def headers(self) -> Mapping[str, str]: ...
    def json(self) -> Any: ...


class Transport(Protocol):
    def request(
        self,
        method: str,
        url: str,
        *,
        json: Any,
        params: Mapping[str, Any],
        headers: Mapping[str, str],
        timeout: float | None,
    ) -> Response: ...

    def close(self) -> None: ...


class PlainResponse:
    """An answer read whole: what HttpStore needs of httpx.Response."""

    def __init__(
        self, status_code: int, reason_phrase: str, content: bytes, headers: Mapping[str, str] | None = None
    ) -> None:
        self.status_code = status_code
        self.reason_phrase = reason_phrase
        self.content = content
        self.headers: Mapping[str, str] = headers if headers is not None else {}

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    @property
    def is_error(self) -> bool:
        return self.status_code >= 400

    def json(self) -> Any:
        return jsonlib.loads(self.content)


def query_string(params: Mapping[str, Any]) -> str:
    """httpx's query encoding: a list repeats its key, booleans are `true`/`false`."""
    pairs: list[tuple[str, str]] = []
    for key, value in params.items():
        for item in value if isinstance(value, (list, tuple)) else [value]:
            pairs.append((key, ("true" if item else "false") if isinstance(item, bool) else str(item)))
    return urllib.parse.urlencode(pairs)


class HttpTransport:
    """HTTP/1.1 over `http.client`, a keep-alive connection per thread; `timeout` is per socket operation,
    as httpx's."""

    def __init__(self, timeout: float) -> None:
        self._timeout = timeout
        self._local = threading.local()
        self._lock = threading.Lock()
        self._open: list[HTTPConnection] = []

    def close(self) -> None:
        with self._lock:
            connections, self._open = self._open, []
        for connection in connections:
            connection.close()

    def _connection(self, scheme: str, netloc: str) -> tuple[HTTPConnection, bool]:
        """This thread's connection to `netloc`, and whether requests go through a proxy (absolute URLs)."""
        key = (scheme, netloc)
        connection: HTTPConnection | None = getattr(self._local, "connections", {}).get(key)
        if connection is not None and not _idle_and_open(connection):
            connection.close()
            connection = None
        if connection is not None:
            return connection, bool(getattr(connection, "wp_proxied", False))
        host = netloc.rpartition("@")[2]
        proxy = _proxy(scheme, host)
        kind = HTTPSConnection if scheme == "https" else HTTPConnection
        proxied = False
        if proxy is None:
            connection = kind(host, timeout=self._timeout)
        elif scheme == "https":  # a CONNECT tunnel: TLS end to end
            connection = HTTPSConnection(proxy, timeout=self._timeout)
            connection.set_tunnel(host)
        else:
            connection = HTTPConnection(proxy, timeout=self._timeout)
            proxied = True
        connection.wp_proxied = proxied  # type: ignore[attr-defined]
        if not hasattr(self._local, "connections"):
            self._local.connections = {}
        self._local.connections[key] = connection
        with self._lock:
            self._open.append(connection)
        return connection, proxied

    def request(
        self,
        method: str,
        url: str,
        *,
        json: Any,
        params: Mapping[str, Any],
        headers: Mapping[str, str],
        timeout: float | None,
    ) -> PlainResponse:
        parts = urllib.parse.urlsplit(url)
        target = parts.path or "/"
        query = "&".join(q for q in (parts.query, query_string(params)) if q)
        if query:
            target += "?" + query
        sent = {"Accept": "application/json", **headers}
        body = None
        if json is not None:
            body = jsonlib.dumps(json, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()
            sent["Content-Type"] = "application/json"
        try:
            connection, proxied = self._connection(parts.scheme, parts.netloc)
            if proxied:
                target = f"{parts.scheme}://{parts.netloc}{target}"
            connection.timeout = timeout if timeout is not None else self._timeout
            if connection.sock is not None:
                connection.sock.settimeout(connection.timeout)
            connection.request(method, target, body=body, headers=sent)
            answer = connection.getresponse()
            content = answer.read()
        except (OSError, HTTPException) as exc:
            self._forget(parts.scheme, parts.netloc)
            raise TransportError(f"{type(exc).__name__}: {exc}", retryable=True) from exc
        if answer.will_close:
            self._forget(parts.scheme, parts.netloc)
        headers = {name.lower(): value for name, value in answer.getheaders()}  # looked up in lower case
        return PlainResponse(answer.status, answer.reason, content, headers)

    def _forget(self, scheme: str, netloc: str) -> None:
        connection = getattr(self._local, "connections", {}).pop((scheme, netloc), None)
        if connection is not None:
            connection.close()
            with self._lock:
                if connection in self._open:
                    self._open.remove(connection)


def _proxy(scheme: str, host: str) -> str | None:
    """The proxy's `host:port` for `host` from `HTTP_PROXY`/`HTTPS_PROXY`/`ALL_PROXY` and `NO_PROXY`."""
    if not any(name.lower().endswith("_proxy") for name in os.environ):
        return None  # the usual case, without loading urllib.request
    import urllib.request

    if urllib.request.proxy_bypass_environment(host):  # type: ignore[attr-defined]
        return None
    proxies = urllib.request.getproxies_environment()
    url = proxies.get(scheme) or proxies.get("all")
    if not url:
        return None
    return urllib.parse.urlsplit(url if "://" in url else f"http://{url}").netloc.rpartition("@")[2] or None


def _idle_and_open(connection: HTTPConnection) -> bool:
    """A kept connection the server has not closed meanwhile (it would read as EOF): else open a new one rather
    than fail the request, as httpx's pool does."""
    if connection.sock is None:
        return True  # not connected yet: connects on the next request
    try:
        readable, _, _ = select.select([connection.sock], [], [], 0)
    except (OSError, ValueError):
        return False
    return not readable


class ClientTransport:
    """An injected `httpx.Client` (e.g. Starlette's TestClient), its failures as TransportError."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def close(self) -> None:
        """The client's owner closes it."""

    def request(
        self,
        method: str,
        url: str,
        *,
        json: Any,
        params: Mapping[str, Any],
        headers: Mapping[str, str],
        timeout: float | None,
    ) -> Response:
        import httpx  # already loaded: the caller made an httpx client

        try:
            response: Response = self._client.request(
                method,
                url,
                json=json,
                params=params,
                headers=headers,
                timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT,
            )
        except httpx.HTTPError as exc:
            retryable = isinstance(exc, httpx.TransportError)
            raise TransportError(f"{type(exc).__name__}: {exc}", retryable=retryable) from exc
        return response
