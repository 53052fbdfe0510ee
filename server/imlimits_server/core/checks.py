"""The vocabulary of limit checks: group types and the IM error codes with their messages."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from imlimits_server.core.editions import Limits


class GroupType(enum.Enum):
    """Group types; the values are how the store spells them."""

    WORK = "work"            # formerly Private
    PUBLIC = "public"
    MEETING = "meeting"      # formerly ChatRoom
    AVCHATROOM = "av"
    COMMUNITY = "community"

    @property
    def owner_is_member(self) -> bool:
        """An AVChatRoom's owner becomes a member only through JoinGroup."""
        return self is not GroupType.AVCHATROOM


class ImCode(enum.IntEnum):
    """The IM platform's documented error codes that a check can answer."""

    OK = 0
    AV_ROOM_WITH_MEMBERS = 10007
    GROUP_NOT_FOUND = 10010
    GROUP_FULL = 10014
    GROUP_ID_IN_USE = 10021
    GROUP_ID_OWNED_BY_CALLER = 10025
    AV_ROOM_LIMIT = 10036
    USER_GROUP_LIMIT = 10037
    GROUP_MEMBER_LIMIT = 10038
    NOT_ULTIMATE = 10059
    APP_DISABLED = 60016


@dataclass(frozen=True)
class CheckResult:
    code: ImCode
    limit: int = 0
    current: int = 0
    denied_users: tuple[str, ...] = ()
    hold_id: str = ""  # an admitted held check's hold (docs/holds.md)
    hold_opened: bool = False  # this call opened the hold (not a retry that found it)
    # 10038 and 10014: the newcomers that would have joined `current` members. 0 with 10038 means the
    # limit was compared with the group's own max_members at creation (`current`), not with members.
    newcomers: int = 0

    @property
    def allowed(self) -> bool:
        return self.code is ImCode.OK

    def info(self) -> str:
        """A sentence an IM backend can log or show: which limit, and its value."""
        match self.code:
            case ImCode.OK:
                return "admitted"
            case ImCode.AV_ROOM_WITH_MEMBERS:
                return "an AVChatRoom is created without members; members join with JoinGroup"
            case ImCode.GROUP_NOT_FOUND:
                return "the group does not exist or was destroyed"
            case ImCode.GROUP_FULL:
                return f"the group's own max_members ({self.limit}) would be exceeded: {self._members('it')}"
            case ImCode.GROUP_ID_IN_USE:
                return "the group id is already in use"
            case ImCode.GROUP_ID_OWNED_BY_CALLER:
                return "the group id is in use by a group this owner created; a retry may treat it as success"
            case ImCode.AV_ROOM_LIMIT:
                over = ", more than the limit: rooms opened under a higher limit stay" \
                    if self.current > self.limit else ""
                return f"av_rooms limit {self.limit} reached ({self.current} AVChatRooms exist{over})"
            case ImCode.USER_GROUP_LIMIT:
                first, *others = self.denied_users or ("a user",)
                also = f" (also refused: {', '.join(others)})" if others else ""
                return (f"user_group_limit ({self.limit}) would be exceeded: "
                        f"{first} is already in {self.current} groups{also}")
            case ImCode.GROUP_MEMBER_LIMIT:
                if self.newcomers == 0:  # CreateGroup compared the group's own cap with the plan's
                    return (f"the group's own max_members ({self.current}) is above "
                            f"the plan's member limit ({self.limit})")
                return f"the plan's member limit ({self.limit}) would be exceeded: {self._members('the group')}"
            case ImCode.NOT_ULTIMATE:
                return "Community groups need EDITION_ULTIMATE"
            case ImCode.APP_DISABLED:
                return "the app is deactivated (停用)"

    def _members(self, group: str) -> str:
        """The members a 10038 or 10014 compared with the limit, and who would have joined them."""
        text = f"{group} has {_members(self.current)}"
        if self.newcomers:
            text += f" and {self.newcomers} would join"
        if self.current > self.limit:  # grandfathered: imported, or admitted under a higher limit
            text += " (already more than the limit: members admitted before stay)"
        return text


def _members(count: int) -> str:
    return "1 member" if count == 1 else f"{count} members"


# Most checks' answer, made once: CheckResult is immutable, so every admitted plain check shares it.
ADMITTED = CheckResult(ImCode.OK)


@dataclass(frozen=True)
class ReleaseResult:
    code: ImCode
    released: int = 0
    hold_cancelled: bool = False  # a CancelHold that closed its hold (not one already ended)


@dataclass(frozen=True)
class HoldResult:
    """ConfirmHold's answer: `confirmed` false when the hold had been cancelled or had ended."""

    code: ImCode
    confirmed: bool = False
    # False when the hold's outcome is no longer kept (it ended long ago): then it is not confirmed either.
    known: bool = True
    confirmed_now: bool = False  # this call confirmed it (not a repeat)

    def info(self) -> str:
        if self.code is not ImCode.OK:
            return CheckResult(self.code).info()
        if self.confirmed:
            return "confirmed: what the hold covered is counted for good"
        if not self.known:
            return ("not confirmed: this hold ended long ago and its outcome is no longer kept; "
                    "check again before acting")
        return ("not confirmed: the hold was cancelled or had expired, so nothing of it is counted; "
                "undo the act or check again")


@dataclass(frozen=True)
class Held:
    """What is held now, apart from what is confirmed (already included in the usual counts)."""

    holds: int = 0
    groups: int = 0
    av_rooms: int = 0
    memberships: int = 0


@dataclass(frozen=True)
class UsageResult:
    limits: Limits
    av_rooms: int
    groups: int
    user_groups: int | None
    group_members: int | None
    held: Held = Held()
    held_group_members: int | None = None
    # With a group asked for: its type, its own cap (0 follows the plan), and the member limit its joins
    # meet now, the lower of that cap and the plan's limit for the type (None: no limit, an AVChatRoom).
    group_type: GroupType | None = None
    group_max_members: int = 0
    group_members_limit: int | None = None


@dataclass(frozen=True)
class Drift:
    """A count that disagrees with the membership sets."""

    subject: str
    recorded: int
    actual: int


@dataclass(frozen=True)
class Verification:
    groups: int
    users: int  # with a membership of a group that exists
    drifts: tuple[Drift, ...]
    repaired: bool
    # Destroyed groups whose memberships the release workers have not all
    # released yet, and those memberships: still counted, about to be released.
    pending_groups: int = 0
    pending_releases: int = 0
    held: Held = Held()


# The checks as requests, once validated: what Batch and Stream carry, and what the store decides.


@dataclass(frozen=True)
class CreateGroup:
    """CreateGroup, and CreateRoom as an AVChatRoom without members. `members` deduplicated."""

    app_id: int
    group_id: str
    type: GroupType
    owner: str
    members: tuple[str, ...]
    max_members: int
    dry_run: bool
    hold_seconds: int = 0  # 0: no hold; else what is admitted is held that long (docs/holds.md)
    request_id: str = ""  # with a hold: a retry with the same id answers the first attempt's hold


@dataclass(frozen=True)
class JoinGroup:
    app_id: int
    group_id: str
    users: tuple[str, ...]
    dry_run: bool
    hold_seconds: int = 0
    request_id: str = ""


@dataclass(frozen=True)
class LeaveGroup:
    app_id: int
    group_id: str
    users: tuple[str, ...]


@dataclass(frozen=True)
class DestroyGroup:
    app_id: int
    group_id: str


@dataclass(frozen=True)
class ConfirmHold:
    """`nonce` names the hold inside its app; the caller's hold_id was checked to be one this deployment issued."""

    app_id: int
    nonce: str


@dataclass(frozen=True)
class CancelHold:
    app_id: int
    nonce: str


Check = CreateGroup | JoinGroup | LeaveGroup | DestroyGroup | ConfirmHold | CancelHold
