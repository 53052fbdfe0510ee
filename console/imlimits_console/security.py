"""Browser sessions, CSRF tokens and operators' sign-in.

Every browser gets a random session id in an HttpOnly, SameSite=Strict
cookie. Its CSRF token is an HMAC of that id under a key that lives only in
this process, so a form is accepted only from a page this console served to
the same browser. A signed-in operator's admin token stays in this process's
memory, keyed by the session id, and is never sent to the browser.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass

SESSION_COOKIE = "imlimits_console_session"
CSRF_FIELD = "csrf_token"
# A signed-in session ends after this long even if used, and the oldest end first past the cap.
SESSION_SECONDS = 12 * 3600
MAX_SESSIONS = 10_000


def new_session_id() -> str:
    return secrets.token_urlsafe(32)


class CsrfTokens:
    def __init__(self) -> None:
        self._key = secrets.token_bytes(32)

    def token(self, session_id: str) -> str:
        return hmac.new(self._key, session_id.encode(), hashlib.sha256).hexdigest()

    def valid(self, session_id: str | None, submitted: str | None) -> bool:
        if not session_id or not submitted:
            return False
        return hmac.compare_digest(self.token(session_id), submitted)


@dataclass
class SignedIn:
    token: str
    expires: float


class SignIns:
    """Signed-in sessions: session id -> the operator's admin token, in memory only."""

    def __init__(self) -> None:
        self._sessions: OrderedDict[str, SignedIn] = OrderedDict()

    def token(self, session_id: str | None) -> str | None:
        if session_id is None:
            return None
        session = self._sessions.get(session_id)
        if session is None:
            return None
        if session.expires < time.monotonic():
            del self._sessions[session_id]
            return None
        return session.token

    def sign_in(self, token: str) -> str:
        """A fresh session id for the operator: an id a page had before sign-in never gains the token."""
        session_id = new_session_id()
        self._sessions[session_id] = SignedIn(token, time.monotonic() + SESSION_SECONDS)
        while len(self._sessions) > MAX_SESSIONS:
            self._sessions.popitem(last=False)
        return session_id

    def sign_out(self, session_id: str | None) -> None:
        if session_id is not None:
            self._sessions.pop(session_id, None)

    def tokens_in_use(self) -> set[str]:
        return {session.token for session in self._sessions.values()}
