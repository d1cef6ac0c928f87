"""Sessions and CSRF tokens of the web UI.

Owns the rule "with WP_API_KEY set, no UI page or action works until the key was typed into the login form
once": the login sets an HttpOnly, SameSite=Strict cookie holding a signed session (a random nonce and an
expiry, HMAC-signed with a key derived from the API key, so every server process sharing the key accepts it
and a restart keeps people logged in). Without a key the UI is open, as the API is, but a session cookie is
still issued silently: every action carries a CSRF token bound to that session (HMAC of its nonce), so a
foreign page that makes the browser POST to the server is refused either way.

Must never log, echo or store the API key, and never put it in a cookie.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

COOKIE = "wp_ui_session"
SESSION_SECONDS = 12 * 3600


@dataclass(frozen=True)
class Session:
    nonce: str
    expires: int


class Sessions:
    """Issues and checks session cookies and the CSRF token of each session."""

    def __init__(self, api_key: str | None) -> None:
        self.api_key = api_key
        # a key derived from the API key (never the key itself) signs sessions; without a key a per-process
        # secret does, which only costs a silent new session after a restart
        seed = ("wp-ui-session\0" + api_key).encode() if api_key else secrets.token_bytes(32)
        self._secret = hashlib.sha256(seed).digest()

    @property
    def login_required(self) -> bool:
        return self.api_key is not None

    def key_matches(self, typed: str) -> bool:
        """Whether `typed` is the API key, compared in constant time."""
        return self.api_key is not None and hmac.compare_digest(typed.strip().encode(), self.api_key.encode())

    def bearer_matches(self, authorization: str | None) -> bool:
        """`Authorization: Bearer <key>` lets scripts read UI pages as they read the API."""
        scheme, _, token = (authorization or "").partition(" ")
        return scheme.lower() == "bearer" and self.key_matches(token)

    def _sign(self, text: str) -> str:
        return hmac.new(self._secret, text.encode(), hashlib.sha256).hexdigest()

    def issue(self, now: float | None = None) -> tuple[Session, str]:
        """A new session and its cookie value."""
        session = Session(secrets.token_urlsafe(18), int((now or time.time()) + SESSION_SECONDS))
        body = f"{session.nonce}.{session.expires}"
        return session, f"{body}.{self._sign('session:' + body)}"

    def read(self, cookie: str | None, now: float | None = None) -> Session | None:
        """The session a cookie value proves, or None (absent, forged, expired)."""
        nonce, _, rest = (cookie or "").partition(".")
        expires, _, signature = rest.partition(".")
        if not nonce or not expires.isdigit() or not signature:
            return None
        if not hmac.compare_digest(signature, self._sign(f"session:{nonce}.{expires}")):
            return None
        if int(expires) < (now or time.time()):
            return None
        return Session(nonce, int(expires))

    def csrf_token(self, session: Session) -> str:
        return self._sign("csrf:" + session.nonce)

    def csrf_matches(self, session: Session | None, token: str | None) -> bool:
        return (
            session is not None and bool(token) and hmac.compare_digest(token or "", self.csrf_token(session))
        )
