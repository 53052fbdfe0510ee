"""Properties of the plan core over random sequences of operations at random times.

The monthly rule is checked against an oracle written here from SPEC's words,
not from the core's own helpers.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from imlimits_server.core import plans
from imlimits_server.core.editions import (
    DEFAULTS,
    GROUP_MEMBER_LIMIT_MAX,
    ITEMS,
    USER_GROUP_LIMIT_MAX,
    Edition,
    Item,
    Plan,
    adjust_to_edition,
)
from imlimits_server.core.errors import PlanError
from imlimits_server.core.months import Month
from imlimits_server.core.plans import AppState, Operation, PlanRequest

TZ = ZoneInfo("Asia/Shanghai")
START = datetime(2019, 1, 1, tzinfo=TZ)

requests = st.builds(
    PlanRequest,
    edition=st.none() | st.sampled_from(Edition),
    av_room_unlimited=st.none() | st.booleans(),
    user_group_limit=st.none() | st.sampled_from([50, 499, 500, 600, 999, 1000, 1200, 5000, 5001]),
    group_member_limit=st.none() | st.sampled_from([20, 199, 200, 300, 1999, 2000, 2500, 6000, 6001]),
)
kinds = st.sampled_from(["upgrade", "change", "change", "change", "deactivate"])
# Steps of hours to weeks, and now and then a step back in time.
steps = st.integers(min_value=-24, max_value=24 * 40).map(lambda hours: timedelta(hours=hours))
operations = st.lists(st.tuples(kinds, requests, steps), max_size=30)


def run(ops: list[tuple[str, PlanRequest, timedelta]]) -> tuple[AppState, list[tuple[AppState, Exception]]]:
    """Apply every operation; refused ones leave the state as it was."""
    state = plans.create_app(1, START)
    now = START
    refusals: list[tuple[AppState, Exception]] = []
    for kind, request, step in ops:
        now += step
        try:
            state = apply(kind, state, request, now)
        except PlanError as error:
            refusals.append((state, error))
    return state, refusals


def apply(kind: str, state: AppState, request: PlanRequest, now: datetime) -> AppState:
    if kind == "upgrade":
        return plans.upgrade(state, request, now, TZ)
    if kind == "change":
        return plans.change_plan(state, request, now, TZ)
    return plans.deactivate(state, now)


def month_start(state: AppState, month: Month) -> Plan:
    before = [event.after for event in state.events if Month.of(event.at, TZ) < month]
    return before[-1] if before else state.events[0].after


@settings(max_examples=300, deadline=None)
@given(operations)
def test_limits_never_below_edition_defaults_nor_above_bounds(ops: list[tuple[str, PlanRequest, timedelta]]) -> None:
    state, _ = run(ops)
    for event in state.events:
        plan, defaults = event.after, DEFAULTS[event.after.edition]
        assert defaults.user_group_limit <= plan.user_group_limit <= USER_GROUP_LIMIT_MAX
        assert defaults.group_member_limit <= plan.group_member_limit <= GROUP_MEMBER_LIMIT_MAX
        assert not plan.av_room_unlimited or plan.edition is Edition.PRO
        if plan.edition is Edition.TRIAL:
            assert plan == adjust_to_edition(plan, Edition.TRIAL)


@settings(max_examples=300, deadline=None)
@given(operations)
def test_monthly_rule_one_change_per_item_reverts_excepted(ops: list[tuple[str, PlanRequest, timedelta]]) -> None:
    """In each month, each item moves away from its month-start value in at most one explicit change."""
    state, _ = run(ops)
    used: dict[tuple[Month, Item], int] = {}
    for event in state.events[1:]:
        month = Month.of(event.at, TZ)
        start = month_start(state, month)
        for item in ITEMS:
            if item not in event.named or event.before.value(item) == event.after.value(item):
                continue  # not asked for, or nothing changed: not a change
            baseline = start.edition if item is Item.EDITION else \
                adjust_to_edition(start, event.after.edition).value(item)
            if event.after.value(item) != baseline:
                used[(month, item)] = used.get((month, item), 0) + 1
    assert all(count == 1 for count in used.values()), used


@settings(max_examples=300, deadline=None)
@given(operations)
def test_deactivated_app_never_changes(ops: list[tuple[str, PlanRequest, timedelta]]) -> None:
    state, refusals = run(ops)
    kinds_after = [event.operation for event in state.events]
    if Operation.DEACTIVATE in kinds_after:
        assert kinds_after[-1] is Operation.DEACTIVATE
        assert kinds_after.count(Operation.DEACTIVATE) == 1
    for before, _ in refusals:
        if not before.active:
            assert before.events == state.events


@settings(max_examples=300, deadline=None)
@given(operations)
def test_history_never_goes_back_in_time(ops: list[tuple[str, PlanRequest, timedelta]]) -> None:
    state, _ = run(ops)
    times = [event.at for event in state.events]
    assert times == sorted(times)


@settings(max_examples=200, deadline=None)
@given(operations)
def test_locked_items_are_exactly_the_used_changes(ops: list[tuple[str, PlanRequest, timedelta]]) -> None:
    """An item is locked iff a non-revert change of it would be refused by the monthly rule."""
    state, _ = run(ops)
    if not state.active or state.plan.edition is Edition.TRIAL:
        return
    now = state.last_at
    locked = plans.locked_items(state, now, TZ)
    start = adjust_to_edition(month_start(state, Month.of(now, TZ)), state.plan.edition)
    for item in (Item.USER_GROUP_LIMIT, Item.GROUP_MEMBER_LIMIT):
        value = next(v for v in (4000, 4500) if v not in (state.plan.value(item), start.value(item)))
        probe = PlanRequest(user_group_limit=value) if item is Item.USER_GROUP_LIMIT else \
            PlanRequest(group_member_limit=value)
        try:
            plans.change_plan(state, probe, now, TZ)
            refused = False
        except PlanError:
            refused = True
        assert refused == (item in locked)
