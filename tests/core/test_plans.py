"""Every plan rule of SPEC section 1, one example each, on the pure core."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from imlimits_server.core import plans
from imlimits_server.core.editions import Edition, Item, Limits, adjust_to_edition, default_plan
from imlimits_server.core.errors import FailedPrecondition, InvalidArgument
from imlimits_server.core.plans import AppState, PlanRequest

TZ = ZoneInfo("Asia/Shanghai")
PRO = PlanRequest(edition=Edition.PRO)
ULTIMATE = PlanRequest(edition=Edition.ULTIMATE)


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=TZ)


def pro_app() -> AppState:
    """Console guide: the app was set to PRO on 2019-02-10."""
    return plans.upgrade(plans.create_app(1, at(2019, 1, 2)), PRO, at(2019, 2, 10), TZ)


def change(state: AppState, when: datetime, **named: object) -> AppState:
    return plans.change_plan(state, PlanRequest(**named), when, TZ)  # type: ignore[arg-type]


class TestEditions:
    def test_new_app_is_trial_with_trial_limits(self) -> None:
        state = plans.create_app(1, at(2019, 1, 2))
        assert state.plan == default_plan(Edition.TRIAL)
        assert state.plan.limits() == Limits(50, 20, 10, False)

    def test_pro_and_ultimate_defaults(self) -> None:
        assert default_plan(Edition.PRO).limits() == Limits(500, 200, 50, False)
        assert default_plan(Edition.ULTIMATE).limits() == Limits(1000, 2000, None, True)

    def test_av_add_on_makes_pro_rooms_unlimited(self) -> None:
        assert change(pro_app(), at(2019, 2, 15), av_room_unlimited=True).plan.limits().av_rooms is None


class TestOperations:
    def test_upgrade_only_from_trial(self) -> None:
        with pytest.raises(FailedPrecondition, match="use ChangePlan"):
            plans.upgrade(pro_app(), ULTIMATE, at(2019, 3, 1), TZ)

    @pytest.mark.parametrize("target", [None, Edition.TRIAL])
    def test_upgrade_goes_to_pro_or_ultimate(self, target: Edition | None) -> None:
        with pytest.raises(InvalidArgument, match="edition"):
            plans.upgrade(plans.create_app(1, at(2019, 1, 2)), PlanRequest(edition=target), at(2019, 2, 1), TZ)

    def test_change_plan_not_on_trial(self) -> None:
        with pytest.raises(FailedPrecondition, match="use Upgrade"):
            change(plans.create_app(1, at(2019, 1, 2)), at(2019, 2, 1), user_group_limit=600)

    def test_upgrade_with_add_ons(self) -> None:
        request = PlanRequest(edition=Edition.PRO, av_room_unlimited=True, user_group_limit=800,
                              group_member_limit=300)
        plan = plans.upgrade(plans.create_app(1, at(2019, 1, 2)), request, at(2019, 2, 1), TZ).plan
        assert (plan.edition, plan.av_room_unlimited, plan.user_group_limit, plan.group_member_limit) == \
            (Edition.PRO, True, 800, 300)

    def test_deactivate_is_final(self) -> None:
        state = plans.deactivate(pro_app(), at(2019, 3, 1))
        assert not state.active
        with pytest.raises(FailedPrecondition, match="deactivated"):
            change(state, at(2019, 4, 1), user_group_limit=600)
        with pytest.raises(FailedPrecondition, match="deactivated"):
            plans.upgrade(plans.deactivate(plans.create_app(2, at(2019, 1, 1)), at(2019, 1, 2)), PRO,
                          at(2019, 1, 3), TZ)
        assert plans.deactivate(state, at(2019, 4, 1)) is state

    def test_time_must_not_go_back(self) -> None:
        with pytest.raises(FailedPrecondition, match="back in time"):
            change(pro_app(), at(2019, 2, 9), user_group_limit=600)

    def test_same_instant_is_not_going_back(self) -> None:
        assert change(pro_app(), at(2019, 2, 10), user_group_limit=600).plan.user_group_limit == 600

    def test_request_that_changes_nothing_records_nothing(self) -> None:
        state = pro_app()
        assert change(state, at(2019, 2, 11), edition=Edition.PRO, user_group_limit=500) is state


class TestBounds:
    @pytest.mark.parametrize(("edition", "low"), [(Edition.PRO, 500), (Edition.ULTIMATE, 1000)])
    def test_user_group_limit_from_default_to_5000(self, edition: Edition, low: int) -> None:
        state = plans.create_app(1, at(2019, 1, 2))
        for value in (low - 1, 5001):
            with pytest.raises(InvalidArgument, match="user_group_limit"):
                plans.upgrade(state, PlanRequest(edition=edition, user_group_limit=value), at(2019, 2, 1), TZ)
        for value in (low, 5000):
            plan = plans.upgrade(state, PlanRequest(edition=edition, user_group_limit=value), at(2019, 2, 1), TZ).plan
            assert (plan.edition, plan.user_group_limit) == (edition, value)
            assert plan.limits().user_groups == value

    @pytest.mark.parametrize(("edition", "low"), [(Edition.PRO, 200), (Edition.ULTIMATE, 2000)])
    def test_group_member_limit_from_default_to_6000(self, edition: Edition, low: int) -> None:
        state = plans.create_app(1, at(2019, 1, 2))
        for value in (low - 1, 6001):
            with pytest.raises(InvalidArgument, match="group_member_limit"):
                plans.upgrade(state, PlanRequest(edition=edition, group_member_limit=value), at(2019, 2, 1), TZ)
        for value in (low, 6000):
            plan = plans.upgrade(state, PlanRequest(edition=edition, group_member_limit=value), at(2019, 2, 1),
                                 TZ).plan
            assert (plan.edition, plan.group_member_limit) == (edition, value)
            assert plan.limits().group_members == value

    @pytest.mark.parametrize("value", [True, False])
    def test_av_add_on_not_applicable_outside_pro(self, value: bool) -> None:
        with pytest.raises(InvalidArgument, match="not applicable"):
            plans.upgrade(plans.create_app(1, at(2019, 1, 2)),
                          PlanRequest(edition=Edition.ULTIMATE, av_room_unlimited=value), at(2019, 2, 1), TZ)

    def test_no_add_ons_on_trial(self) -> None:
        with pytest.raises(InvalidArgument, match=r"user_group_limit.*only on"):
            change(pro_app(), at(2019, 3, 1), edition=Edition.TRIAL, user_group_limit=500)

    def test_bounds_are_for_the_target_edition(self) -> None:
        # 600 is fine on PRO but below ULTIMATE's default.
        with pytest.raises(InvalidArgument, match="user_group_limit: must be from 1000"):
            change(pro_app(), at(2019, 3, 1), edition=Edition.ULTIMATE, user_group_limit=600)

    def test_message_names_first_refused_item(self) -> None:
        with pytest.raises(InvalidArgument) as refused:
            change(pro_app(), at(2019, 3, 1), user_group_limit=1, group_member_limit=1)
        assert refused.value.field == "user_group_limit"


class TestImplicitAdjustment:
    def test_limit_below_new_default_is_raised_one_above_is_kept(self) -> None:
        state = change(pro_app(), at(2019, 2, 11), user_group_limit=3000, group_member_limit=300)
        plan = change(state, at(2019, 3, 1), edition=Edition.ULTIMATE).plan
        assert (plan.user_group_limit, plan.group_member_limit) == (3000, 2000)

    def test_av_add_on_dropped_when_leaving_pro(self) -> None:
        state = change(pro_app(), at(2019, 2, 11), av_room_unlimited=True)
        assert not change(state, at(2019, 3, 1), edition=Edition.ULTIMATE).plan.av_room_unlimited

    def test_going_to_trial_resets_every_add_on(self) -> None:
        state = change(pro_app(), at(2019, 2, 11), av_room_unlimited=True, user_group_limit=900)
        assert change(state, at(2019, 3, 1), edition=Edition.TRIAL).plan == default_plan(Edition.TRIAL)

    def test_implicit_adjustments_are_not_changes(self) -> None:
        state = change(pro_app(), at(2019, 3, 1), edition=Edition.ULTIMATE)  # ugl 500 -> 1000 implicitly
        assert plans.locked_items(state, at(2019, 3, 2), TZ) == [Item.EDITION]
        state = change(state, at(2019, 3, 2), user_group_limit=1500)
        assert state.plan.user_group_limit == 1500
        history = [(c.item, c.implicit) for c in plans.plan_changes(state) if c.at == at(2019, 3, 1)]
        assert history == [("edition", False), ("user_group_limit", True), ("group_member_limit", True)]

    def test_adjust_to_same_edition_is_identity(self) -> None:
        plan = change(pro_app(), at(2019, 2, 11), user_group_limit=700).plan
        assert adjust_to_edition(plan, Edition.PRO) == plan


class TestMonthlyRule:
    def test_edition_changes_once_a_month(self) -> None:
        state = change(pro_app(), at(2019, 3, 1), edition=Edition.ULTIMATE)
        with pytest.raises(FailedPrecondition, match="may change again on 2019-04-01") as refused:
            change(state, at(2019, 3, 20), edition=Edition.TRIAL)
        violation = refused.value.violation
        assert violation is not None and (violation.type, violation.subject) == ("MONTHLY_CHANGE_USED", "edition")
        assert change(state, at(2019, 4, 1), edition=Edition.TRIAL).plan.edition is Edition.TRIAL

    def test_revert_allowed_but_change_stays_used(self) -> None:
        state = change(pro_app(), at(2019, 3, 1), user_group_limit=800)
        state = change(state, at(2019, 3, 2), user_group_limit=500)  # revert to the month-start value
        assert plans.locked_items(state, at(2019, 3, 3), TZ) == [Item.USER_GROUP_LIMIT]
        with pytest.raises(FailedPrecondition, match="user_group_limit"):
            change(state, at(2019, 3, 3), user_group_limit=900)

    def test_each_add_on_has_its_own_change(self) -> None:
        state = change(pro_app(), at(2019, 3, 1), user_group_limit=800)
        state = change(state, at(2019, 3, 2), group_member_limit=400)
        state = change(state, at(2019, 3, 3), av_room_unlimited=True)
        state = change(state, at(2019, 3, 4), edition=Edition.ULTIMATE)
        assert plans.locked_items(state, at(2019, 3, 5), TZ) == list(Item)

    def test_upgrade_counts_as_the_edition_change_and_named_add_ons_as_theirs(self) -> None:
        request = PlanRequest(edition=Edition.PRO, group_member_limit=300)
        state = plans.upgrade(plans.create_app(1, at(2019, 1, 2)), request, at(2019, 2, 10), TZ)
        assert plans.locked_items(state, at(2019, 2, 11), TZ) == [Item.EDITION, Item.GROUP_MEMBER_LIMIT]

    def test_baseline_after_upgrade_is_new_default(self) -> None:
        # Naming the new edition's default in the Upgrade is a revert, not a change.
        request = PlanRequest(edition=Edition.PRO, user_group_limit=500)
        state = plans.upgrade(plans.create_app(1, at(2019, 1, 2)), request, at(2019, 2, 10), TZ)
        assert plans.locked_items(state, at(2019, 2, 11), TZ) == [Item.EDITION]
        assert change(state, at(2019, 2, 12), user_group_limit=700).plan.user_group_limit == 700

    def test_reverting_edition_through_trial(self) -> None:
        state = change(pro_app(), at(2019, 3, 1), edition=Edition.TRIAL)
        state = plans.upgrade(state, PRO, at(2019, 3, 2), TZ)  # back to the month-start edition
        assert state.plan.edition is Edition.PRO
        with pytest.raises(FailedPrecondition, match="edition"):
            change(state, at(2019, 3, 3), edition=Edition.ULTIMATE)

    def test_months_follow_the_time_zone(self) -> None:
        state = change(pro_app(), at(2019, 2, 28, 23, 30), user_group_limit=800)
        # 00:10 on March 1st in Shanghai is still February 28th in UTC, but a new month here.
        assert change(state, at(2019, 3, 1, 0, 10), user_group_limit=900).plan.user_group_limit == 900
        with pytest.raises(FailedPrecondition):
            change(state, at(2019, 2, 28, 23, 59), user_group_limit=900)

    def test_refusal_names_first_item_in_order(self) -> None:
        state = change(pro_app(), at(2019, 3, 1), user_group_limit=800, group_member_limit=300)
        with pytest.raises(FailedPrecondition) as refused:
            change(state, at(2019, 3, 2), group_member_limit=400, user_group_limit=900)
        assert refused.value.violation is not None and refused.value.violation.subject == "user_group_limit"

    def test_refused_request_is_refused_whole(self) -> None:
        state = change(pro_app(), at(2019, 3, 1), user_group_limit=800)
        with pytest.raises(FailedPrecondition):
            change(state, at(2019, 3, 2), group_member_limit=400, user_group_limit=900)
        assert state.plan.group_member_limit == 200


class TestRefusalOrder:
    def test_deactivated_before_wrong_operation(self) -> None:
        state = plans.deactivate(pro_app(), at(2019, 3, 1))
        with pytest.raises(FailedPrecondition, match="deactivated"):
            plans.upgrade(state, PRO, at(2019, 3, 2), TZ)

    def test_wrong_operation_before_time(self) -> None:
        with pytest.raises(FailedPrecondition, match="use ChangePlan"):
            plans.upgrade(pro_app(), ULTIMATE, at(2019, 1, 1), TZ)

    def test_time_before_bounds(self) -> None:
        with pytest.raises(FailedPrecondition, match="back in time"):
            change(pro_app(), at(2019, 1, 1), user_group_limit=1)

    def test_bounds_before_monthly_rule(self) -> None:
        state = change(pro_app(), at(2019, 3, 1), user_group_limit=800)
        with pytest.raises(InvalidArgument):
            change(state, at(2019, 3, 2), user_group_limit=9000)


class TestConsoleScenarios:
    """The three scenarios of the console guide (research/000_a0b85cbecdee1fc4.txt) as plan changes."""

    def test_scenario_one_av_on_then_off_in_february(self) -> None:
        state = change(pro_app(), at(2019, 2, 15), av_room_unlimited=True)
        state = change(state, at(2019, 2, 25), av_room_unlimited=False)
        assert not state.plan.av_room_unlimited
        assert plans.locked_items(state, at(2019, 2, 26), TZ) == [Item.EDITION, Item.AV_ROOM_UNLIMITED]

    def test_scenario_two_av_on_and_kept(self) -> None:
        state = change(pro_app(), at(2019, 2, 15), av_room_unlimited=True)
        assert state.plan.av_room_unlimited
        assert plans.locked_items(state, at(2019, 3, 1), TZ) == []

    def test_scenario_three_av_on_in_april(self) -> None:
        state = change(pro_app(), at(2019, 4, 10), av_room_unlimited=True)
        assert [(c.item, c.new_value) for c in plans.plan_changes(state)][-1] == ("av_room_unlimited", "true")
