"""A refused check as the Matrix client sees it: HTTP 403, M_RESOURCE_LIMIT_EXCEEDED and the fields of SPEC 7.

`limit_type` names the plan item that refused (SPEC section 7's table, and
the module's own names where SPEC names none); `im_code` is the IM code;
`error` says, in Matrix words, which limit and its value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from imlimits_client import CheckResult, ImCode

HTTP_STATUS = 403
ERRCODE = "M_RESOURCE_LIMIT_EXCEEDED"

# SPEC section 7 names the first four. The module never opens AV chat rooms (10036) and asks for a fresh
# room id (10021 only if imlimits already has a group of that id from elsewhere), but both get a name.
LIMIT_TYPES: dict[int, str] = {
    ImCode.USER_GROUP_LIMIT: "user_group_limit",
    ImCode.GROUP_MEMBER_LIMIT: "group_member_limit",
    ImCode.GROUP_FULL: "group_member_limit",
    ImCode.NOT_ULTIMATE: "community_groups",
    ImCode.APP_DISABLED: "app_deactivated",
    ImCode.AV_ROOM_LIMIT: "av_room_limit",
    ImCode.GROUP_ID_IN_USE: "room_id_in_use",
    ImCode.SERVICE_UNAVAILABLE: "service_unavailable",
}


@dataclass(frozen=True)
class Refusal:
    message: str
    fields: dict[str, Any]


def refusal(result: CheckResult, *, app_id: int, user_id: str, admin_contact: str) -> Refusal:
    """What the client is told; `user_id` is the Matrix user the check was for (not the imlimits digest)."""
    code = int(result.code)
    return Refusal(_message(result, app_id, user_id),
                   {"admin_contact": admin_contact, "limit_type": LIMIT_TYPES.get(code, "im_code"), "im_code": code})


def _message(result: CheckResult, app_id: int, user_id: str) -> str:
    match result.code:
        case ImCode.USER_GROUP_LIMIT:
            return (f"{user_id} is in {result.current} rooms already, and this homeserver's plan allows "
                    f"{result.limit} rooms per user (user_group_limit {result.limit})")
        case ImCode.GROUP_MEMBER_LIMIT if result.current <= result.limit:
            return (f"This room has {result.current} members, and this homeserver's plan allows {result.limit} "
                    f"members per room (group_member_limit {result.limit})")
        case ImCode.GROUP_FULL:
            return f"This room has {result.current} members, its own limit (group_member_limit {result.limit})"
        case ImCode.NOT_ULTIMATE:
            return ("Spaces need the Ultimate edition, and this homeserver's plan is on another edition "
                    "(community_groups: not allowed)")
        case ImCode.APP_DISABLED:
            return f"This homeserver's app {app_id} is deactivated: no room may be created or joined"
        case ImCode.SERVICE_UNAVAILABLE:
            return ("The plan limits service cannot be reached, and this homeserver refuses what it cannot count "
                    "(on_unavailable: deny); try again shortly")
    return f"Refused by this homeserver's plan (IM code {int(result.code)}): {result.info}"
