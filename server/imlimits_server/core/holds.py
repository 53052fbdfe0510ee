"""Hold ids: opaque to callers, signed so that a forged or altered id is refused without reading Redis.

A hold id names a hold inside its app: `h1.NONCE.SIGNATURE`, where the
signature is an HMAC of the app id and the nonce under a key every replica
derives from the deployment's secret (kept in Redis), so an id issued by one
replica is honoured by another and an id of one app is refused for another.

A held check with a request_id gets a nonce derived from it, so its retry
names the same hold, which the check script then recognises (docs/holds.md).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from imlimits_server.core.checks import CreateGroup, JoinGroup
from imlimits_server.core.errors import InvalidArgument

MAX_HOLD_SECONDS = 3600
# How long a hold's outcome is kept after it ends (confirmed, cancelled, expired): ConfirmHold and
# CancelHold answer from it, and a held check retried with its request_id finds its hold. Short, because
# a busy app opens many holds a second and each kept outcome costs Redis memory.
HOLD_OUTCOME_KEEP_SECONDS = 600

_VERSION = "h1"
_NONCE_HEX = 32
_SIGNATURE_HEX = 32
_HOLD_ID = re.compile(rf"{_VERSION}\.([0-9a-f]{{{_NONCE_HEX}}})\.([0-9a-f]{{{_SIGNATURE_HEX}}})")
_NOT_ISSUED = "was not issued by this deployment for this app: pass the hold_id of a held check's answer"


class HoldIds:
    def __init__(self, deployment_secret: bytes) -> None:
        # A key of its own, so a hold id's signature can never double as a page token's.
        key = hmac.new(deployment_secret, b"imlimits hold ids", hashlib.sha256).digest()
        # Keyed once: each MAC copies it, cheaper than keying a new one (a held check makes two, a confirm one).
        self._keyed = hmac.new(key, digestmod=hashlib.sha256)

    def nonce(self, app_id: int, request_id: str) -> str:
        """A fresh nonce, or the one `request_id` always gives in this app (a retry names the same hold)."""
        if not request_id:
            return secrets.token_hex(_NONCE_HEX // 2)
        return self._mac(f"request.{app_id}.{request_id}")[:_NONCE_HEX]

    def issue(self, app_id: int, nonce: str) -> str:
        return f"{_VERSION}.{nonce}.{self._signature(app_id, nonce)}"

    def read(self, app_id: int, hold_id: str) -> str:
        """The nonce of a hold id this deployment issued for `app_id`; InvalidArgument for any other text."""
        match = _HOLD_ID.fullmatch(hold_id)
        if match is None or not hmac.compare_digest(match[2], self._signature(app_id, match[1])):
            raise InvalidArgument("hold_id", _NOT_ISSUED)
        return match[1]

    def _signature(self, app_id: int, nonce: str) -> str:
        return self._mac(f"hold.{app_id}.{nonce}")[:_SIGNATURE_HEX]

    def _mac(self, text: str) -> str:
        mac = self._keyed.copy()
        mac.update(text.encode())
        return mac.hexdigest()


def fingerprint(check: CreateGroup | JoinGroup) -> str:
    """What a request_id stands for: a retry must ask exactly the same (INVALID_ARGUMENT otherwise)."""
    if isinstance(check, JoinGroup):
        parts = ["join", check.group_id, *check.users]
    else:
        parts = ["create", check.group_id, check.type.value, check.owner, str(check.max_members), *check.members]
    # Ids hold no control characters, so a line feed separates them unambiguously.
    text = "\n".join([str(check.hold_seconds), *parts])
    return hashlib.sha256(text.encode()).hexdigest()[:32]
