"""Input rules of SPEC section 3, written once and shared by every RPC that takes the same field.

Each rule raises InvalidArgument naming the field and the rule; nothing has
been read or written when it does.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp

from imlimits_server.core.errors import InvalidArgument
from imlimits_server.core.holds import MAX_HOLD_SECONDS
from imlimits_server.core.months import Month

MAX_USERS_PER_REQUEST = 500
USER_ID_MAX_BYTES = 32
GROUP_ID_MAX_BYTES = 48
REQUEST_ID_MAX_BYTES = 128
# Control (Cc), format (Cf: U+202E right-to-left override, U+200B zero-width
# space) and line/paragraph separators (Zl, Zp): an id holding one can look
# like another id, or break a log line, wherever it is shown.
_REFUSED_CATEGORIES = {"Cc", "Cf", "Zl", "Zp"}


def app_id(value: int) -> int:
    if value <= 0:
        raise InvalidArgument("app_id", "must be an SDKAppID greater than 0")
    return value


def _plain(value: str, max_bytes: int) -> bool:
    """Printable ASCII within the bound: what nearly every id is, accepted without a look at each character
    (no ASCII character but the controls is in _REFUSED_CATEGORIES)."""
    return value.isascii() and value.isprintable() and 0 < len(value) <= max_bytes


def _text(field: str, value: str, max_bytes: int, *, allow_empty: bool) -> str:
    if _plain(value, max_bytes):
        return value
    if not value:
        if allow_empty:
            return value
        raise InvalidArgument(field, "must not be empty")
    size = len(value.encode())
    if size > max_bytes:
        raise InvalidArgument(field, f"must be at most {max_bytes} bytes of UTF-8, got {size}")
    for character in value:
        if unicodedata.category(character) in _REFUSED_CATEGORIES:
            raise InvalidArgument(field, f"must not contain control, format or separator characters, "
                                         f"got U+{ord(character):04X}")
    return value


def user_id(field: str, value: str, *, allow_empty: bool = False) -> str:
    return _text(field, value, USER_ID_MAX_BYTES, allow_empty=allow_empty)


def group_id(field: str, value: str) -> str:
    return _text(field, value, GROUP_ID_MAX_BYTES, allow_empty=False)


def request_id(value: str) -> str:
    """Optional: empty means no de-duplication."""
    return _text("request_id", value, REQUEST_ID_MAX_BYTES, allow_empty=True)


def hold(hold_seconds: int, request_id_value: str) -> tuple[int, str]:
    """A check's hold (docs/holds.md): 0 none, 1..3600 seconds; request_id only makes sense with a hold."""
    if hold_seconds > MAX_HOLD_SECONDS:
        raise InvalidArgument("hold_seconds", f"must be 0 (no hold) to {MAX_HOLD_SECONDS} seconds, got {hold_seconds}")
    request = request_id(request_id_value)
    if request and not hold_seconds:
        raise InvalidArgument("request_id", "makes a held check's retry answer its first attempt's hold: it needs "
                                            "hold_seconds above 0")
    return hold_seconds, request


def users(field: str, values: Sequence[str], *, allow_empty: bool = False) -> tuple[str, ...]:
    """User ids in request order with repeats removed: a user repeated in one request counts once."""
    given = tuple(values)  # a proto's repeated field builds a str at each read: read it once
    if not given and not allow_empty:
        raise InvalidArgument(field, "must name at least one user")
    if len(given) > MAX_USERS_PER_REQUEST:
        raise InvalidArgument(field, f"at most {MAX_USERS_PER_REQUEST} users in one request, got {len(given)}")
    for index, value in enumerate(given):
        if not _plain(value, USER_ID_MAX_BYTES):
            user_id(f"{field}[{index}]", value)
    return given if len(given) < 2 else tuple(dict.fromkeys(given))


def confirm(value: bool) -> None:
    if not value:
        raise InvalidArgument("confirm", "must be true: deactivation takes effect at once and cannot be undone")


def month(value: str) -> Month:
    try:
        return Month.parse(value)
    except ValueError as error:
        raise InvalidArgument("month", str(error)) from None


# Plan history outside these years is a typing error, and months near
# datetime's own limits cannot be computed in every time zone.
EARLIEST_AT = datetime(2000, 1, 1, tzinfo=UTC)
LATEST_AT = datetime(2100, 1, 1, tzinfo=UTC)


def at(value: Timestamp) -> datetime:
    """A client-given `at`, within [2000-01-01, 2100-01-01) UTC."""
    if not EARLIEST_AT.timestamp() <= value.seconds < LATEST_AT.timestamp() or not 0 <= value.nanos < 10**9:
        raise InvalidArgument("at", "must be a time from 2000-01-01 to 2099-12-31 (UTC)")
    return value.ToDatetime(tzinfo=UTC)
