"""SPEC section 1: edition defaults are not add-ons.

"When the edition changes, a limit not named in the request follows the new
edition: a limit at the old edition's default (not extended) becomes the new
edition's default; an extended limit (one above the old edition's default,
that is, a bought add-on) is kept where it is above the new edition's default,
and otherwise becomes that default. [...] av_room_unlimited is dropped when
leaving PRO. Going to TRIAL resets every add-on. These implicit adjustments are
not "changes" for the monthly rule." And: "The month-start value is the value
at 00:00 on the 1st, put through the implicit adjustment for the current
edition."

The oracle below is written from those sentences, not from the core's helpers.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imlimits_server import price_list
from imlimits_server.core import plans
from imlimits_server.core.billing import Bill, bill
from imlimits_server.core.editions import Edition, Item
from imlimits_server.core.errors import FailedPrecondition, InvalidArgument
from imlimits_server.core.months import Month
from imlimits_server.core.plans import AppState, PlanRequest

TZ = ZoneInfo("Asia/Shanghai")
PRICES = price_list.load(None)
NOW = Month(2030, 1)
# SPEC section 1's table: (user_group_limit, group_member_limit) defaults.
SPEC_DEFAULTS = {Edition.TRIAL: (50, 20), Edition.PRO: (500, 200), Edition.ULTIMATE: (1000, 2000)}
PRO_PRICE, MEMBER_STEP = 99_900, 10_000  # the shipped price list: 999.00 CNY; 100.00 per started 100 members


def at(year: int, month: int, day: int) -> datetime:
    return datetime(year, month, day, tzinfo=TZ)


def ultimate_app(**named: object) -> AppState:
    """Created 2019-01-02, upgraded to ULTIMATE on 2019-01-10 with `named` add-ons."""
    request = PlanRequest(edition=Edition.ULTIMATE, **named)  # type: ignore[arg-type]
    return plans.upgrade(plans.create_app(1, at(2019, 1, 2)), request, at(2019, 1, 10), TZ)


def change(state: AppState, when: datetime, **named: object) -> AppState:
    return plans.change_plan(state, PlanRequest(**named), when, TZ)  # type: ignore[arg-type]


def charged(result: Bill) -> dict[str, int]:
    return {line.item.value: line.amount for line in result.lines if line.charged}


class TestSpecExamples:
    def test_ultimate_at_its_defaults_to_pro_gives_pro_defaults(self) -> None:
        plan = change(ultimate_app(), at(2019, 2, 5), edition=Edition.PRO).plan
        assert (plan.user_group_limit, plan.group_member_limit) == (500, 200)

    def test_ultimate_with_bought_members_to_pro_keeps_them(self) -> None:
        plan = change(ultimate_app(group_member_limit=3000), at(2019, 2, 5), edition=Edition.PRO).plan
        assert (plan.user_group_limit, plan.group_member_limit) == (500, 3000)

    def test_a_bought_limit_not_above_the_new_default_becomes_it(self) -> None:
        state = plans.upgrade(plans.create_app(1, at(2019, 1, 2)), PlanRequest(edition=Edition.PRO,
                              user_group_limit=800), at(2019, 1, 10), TZ)
        state = change(state, at(2019, 2, 5), edition=Edition.ULTIMATE)
        assert state.plan.user_group_limit == 1000
        # Now at ULTIMATE's default, the limit is the edition's, and follows the next edition.
        assert change(state, at(2019, 3, 5), edition=Edition.PRO).plan.user_group_limit == 500

    def test_av_dropped_leaving_pro_and_trial_resets_everything(self) -> None:
        state = plans.upgrade(plans.create_app(1, at(2019, 1, 2)), PlanRequest(
            edition=Edition.PRO, av_room_unlimited=True, user_group_limit=3000), at(2019, 1, 10), TZ)
        ultimate = change(state, at(2019, 2, 5), edition=Edition.ULTIMATE).plan
        assert not ultimate.av_room_unlimited and ultimate.user_group_limit == 3000
        trial = change(state, at(2019, 2, 5), edition=Edition.TRIAL).plan
        assert (trial.av_room_unlimited, trial.user_group_limit, trial.group_member_limit) == (False, 50, 20)

    def test_the_adjustments_are_implicit_in_the_history(self) -> None:
        state = change(ultimate_app(), at(2019, 2, 5), edition=Edition.PRO)
        lines = [(c.item, c.old_value, c.new_value, c.implicit) for c in plans.plan_changes(state)
                 if c.at == at(2019, 2, 5)]
        assert lines == [("edition", "EDITION_ULTIMATE", "EDITION_PRO", False),
                         ("user_group_limit", "1000", "500", True), ("group_member_limit", "2000", "200", True)]


class TestBills:
    def test_ultimate_defaults_are_not_billed_as_pro_add_ons(self) -> None:
        # The case: 2000 members kept on PRO billed 18 steps the customer never bought.
        state = change(ultimate_app(), at(2019, 2, 5), edition=Edition.PRO)
        assert charged(bill(state, Month(2019, 3), TZ, PRICES, NOW)) == {"edition": PRO_PRICE}

    def test_bought_members_are_billed_on_pro_from_the_next_month(self) -> None:
        state = change(ultimate_app(group_member_limit=3000), at(2019, 2, 5), edition=Edition.PRO)
        assert charged(bill(state, Month(2019, 3), TZ, PRICES, NOW)) == {
            "edition": PRO_PRICE, "group_member_limit": 28 * MEMBER_STEP}


class TestMonthlyRule:
    def test_the_baseline_is_the_month_start_value_adjusted_to_the_current_edition(self) -> None:
        # 2019-03 begins on ULTIMATE with 2000 members (its default); on PRO the baseline is 200.
        state = change(ultimate_app(), at(2019, 3, 5), edition=Edition.PRO)
        assert plans.locked_items(state, at(2019, 3, 6), TZ) == [Item.EDITION]
        state = change(state, at(2019, 3, 10), group_member_limit=400)
        state = change(state, at(2019, 3, 15), group_member_limit=200)  # a revert: always allowed
        assert state.plan.group_member_limit == 200
        with pytest.raises(FailedPrecondition, match="group_member_limit"):
            change(state, at(2019, 3, 20), group_member_limit=300)

    def test_naming_the_new_default_with_the_edition_is_no_change(self) -> None:
        state = change(ultimate_app(), at(2019, 3, 5), edition=Edition.PRO, group_member_limit=200)
        assert plans.locked_items(state, at(2019, 3, 6), TZ) == [Item.EDITION]
        assert change(state, at(2019, 3, 7), group_member_limit=600).plan.group_member_limit == 600


# The oracle: SPEC section 1 in its own words.

@dataclass(frozen=True)
class SpecPlan:
    edition: Edition = Edition.TRIAL
    av_room_unlimited: bool = False
    user_group_limit: int = 50
    group_member_limit: int = 20


def spec_follow(plan: SpecPlan, request: PlanRequest) -> SpecPlan:
    """The plan after an accepted request, by SPEC section 1's sentences."""
    new_edition = request.edition or plan.edition
    if new_edition != plan.edition:
        if new_edition is Edition.TRIAL:
            plan = SpecPlan()  # "Going to TRIAL resets every add-on."
        else:
            limits = []
            for index, value in enumerate((plan.user_group_limit, plan.group_member_limit)):
                old_default, new_default = SPEC_DEFAULTS[plan.edition][index], SPEC_DEFAULTS[new_edition][index]
                extended = value > old_default  # "one above the old edition's default, that is, a bought add-on"
                limits.append(value if extended and value > new_default else new_default)
            plan = SpecPlan(new_edition, plan.av_room_unlimited and new_edition is Edition.PRO, *limits)
    named = {item.value: value for item, value in request.named().items() if item is not Item.EDITION}
    return replace(plan, **named)  # type: ignore[arg-type]


@dataclass
class Path:
    state: AppState
    model: SpecPlan = field(default_factory=SpecPlan)
    # Every value a request named for each add-on, with when: nothing else may ever be billed.
    named: list[tuple[datetime, Item, object]] = field(default_factory=list)


editions = st.sampled_from([Edition.TRIAL, Edition.PRO, Edition.ULTIMATE])
requests = st.one_of(
    # An edition change alone: where the implicit adjustment does all the work.
    st.builds(PlanRequest, edition=editions),
    st.builds(
        PlanRequest,
        edition=st.one_of(st.none(), editions),
        av_room_unlimited=st.sampled_from([None, None, None, True, False]),
        user_group_limit=st.sampled_from([None, None, 500, 501, 800, 1000, 1001, 1500, 5000]),
        group_member_limit=st.sampled_from([None, None, 200, 300, 2000, 2001, 3000, 6000]),
    ),
)
steps = st.lists(st.tuples(st.integers(min_value=0, max_value=45), requests), min_size=1, max_size=14)


def walk(plan_steps: list[tuple[int, PlanRequest]], compare: bool = True) -> Path:
    """Apply the steps (refused ones change nothing); with `compare`, check each plan against the oracle."""
    when = at(2019, 1, 2)
    path = Path(plans.create_app(1, when))
    for days, request in plan_steps:
        when += timedelta(days=days, hours=1)
        operation = plans.upgrade if path.state.plan.edition is Edition.TRIAL else plans.change_plan
        locked_before = set(plans.locked_items(path.state, when, TZ))
        try:
            after = operation(path.state, request, when, TZ)
        except (InvalidArgument, FailedPrecondition):
            continue
        path.model = spec_follow(path.model, request)
        path.named += [(when, item, value) for item, value in request.named().items()]
        plan = after.plan
        assert not compare or SpecPlan(plan.edition, plan.av_room_unlimited, plan.user_group_limit,
                                       plan.group_member_limit) == path.model, request
        if set(request.named()) == {Item.EDITION}:
            # An edition change alone is no change of any add-on for the monthly rule.
            assert set(plans.locked_items(after, when, TZ)) - locked_before <= {Item.EDITION}
        path.state = after
    return path


@settings(max_examples=150, deadline=None)
@given(steps)
def test_random_edition_paths_follow_the_spec(plan_steps: list[tuple[int, PlanRequest]]) -> None:
    walk(plan_steps)


@settings(max_examples=150, deadline=None)
@given(steps)
def test_no_add_on_is_billed_that_no_request_named(plan_steps: list[tuple[int, PlanRequest]]) -> None:
    path = walk(plan_steps, compare=False)  # the bills alone must show it
    month, last = Month.of(path.state.created_at, TZ), Month.of(path.state.last_at, TZ).next()
    while month <= last:
        end = month.next().start(TZ)
        named = {(item, value) for when, item, value in path.named if when < end}
        for line in bill(path.state, month, TZ, PRICES, NOW).lines:
            if not line.charged or line.item is Item.EDITION:
                continue
            value: object = True if line.item is Item.AV_ROOM_UNLIMITED else int(line.level)
            assert (line.item, value) in named, (month, line)
        month = month.next()
