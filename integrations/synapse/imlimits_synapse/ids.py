"""Matrix ids as imlimits ids: the id itself where it fits imlimits' bounds, a digest where it does not.

imlimits takes user ids of 1..32 bytes and group ids of 1..48 bytes of UTF-8
without control, format or separator characters (Unicode Cc, Cf, Zl, Zp).
Matrix user ids run to 255 bytes (`@first.last:chat.example.com` is already
29), and room ids of room versions before 12 end in the server name. An id
that does not fit is mapped to a fixed prefix and the unpadded base64url
SHA-256 of its UTF-8 bytes, cut to the bound: `u:` and 30 characters for a
user (180 bits), `r:` and 43 characters for a room (the whole digest). Matrix
ids always start with `@` (users) or `!` (rooms), so a digest can never equal
an id used as it is. `imlimits-synapse id ID` prints the mapping, for looking
a user or room up with `imlimits usage`.
"""

from __future__ import annotations

import base64
import hashlib
import unicodedata

USER_ID_BYTES = 32
GROUP_ID_BYTES = 48
_REFUSED_CATEGORIES = {"Cc", "Cf", "Zl", "Zp"}


def user_key(user_id: str) -> str:
    """The imlimits user id of a Matrix user id."""
    return _fitted(user_id, USER_ID_BYTES, "u:")


def group_key(room_id: str) -> str:
    """The imlimits group id of a Matrix room id."""
    return _fitted(room_id, GROUP_ID_BYTES, "r:")


def _fitted(matrix_id: str, bound: int, prefix: str) -> str:
    encoded = matrix_id.encode("utf-8", "surrogatepass")
    if _fits(matrix_id, encoded, bound):
        return matrix_id
    digest = base64.urlsafe_b64encode(hashlib.sha256(encoded).digest()).decode("ascii").rstrip("=")
    return prefix + digest[: bound - len(prefix)]


def _fits(matrix_id: str, encoded: bytes, bound: int) -> bool:
    if not 1 <= len(encoded) <= bound:
        return False
    try:
        matrix_id.encode("utf-8")  # a lone surrogate is not UTF-8
    except UnicodeEncodeError:
        return False
    return not any(unicodedata.category(char) in _REFUSED_CATEGORIES for char in matrix_id)
