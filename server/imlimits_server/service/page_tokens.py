"""ListApps page tokens: opaque to callers, signed so the server accepts only tokens it issued.

A token names the last app of the page it ended (listing resumes after it)
and carries an HMAC of that id under a secret every replica reads from
Redis, so a token issued by one replica is honoured by another, and an edited
or invented token is INVALID_ARGUMENT rather than a silent jump.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

from imlimits_server.core.errors import InvalidArgument

_VERSION = "a1"
_NOT_ISSUED = "was not issued by this server: pass the next_page_token of a previous ListApps answer, or leave it empty"


def _signature(secret: bytes, after: int) -> str:
    return hmac.new(secret, f"{_VERSION}.{after}".encode(), hashlib.sha256).hexdigest()[:32]


def issue(secret: bytes, after: int) -> str:
    return base64.urlsafe_b64encode(f"{_VERSION}.{after}.{_signature(secret, after)}".encode()).decode()


def read(secret: bytes, token: str) -> int:
    """The app id the token resumes after; 0 for an empty token (the first page)."""
    if not token:
        return 0
    try:
        after = base64.urlsafe_b64decode(token.encode("ascii")).decode("ascii").split(".")[1]
        resume_after = int(after) if after.isdigit() else -1
    except (UnicodeError, binascii.Error, IndexError):
        resume_after = -1
    # Only the exact text this server would issue for that id is accepted (no other padding or spelling).
    if resume_after < 0 or not hmac.compare_digest(token.encode("ascii", "replace"),
                                                   issue(secret, resume_after).encode()):
        raise InvalidArgument("page_token", _NOT_ISSUED)
    return resume_after
