"""Plan operations (CreateApp, Upgrade, ChangePlan, Deactivate) and the monthly rule.

An app is its history: the list of accepted events. Its plan, status and the
month's used-up changes are all derived from it, so nothing can drift.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TypeVar
from zoneinfo import ZoneInfo

from imlimits_server.core.editions import (
    DEFAULTS,
    GROUP_MEMBER_LIMIT_MAX,
    ITEMS,
    USER_GROUP_LIMIT_MAX,
    Edition,
    Item,
    Plan,
    adjust_to_edition,
    format_value,
    trial_plan,
)
from imlimits_server.core.errors import FailedPrecondition, InvalidArgument, Violation
from imlimits_server.core.months import Month

_T = TypeVar("_T")

UPGRADE_TARGETS = (Edition.PRO, Edition.ULTIMATE)


class Operation(enum.Enum):
    CREATE_APP = "CreateApp"
    UPGRADE = "Upgrade"
    CHANGE_PLAN = "ChangePlan"
    DEACTIVATE = "Deactivate"


@dataclass(frozen=True)
class PlanRequest:
    """The items an Upgrade or ChangePlan names; None means not named."""

    edition: Edition | None = None
    av_room_unlimited: bool | None = None
    user_group_limit: int | None = None
    group_member_limit: int | None = None

    def named(self) -> dict[Item, Edition | bool | int]:
        values = {
            Item.EDITION: self.edition,
            Item.AV_ROOM_UNLIMITED: self.av_room_unlimited,
            Item.USER_GROUP_LIMIT: self.user_group_limit,
            Item.GROUP_MEMBER_LIMIT: self.group_member_limit,
        }
        return {item: value for item, value in values.items() if value is not None}


@dataclass(frozen=True)
class PlanEvent:
    """One accepted operation: the plan before and after, and what the request named."""

    at: datetime
    operation: Operation
    before: Plan
    after: Plan
    named: frozenset[Item] = frozenset()
    request_id: str = ""

    def changed(self) -> list[Item]:
        return [item for item in ITEMS if self.before.value(item) != self.after.value(item)]

    def explicit_changes(self) -> list[Item]:
        """Items this event changed because the request asked, not by implicit adjustment."""
        return [item for item in self.changed() if item in self.named]


@dataclass(frozen=True)
class PlanChange:
    """One line of the plan history as ListPlanChanges shows it."""

    at: datetime
    item: str
    old_value: str
    new_value: str
    operation: Operation
    request_id: str
    implicit: bool


@dataclass(frozen=True)
class AppState:
    app_id: int
    events: tuple[PlanEvent, ...] = field(default=())

    @property
    def plan(self) -> Plan:
        return self.events[-1].after

    @property
    def active(self) -> bool:
        return all(event.operation is not Operation.DEACTIVATE for event in self.events)

    @property
    def created_at(self) -> datetime:
        return self.events[0].at

    @property
    def last_at(self) -> datetime:
        return self.events[-1].at

    def with_event(self, event: PlanEvent) -> AppState:
        return replace(self, events=(*self.events, event))


def create_app(app_id: int, at: datetime, request_id: str = "") -> AppState:
    plan = trial_plan()
    return AppState(app_id, (PlanEvent(at, Operation.CREATE_APP, plan, plan, request_id=request_id),))


def upgrade(state: AppState, request: PlanRequest, at: datetime, tz: ZoneInfo, request_id: str = "") -> AppState:
    """Upgrade from TRIAL (the console's 【IM】 edition) to PRO or ULTIMATE."""
    if request.edition not in UPGRADE_TARGETS:
        raise InvalidArgument("edition", "Upgrade goes to EDITION_PRO or EDITION_ULTIMATE", "UPGRADE_TARGET")
    _require_active(state)
    if state.plan.edition is not Edition.TRIAL:
        raise FailedPrecondition(
            f"Upgrade is only from EDITION_TRIAL and the app is on {state.plan.edition.value}: use ChangePlan",
            Violation("WRONG_OPERATION", "edition", "use ChangePlan"),
            {"edition": state.plan.edition.value, "use": "ChangePlan"},
        )
    return _apply(state, request, at, tz, Operation.UPGRADE, request_id)


def change_plan(state: AppState, request: PlanRequest, at: datetime, tz: ZoneInfo, request_id: str = "") -> AppState:
    """变配: change the edition or any add-on of a PRO or ULTIMATE app."""
    _require_active(state)
    if state.plan.edition is Edition.TRIAL:
        raise FailedPrecondition(
            "ChangePlan needs EDITION_PRO or EDITION_ULTIMATE and the app is on EDITION_TRIAL: use Upgrade",
            Violation("WRONG_OPERATION", "edition", "use Upgrade"),
            {"edition": Edition.TRIAL.value, "use": "Upgrade"},
        )
    return _apply(state, request, at, tz, Operation.CHANGE_PLAN, request_id)


def deactivate(state: AppState, at: datetime, request_id: str = "") -> AppState:
    """停用: immediate and irreversible. Deactivating twice changes nothing."""
    if not state.active:
        return state
    _require_not_before_last_change(state, at)
    return state.with_event(PlanEvent(at, Operation.DEACTIVATE, state.plan, state.plan, request_id=request_id))


def locked_items(state: AppState, now: datetime, tz: ZoneInfo) -> list[Item]:
    """Items whose one change for the month of `now` is used up."""
    month = Month.of(now, tz)
    return [item for item in ITEMS if _change_used(state, item, month, tz)]


def plan_changes(state: AppState) -> list[PlanChange]:
    """The history as item-level changes, oldest first."""
    changes: list[PlanChange] = []
    for event in state.events:
        if event.operation is Operation.CREATE_APP:
            changes.append(PlanChange(event.at, "status", "", "APP_STATUS_ACTIVE", event.operation, event.request_id,
                                      False))
        elif event.operation is Operation.DEACTIVATE:
            changes.append(PlanChange(event.at, "status", "APP_STATUS_ACTIVE", "APP_STATUS_DEACTIVATED",
                                      event.operation, event.request_id, False))
        for item in event.changed():
            changes.append(PlanChange(
                event.at, item.value, format_value(event.before.value(item)), format_value(event.after.value(item)),
                event.operation, event.request_id, implicit=item not in event.named,
            ))
    return changes


def month_start_plan(state: AppState, month: Month, tz: ZoneInfo) -> Plan:
    """The plan at 00:00 on the 1st; an app created later that month started on TRIAL."""
    start = month.start(tz)
    plan = trial_plan()
    for event in state.events:
        if event.at >= start:
            break
        plan = event.after
    return plan


def month_baseline(month_start: Plan, item: Item, edition: Edition) -> Edition | bool | int:
    """The value a change of `item` reverts to: the month-start value, adjusted to the current edition.

    After an Upgrade from TRIAL the baseline of a limit is the new edition's
    default, so naming exactly that default is a revert, not a change.
    """
    if item is Item.EDITION:
        return month_start.edition
    return adjust_to_edition(month_start, edition).value(item)


def _change_used(state: AppState, item: Item, month: Month, tz: ZoneInfo) -> bool:
    """Whether an explicit, non-revert change of `item` was accepted in `month`.

    A revert does not use the month's change (the console allows restoring a
    setting), but it does not give back a change already used.
    """
    month_start = month_start_plan(state, month, tz)
    for event in state.events:
        if Month.of(event.at, tz) != month or item not in event.explicit_changes():
            continue
        if event.after.value(item) != month_baseline(month_start, item, event.after.edition):
            return True
    return False


def _apply(state: AppState, request: PlanRequest, at: datetime, tz: ZoneInfo, operation: Operation,
           request_id: str) -> AppState:
    _require_not_before_last_change(state, at)
    edition = request.edition or state.plan.edition
    _check_bounds(request, edition)
    adjusted = adjust_to_edition(state.plan, edition)
    after = Plan(
        edition,
        _first_named(request.av_room_unlimited, adjusted.av_room_unlimited),
        _first_named(request.user_group_limit, adjusted.user_group_limit),
        _first_named(request.group_member_limit, adjusted.group_member_limit),
    )
    if after == state.plan:
        return state
    event = PlanEvent(at, operation, state.plan, after, frozenset(request.named()), request_id)
    _check_monthly_rule(state, event, tz)
    return state.with_event(event)


def _first_named(named: _T | None, otherwise: _T) -> _T:
    return otherwise if named is None else named


def _check_monthly_rule(state: AppState, event: PlanEvent, tz: ZoneInfo) -> None:
    month = Month.of(event.at, tz)
    month_start = month_start_plan(state, month, tz)
    for item in event.explicit_changes():
        baseline = month_baseline(month_start, item, event.after.edition)
        if event.after.value(item) == baseline or not _change_used(state, item, month, tz):
            continue
        again = month.next().first_day().isoformat()
        # Suggest the revert only where there is one to make: an app already back at its
        # month-start value (e.g. on TRIAL again after a revert) has nothing to revert.
        can_revert = state.plan.value(item) != baseline
        revert = f" (a revert to {format_value(baseline)} is allowed)" if can_revert else ""
        description = f"{item.value} was already changed in {month}; it may change again on {again}{revert}"
        params = {"item": item.value, "month": str(month), "again": again}
        if can_revert:
            params["revert_to"] = format_value(baseline)
        raise FailedPrecondition(description, Violation("MONTHLY_CHANGE_USED", item.value, description), params)


def _check_bounds(request: PlanRequest, edition: Edition) -> None:
    """Bounds of each named add-on for the target edition, in the order of ITEMS."""
    named = request.named()
    if edition is Edition.TRIAL:
        for item in named:
            if item is not Item.EDITION:
                raise InvalidArgument(item.value, "add-ons are settable only on EDITION_PRO or EDITION_ULTIMATE",
                                      "ADD_ON_ON_TRIAL")
        return
    if Item.AV_ROOM_UNLIMITED in named and edition is not Edition.PRO:
        raise InvalidArgument(
            "av_room_unlimited", f"not applicable to {edition.value}: the add-on exists only on EDITION_PRO",
            "AV_ADD_ON_PRO_ONLY", {"edition": edition.value})
    defaults = DEFAULTS[edition]
    bounds = {
        Item.USER_GROUP_LIMIT: (defaults.user_group_limit, USER_GROUP_LIMIT_MAX),
        Item.GROUP_MEMBER_LIMIT: (defaults.group_member_limit, GROUP_MEMBER_LIMIT_MAX),
    }
    limits = {Item.USER_GROUP_LIMIT: request.user_group_limit, Item.GROUP_MEMBER_LIMIT: request.group_member_limit}
    for item, (low, high) in bounds.items():
        value = limits[item]
        if value is not None and not low <= value <= high:
            raise InvalidArgument(
                item.value, f"must be from {low} (the {edition.value} default) to {high}, got {value}",
                "LIMIT_OUT_OF_BOUNDS", {"edition": edition.value, "low": str(low), "high": str(high),
                                        "value": str(value)})


def _require_active(state: AppState) -> None:
    if not state.active:
        raise FailedPrecondition(
            f"app {state.app_id} is deactivated: 停用 cannot be undone",
            Violation("APP_DEACTIVATED", str(state.app_id), "the app is deactivated"),
            {"app_id": str(state.app_id)},
        )


def _require_not_before_last_change(state: AppState, at: datetime) -> None:
    if at < state.last_at:
        raise FailedPrecondition(
            f"at: {at.isoformat()} is before the app's last change at {state.last_at.isoformat()}; "
            "changes to one app must not go back in time",
            Violation("TIME_WENT_BACK", "at", "before the app's last change"),
            {"at": at.isoformat(), "last_at": state.last_at.isoformat()},
        )
