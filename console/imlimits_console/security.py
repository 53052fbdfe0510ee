"""Browser sessions, CSRF tokens, operators' sign-in, and which Host and Origin a request may name.

Every browser gets a session id this console issued: a random nonce and its
HMAC under a key that lives only in this process, in an HttpOnly,
SameSite=Strict cookie. A cookie the console did not issue (one a page of
another site tossed in, with a value its author chose) is replaced, never
adopted, so nobody can know a browser's session, and so its CSRF token, in
advance. The CSRF token is an HMAC of the session id under another key, so a
form is accepted only from a page this console served to the same browser. A
signed-in operator's admin token stays in this process's memory, keyed by
the session id, and is never sent to the browser.

Host and Origin close DNS rebinding: a page of attacker.example whose name
the attacker points at 127.0.0.1 is same-origin with a loopback console in
the browser's eyes, cookies and CSRF token included. The Host it sends is
still attacker.example, so only the listen address's own names (and names
the operator configures) are served, and every POST must come with an
Origin that is this console's own.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
import socket
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

SESSION_COOKIE = "imlimits_console_session"
CSRF_FIELD = "csrf_token"
# A signed-in session ends after this long even if used, and the oldest end first past the cap.
SESSION_SECONDS = 12 * 3600
MAX_SESSIONS = 10_000


class SessionIds:
    """Session ids only this process can issue: a nonce, a dot, and the nonce's HMAC."""

    def __init__(self) -> None:
        self._key = secrets.token_bytes(32)

    def issue(self) -> str:
        nonce = secrets.token_urlsafe(32)
        return f"{nonce}.{self._mac(nonce)}"

    def issued(self, value: str | None) -> bool:
        """Whether this process issued `value` (any other cookie value is a stranger's)."""
        if not value or len(value) > 128:
            return False
        nonce, _, mac = value.partition(".")
        return bool(nonce) and hmac.compare_digest(self._mac(nonce), mac)

    def _mac(self, nonce: str) -> str:
        return hmac.new(self._key, nonce.encode(), hashlib.sha256).hexdigest()


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

    def __init__(self, ids: SessionIds) -> None:
        self._ids = ids
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
        session_id = self._ids.issue()
        self._sessions[session_id] = SignedIn(token, time.monotonic() + SESSION_SECONDS)
        while len(self._sessions) > MAX_SESSIONS:
            self._sessions.popitem(last=False)
        return session_id

    def sign_out(self, session_id: str | None) -> None:
        if session_id is not None:
            self._sessions.pop(session_id, None)

    def tokens_in_use(self) -> set[str]:
        return {session.token for session in self._sessions.values()}


def own_host_names(listen_host: str, extra: Iterable[str] = ()) -> list[str]:
    """The Host names a console listening on `listen_host` answers to, as Starlette's TrustedHostMiddleware
    compares them (lower case, IPv6 literals in brackets), plus the operator's `extra` ones.

    A loopback address answers to its literal and to localhost; a wildcard address (0.0.0.0, ::) to this
    machine's names and loopback; a named host to that name. A proxy in front names its own host with
    --allowed-host.
    """
    names: set[str] = {name.strip().lower() for name in extra if name.strip()}
    host = listen_host.strip("[]").lower()
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        names.add(host)
        return sorted(names)
    names.add(_literal(address))
    if address.is_loopback or address.is_unspecified:
        names.update(("localhost", "127.0.0.1", "[::1]"))
    if address.is_unspecified:
        names.update(name.lower() for name in (socket.gethostname(), socket.getfqdn()) if name)
    return sorted(names)


def _literal(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    return f"[{address.compressed}]" if address.version == 6 else address.compressed


def same_origin(origin: str | None, host_header: str | None, configured: Iterable[str] = ()) -> bool:
    """Whether a POST's Origin is this console's own.

    The Host header was already checked to be one of the console's names; the Origin must name the same
    host and port, or a host the operator configured (a TLS proxy's public name, whose scheme and port
    are the proxy's). A missing Origin, or "null" (sent by sandboxed pages, and for cross-origin posts
    under the console's same-origin referrer policy), is not this console's.
    """
    if not origin or origin == "null":
        return False
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
        return False
    if host_header and parts.netloc.lower() == host_header.lower():
        return True
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return host.lower() in {name.strip().lower() for name in configured}
