"""SPEC section 1 restated as a small model, to judge the plan core against.

Written from SPEC's words, not from the core: it shares only the vocabulary
(Edition, Item, Plan, PlanRequest) and the published defaults and bounds.
Each rule below quotes the sentence it follows.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from datetime import datetime
from zoneinfo import ZoneInfo

from imlimits_server.core.editions import Edition, Item, Plan
from imlimits_server.core.plans import PlanRequest

# SPEC section 1's table and add-on bounds.
USER_GROUP_DEFAULT = {Edition.TRIAL: 50, Edition.PRO: 500, Edition.ULTIMATE: 1000}
GROUP_MEMBER_DEFAULT = {Edition.TRIAL: 20, Edition.PRO: 200, Edition.ULTIMATE: 2000}
USER_GROUP_MAX = 5000
GROUP_MEMBER_MAX = 6000
ORDER = (Item.EDITION, Item.AV_ROOM_UNLIMITED, Item.USER_GROUP_LIMIT, Item.GROUP_MEMBER_LIMIT)


class Outcome(enum.Enum):
    ACCEPTED = "accepted"
    INVALID_ARGUMENT = "invalid argument"
    FAILED_PRECONDITION = "failed precondition"


def defaults(edition: Edition) -> Plan:
    return Plan(edition, False, USER_GROUP_DEFAULT[edition], GROUP_MEMBER_DEFAULT[edition])


def follow_edition(plan: Plan, edition: Edition) -> Plan:
    """"When the edition changes, a limit not named in the request follows the new edition" (SPEC section 1)."""
    if edition is plan.edition:
        return plan
    if edition is Edition.TRIAL:
        return defaults(Edition.TRIAL)  # "Going to TRIAL resets every add-on."

    def limit(value: int, old_default: int, new_default: int) -> int:
        # "a limit at the old edition's default (not extended) becomes the new edition's default; an extended
        # limit (one above the old edition's default ...) is kept where it is above the new edition's default,
        # and otherwise becomes that default."
        extended = value > old_default
        return value if extended and value > new_default else new_default

    return Plan(
        edition,
        plan.av_room_unlimited and edition is Edition.PRO,  # "av_room_unlimited is dropped when leaving PRO."
        limit(plan.user_group_limit, USER_GROUP_DEFAULT[plan.edition], USER_GROUP_DEFAULT[edition]),
        limit(plan.group_member_limit, GROUP_MEMBER_DEFAULT[plan.edition], GROUP_MEMBER_DEFAULT[edition]),
    )


def value_of(plan: Plan, item: Item) -> Edition | bool | int:
    values: dict[Item, Edition | bool | int] = {
        Item.EDITION: plan.edition, Item.AV_ROOM_UNLIMITED: plan.av_room_unlimited,
        Item.USER_GROUP_LIMIT: plan.user_group_limit, Item.GROUP_MEMBER_LIMIT: plan.group_member_limit}
    return values[item]


def named_items(request: PlanRequest) -> dict[Item, Edition | bool | int]:
    values = {Item.EDITION: request.edition, Item.AV_ROOM_UNLIMITED: request.av_room_unlimited,
              Item.USER_GROUP_LIMIT: request.user_group_limit, Item.GROUP_MEMBER_LIMIT: request.group_member_limit}
    return {item: value for item, value in values.items() if value is not None}


def in_bounds(request: PlanRequest, edition: Edition) -> bool:
    """"Values outside these bounds, and av_room_unlimited ... named for an edition other than PRO, are
    INVALID_ARGUMENT"; add-ons are "each settable only on PRO or ULTIMATE"."""
    if edition is Edition.TRIAL and any(item is not Item.EDITION for item in named_items(request)):
        return False
    if request.av_room_unlimited is not None and edition is not Edition.PRO:
        return False
    if request.user_group_limit is not None and \
            not USER_GROUP_DEFAULT[edition] <= request.user_group_limit <= USER_GROUP_MAX:
        return False
    return request.group_member_limit is None or \
        GROUP_MEMBER_DEFAULT[edition] <= request.group_member_limit <= GROUP_MEMBER_MAX


def month_of(at: datetime, tz: ZoneInfo) -> tuple[int, int]:
    """"Months are calendar months in the server's time zone"."""
    local = at.astimezone(tz)
    return local.year, local.month


@dataclass
class SpecApp:
    """One app as SPEC section 1 describes it: its plans over time and the month's used changes."""

    created_at: datetime
    tz: ZoneInfo
    timeline: list[tuple[datetime, Plan]] = field(default_factory=list)
    active: bool = True
    used: set[tuple[tuple[int, int], Item]] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.timeline = [(self.created_at, defaults(Edition.TRIAL))]  # "A new app starts on TRIAL."

    @property
    def plan(self) -> Plan:
        return self.timeline[-1][1]

    @property
    def last_at(self) -> datetime:
        return self.timeline[-1][0]

    def month_start_plan(self, at: datetime) -> Plan:
        """"the value at 00:00 on the 1st"; an app created later that month had the plan a new app has."""
        year, month = month_of(at, self.tz)
        first = datetime(year, month, 1, tzinfo=self.tz)
        before = [plan for when, plan in self.timeline if when < first]
        return before[-1] if before else defaults(Edition.TRIAL)

    def baseline(self, at: datetime, item: Item, edition: Edition) -> Edition | bool | int:
        """"The month-start value is the value at 00:00 on the 1st, put through the implicit adjustment for the
        current edition"; for the edition itself it is the edition the month began with."""
        start = self.month_start_plan(at)
        if item is Item.EDITION:
            return start.edition
        return value_of(follow_edition(start, edition), item)

    def locked_items(self, at: datetime) -> list[Item]:
        """"App.locked_items lists the items whose change for the current month is used up"."""
        return [item for item in ORDER if (month_of(at, self.tz), item) in self.used]

    def upgrade(self, request: PlanRequest, at: datetime) -> Outcome:
        if request.edition not in (Edition.PRO, Edition.ULTIMATE):
            return Outcome.INVALID_ARGUMENT  # "to PRO or ULTIMATE (any other target is INVALID_ARGUMENT)"
        if not self.active:
            return Outcome.FAILED_PRECONDITION
        if self.plan.edition is not Edition.TRIAL:
            return Outcome.FAILED_PRECONDITION  # "From any other edition: FAILED_PRECONDITION"
        return self._change(request, at)

    def change_plan(self, request: PlanRequest, at: datetime) -> Outcome:
        if not self.active:
            return Outcome.FAILED_PRECONDITION
        if self.plan.edition is Edition.TRIAL:
            return Outcome.FAILED_PRECONDITION  # "On TRIAL: FAILED_PRECONDITION ("use Upgrade")"
        return self._change(request, at)

    def deactivate(self, at: datetime) -> Outcome:
        if not self.active:
            return Outcome.ACCEPTED  # changes nothing, so nothing refuses it
        if at < self.last_at:
            return Outcome.FAILED_PRECONDITION  # "Changes to one app must not go back in time"
        self.active = False
        self.timeline.append((at, self.plan))
        return Outcome.ACCEPTED

    def _change(self, request: PlanRequest, at: datetime) -> Outcome:
        # "Order of refusals ...: deactivated, wrong operation, `at` going back in time, bounds for the target
        # edition, the monthly rule."
        if at < self.last_at:
            return Outcome.FAILED_PRECONDITION
        edition = request.edition or self.plan.edition
        if not in_bounds(request, edition):
            return Outcome.INVALID_ARGUMENT
        named = named_items(request)
        after = follow_edition(self.plan, edition)
        after = replace(
            after,
            av_room_unlimited=after.av_room_unlimited if request.av_room_unlimited is None
            else request.av_room_unlimited,
            user_group_limit=request.user_group_limit or after.user_group_limit,
            group_member_limit=request.group_member_limit or after.group_member_limit,
        )
        # "Implicit adjustments and requests that change nothing are not changes."
        changes = [item for item in ORDER if item in named and value_of(after, item) != value_of(self.plan, item)]
        month = month_of(at, self.tz)
        # "A change back to the item's month-start value (a revert) is always allowed, but the month's one
        # change stays used."
        not_reverts = [item for item in changes if value_of(after, item) != self.baseline(at, item, edition)]
        if any((month, item) in self.used for item in not_reverts):
            return Outcome.FAILED_PRECONDITION
        if after != self.plan:
            self.used |= {(month, item) for item in not_reverts}
            self.timeline.append((at, after))
        return Outcome.ACCEPTED
