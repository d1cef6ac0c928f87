"""One wp server as HttpStore talks to it: the base URL, the bearer header, one request a call.

Owns `HttpSession`, the base of HttpStore and its mixins: `_request` sends one request through
`reconciler.store.transport` (or an injected `httpx.Client`), encodes its arguments as JSON (`jsonable`, without
pydantic for what already is JSON), and turns failures into exceptions: a server that cannot be reached
(refused, reset, timed out) is a StoreError with `details["retryable"]` set, a 401 names WP_API_KEY, any other
error answer is `http_errors.error_from_response`. Also how a name becomes one URL path segment (`segment`) and
the pydantic adapters of answers that are lists of models (`list_of`), built on first use. Must never decide
anything a store decides.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast
from urllib.parse import quote

from reconciler.errors import AuthError, StoreError
from reconciler.store.http_errors import error_from_response
from reconciler.store.transport import ClientTransport, HttpTransport, Transport, TransportError

if TYPE_CHECKING:
    import httpx
    from pydantic import BaseModel, TypeAdapter

DEFAULT_TIMEOUT = 30.0
_ZERO = timedelta(0)

M = TypeVar("M")
# pydantic's adapters for the answers that are lists of models, built on first use (`list_of`)
_ADAPTERS: dict[object, object] = {}


def list_of(model: type[M]) -> TypeAdapter[list[M]]:
    """The adapter that reads an answer that is a list of `model`s."""
    adapter = _ADAPTERS.get(model)
    if adapter is None:
        from pydantic import TypeAdapter

        adapter = _ADAPTERS[model] = TypeAdapter(list[model])  # type: ignore[valid-type]
    return cast("TypeAdapter[list[M]]", adapter)


_PLAIN = frozenset({str, int, float, bool, type(None)})


def jsonable(value: Any) -> Any:
    """`value` as pydantic's `to_jsonable_python` gives it, without importing pydantic for what is already JSON
    (the usual request: a few strings, numbers, the clock) or a datetime."""
    if type(value) in _PLAIN:
        return value
    if type(value) is datetime and value.utcoffset() in (None, _ZERO):
        text = value.isoformat()  # pydantic's form: `Z` for UTC, microseconds only when there are some
        return text[:-6] + "Z" if value.tzinfo is not None else text
    if type(value) is dict and all(type(k) is str for k in value):
        return {k: jsonable(v) for k, v in value.items()}
    if type(value) is list:
        return [jsonable(v) for v in value]
    from pydantic_core import to_jsonable_python

    return to_jsonable_python(value)


def segment(name: str) -> str:
    """A name as one URL path segment. Names may contain `.`, and a segment of only dots would be collapsed by
    URL normalisation, so dots are escaped there too."""
    quoted = quote(name, safe="")
    return quoted.replace(".", "%2E") if set(name) == {"."} else quoted


class HttpSession:
    """Requests to a wp server at `base_url`, as the wp client sends them."""

    def __init__(self, base_url: str, api_key: str | None = None, client: httpx.Client | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._transport: Transport = (
            ClientTransport(client) if client is not None else HttpTransport(timeout=DEFAULT_TIMEOUT)
        )

    def close(self) -> None:
        self._transport.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------------------------------- transport

    def _request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        timeout: float | None = None,
    ) -> Any:
        url = self.base_url + path
        try:
            response = self._transport.request(
                method,
                url,
                json=jsonable(json) if json is not None else None,
                params={k: jsonable(v) for k, v in (params or {}).items() if v is not None},
                headers=self._headers,
                timeout=timeout,
            )
        except TransportError as exc:
            # `retryable`: the server may be restarting; a long-lived caller (the worker) retries these
            raise StoreError(
                f"cannot reach the wp server at {self.base_url} ({exc}); "
                "check WP_API_URL and that `wp server start` is running",
                retryable=exc.retryable,
            ) from exc
        if response.status_code == 401:
            # The server's wording speaks HTTP; a wp user sets an environment variable instead.
            wrong = "is wrong" if self._headers else "is not set"
            raise AuthError(
                f"the wp server at {self.base_url} refused the request: WP_API_KEY {wrong}; "
                "set WP_API_KEY to the server's key"
            )
        if response.is_error:
            raise error_from_response(response)
        return response.json() if response.content else None

    def _get(self, path: str, **params: Any) -> Any:
        return self._request("GET", path, params=params)

    @staticmethod
    def _body(shape: BaseModel) -> dict[str, Any]:
        return shape.model_dump(mode="json")
