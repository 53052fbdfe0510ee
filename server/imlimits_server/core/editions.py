"""Editions, their default limits, add-on bounds and the implicit adjustment."""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace


class Edition(enum.Enum):
    TRIAL = "EDITION_TRIAL"
    PRO = "EDITION_PRO"
    ULTIMATE = "EDITION_ULTIMATE"

    @property
    def rank(self) -> int:
        """Billing level: TRIAL < PRO < ULTIMATE."""
        return _RANK[self]


_RANK = {Edition.TRIAL: 0, Edition.PRO: 1, Edition.ULTIMATE: 2}


class Item(enum.Enum):
    """The four things a plan change may touch, in the order messages name them."""

    EDITION = "edition"
    AV_ROOM_UNLIMITED = "av_room_unlimited"
    USER_GROUP_LIMIT = "user_group_limit"
    GROUP_MEMBER_LIMIT = "group_member_limit"


ITEMS: tuple[Item, ...] = tuple(Item)

USER_GROUP_LIMIT_MAX = 5000
GROUP_MEMBER_LIMIT_MAX = 6000
# Community groups are capped by the platform, not by the plan's add-on.
COMMUNITY_MEMBER_LIMIT = 100_000


@dataclass(frozen=True)
class EditionDefaults:
    user_group_limit: int
    group_member_limit: int
    av_rooms: int | None  # None: unlimited
    community_allowed: bool


DEFAULTS: dict[Edition, EditionDefaults] = {
    Edition.TRIAL: EditionDefaults(50, 20, 10, False),
    Edition.PRO: EditionDefaults(500, 200, 50, False),
    Edition.ULTIMATE: EditionDefaults(1000, 2000, None, True),
}


@dataclass(frozen=True)
class Limits:
    """What the checks enforce."""

    user_groups: int
    group_members: int
    av_rooms: int | None  # None: unlimited
    community_allowed: bool


@dataclass(frozen=True)
class Plan:
    edition: Edition
    av_room_unlimited: bool
    user_group_limit: int
    group_member_limit: int

    def value(self, item: Item) -> Edition | bool | int:
        values: dict[Item, Edition | bool | int] = {
            Item.EDITION: self.edition,
            Item.AV_ROOM_UNLIMITED: self.av_room_unlimited,
            Item.USER_GROUP_LIMIT: self.user_group_limit,
            Item.GROUP_MEMBER_LIMIT: self.group_member_limit,
        }
        return values[item]

    def limits(self) -> Limits:
        defaults = DEFAULTS[self.edition]
        av_rooms = None if self.av_room_unlimited else defaults.av_rooms
        return Limits(self.user_group_limit, self.group_member_limit, av_rooms, defaults.community_allowed)


def trial_plan() -> Plan:
    return default_plan(Edition.TRIAL)


def default_plan(edition: Edition) -> Plan:
    defaults = DEFAULTS[edition]
    return Plan(edition, False, defaults.user_group_limit, defaults.group_member_limit)


def adjust_to_edition(plan: Plan, edition: Edition) -> Plan:
    """The implicit adjustment that follows an edition change.

    A limit at the old edition's default becomes the new edition's default; an
    extended one (a bought add-on) is kept where it is above the new default;
    the AV add-on exists only on PRO; TRIAL has no add-ons at all.
    """
    if edition is Edition.TRIAL:
        return default_plan(Edition.TRIAL)
    old, new = DEFAULTS[plan.edition], DEFAULTS[edition]
    return replace(
        plan,
        edition=edition,
        av_room_unlimited=plan.av_room_unlimited and edition is Edition.PRO,
        user_group_limit=_follow(plan.user_group_limit, old.user_group_limit, new.user_group_limit),
        group_member_limit=_follow(plan.group_member_limit, old.group_member_limit, new.group_member_limit),
    )


def _follow(limit: int, old_default: int, new_default: int) -> int:
    return limit if limit > old_default and limit > new_default else new_default


def format_value(value: Edition | bool | int) -> str:
    """How an item's value is spelled in history and messages."""
    if isinstance(value, Edition):
        return value.value
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
