"""Properties of the plan core over random sequences of operations at random times.

The monthly rule, the implicit adjustment and the refusal order are checked
step by step against core.spec_oracle, a model written from SPEC's words, on
histories built by construction to be mostly relevant: upgrades from TRIAL,
changes that revert, repeat or re-change an item, within a month and across
month boundaries in the deployment's time zone.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from hypothesis import event as note
from hypothesis import given, settings
from hypothesis import strategies as st

from core.spec_oracle import (
    GROUP_MEMBER_DEFAULT,
    GROUP_MEMBER_MAX,
    USER_GROUP_DEFAULT,
    USER_GROUP_MAX,
    Outcome,
    SpecApp,
    defaults,
    follow_edition,
)
from imlimits_server.core import plans
from imlimits_server.core.editions import (
    DEFAULTS,
    GROUP_MEMBER_LIMIT_MAX,
    USER_GROUP_LIMIT_MAX,
    Edition,
    Item,
    adjust_to_edition,
)
from imlimits_server.core.errors import FailedPrecondition, InvalidArgument, PlanError
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


Kind = Literal["upgrade", "change", "deactivate"]


@dataclass(frozen=True)
class Step:
    kind: Kind
    request: PlanRequest
    at: datetime


def _limit_values(draw: st.DrawFn, app: SpecApp, item: Item, edition: Edition, at: datetime) -> int:
    """A value worth asking for: the revert, the current value, the default, a new one, now and then out of bounds."""
    default = USER_GROUP_DEFAULT[edition] if item is Item.USER_GROUP_LIMIT else GROUP_MEMBER_DEFAULT[edition]
    high = USER_GROUP_MAX if item is Item.USER_GROUP_LIMIT else GROUP_MEMBER_MAX
    baseline = app.baseline(at, item, edition)
    current = app.plan.user_group_limit if item is Item.USER_GROUP_LIMIT else app.plan.group_member_limit
    fresh = draw(st.integers(min_value=default, max_value=high))
    assert isinstance(baseline, int)
    candidates = [baseline, current, default, fresh, fresh, default + 100, high]
    if draw(st.integers(0, 9)) == 0:
        candidates = [default - 1, high + 1]
    return draw(st.sampled_from(candidates))


def _request(draw: st.DrawFn, app: SpecApp, edition: Edition | None, at: datetime) -> PlanRequest:
    target = edition or app.plan.edition
    named: dict[str, object] = {}
    if draw(st.integers(0, 9)) < (6 if target is Edition.PRO else 1):  # the AV add-on exists on PRO only
        named["av_room_unlimited"] = draw(st.booleans())
    if target is not Edition.TRIAL or draw(st.integers(0, 9)) == 0:  # add-ons named on TRIAL: now and then
        for item, name in ((Item.USER_GROUP_LIMIT, "user_group_limit"), (Item.GROUP_MEMBER_LIMIT,
                                                                          "group_member_limit")):
            if draw(st.booleans()):
                named[name] = _limit_values(draw, app, item, target if target is not Edition.TRIAL else Edition.PRO,
                                            at)
    return PlanRequest(edition=edition, **named)  # type: ignore[arg-type]


def _next_time(draw: st.DrawFn, now: datetime) -> datetime:
    """Mostly hours or days later in the same month; sometimes just before or after a month boundary in TZ."""
    how = draw(st.sampled_from(["hours", "hours", "days", "boundary", "boundary", "back"]))
    if how == "hours":
        return now + timedelta(hours=draw(st.integers(0, 48)))
    if how == "days":
        return now + timedelta(days=draw(st.integers(1, 20)))
    if how == "back":
        return now - timedelta(hours=draw(st.integers(1, 30)))
    local = now.astimezone(TZ)
    first_of_next = datetime(local.year + local.month // 12, local.month % 12 + 1, 1, tzinfo=TZ)
    return max(now, first_of_next + timedelta(minutes=draw(st.sampled_from([-30, -1, 0, 1, 30]))))


@st.composite
def histories(draw: st.DrawFn) -> list[Step]:
    """Steps built against the oracle's state as it goes, so most are ones the monthly rule has to judge."""
    app = SpecApp(START, TZ)
    now = START
    steps: list[Step] = []
    for _ in range(draw(st.integers(min_value=1, max_value=20))):
        now = _next_time(draw, now)
        roll = draw(st.integers(0, 99))
        if app.plan.edition is Edition.TRIAL and roll < 85:
            step = Step("upgrade", _request(draw, app, draw(st.sampled_from([Edition.PRO, Edition.ULTIMATE])), now),
                        now)
        elif roll < 3:
            step = Step("deactivate", PlanRequest(), now)
        elif roll < 6:
            step = Step("upgrade", _request(draw, app, draw(st.sampled_from(list(Edition))), now), now)
        else:
            edition = draw(st.sampled_from(list(Edition))) if draw(st.integers(0, 9)) < 4 else None
            step = Step("change", _request(draw, app, edition, now), now)
        _judge(app, step)
        steps.append(step)
    return steps


def _judge(app: SpecApp, step: Step) -> Outcome:
    if step.kind == "upgrade":
        return app.upgrade(step.request, step.at)
    if step.kind == "change":
        return app.change_plan(step.request, step.at)
    return app.deactivate(step.at)


def _core(state: AppState, step: Step) -> tuple[Outcome, AppState]:
    try:
        if step.kind == "upgrade":
            return Outcome.ACCEPTED, plans.upgrade(state, step.request, step.at, TZ)
        if step.kind == "change":
            return Outcome.ACCEPTED, plans.change_plan(state, step.request, step.at, TZ)
        return Outcome.ACCEPTED, plans.deactivate(state, step.at)
    except InvalidArgument:
        return Outcome.INVALID_ARGUMENT, state
    except FailedPrecondition:
        return Outcome.FAILED_PRECONDITION, state


@settings(max_examples=400, deadline=None)
@given(histories())
def test_core_follows_spec_step_by_step(steps: list[Step]) -> None:
    """Every step: the same outcome, the same plan, the same status and the same locked items as SPEC's model."""
    app = SpecApp(START, TZ)
    state = plans.create_app(1, START)
    for number, step in enumerate(steps):
        expected = _judge(app, step)
        outcome, state = _core(state, step)
        where = f"step {number}: {step}"
        assert outcome is expected, where
        assert state.plan == app.plan, where
        assert state.active == app.active, where
        assert plans.locked_items(state, step.at, TZ) == app.locked_items(step.at), where
        note(f"{step.kind}: {expected.value}")


def test_oracle_examples_from_spec() -> None:
    """The oracle itself, on SPEC section 1's own examples (so the model is checked against the text too)."""
    ultimate = defaults(Edition.ULTIMATE)
    assert follow_edition(ultimate, Edition.PRO).group_member_limit == 200  # "ULTIMATE (2000 ...) to PRO gives 200"
    extended = replace(ultimate, group_member_limit=3000)
    assert follow_edition(extended, Edition.PRO).group_member_limit == 3000  # "... 3000 to PRO keeps 3000"
    app = SpecApp(START, TZ)
    assert app.upgrade(PlanRequest(edition=Edition.PRO, user_group_limit=500), START) is Outcome.ACCEPTED
    assert app.locked_items(START) == [Item.EDITION]  # naming the new default after an Upgrade is a revert
    later = START + timedelta(days=1)
    assert app.change_plan(PlanRequest(user_group_limit=800), later) is Outcome.ACCEPTED
    assert app.change_plan(PlanRequest(user_group_limit=500), later) is Outcome.ACCEPTED  # revert
    assert app.change_plan(PlanRequest(user_group_limit=900), later) is Outcome.FAILED_PRECONDITION  # again
