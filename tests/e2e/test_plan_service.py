"""PlanService through a real channel to a real server on a real Redis."""

from __future__ import annotations

import grpc
import pytest

from e2e.helpers import precondition_failure, refused, ts
from imlimits.v1 import plan_pb2
from imlimits.v1.plan_pb2_grpc import PlanServiceStub

Code = grpc.StatusCode


@pytest.fixture
def pro(plans: PlanServiceStub, app_id: int) -> int:
    """An app created 2019-01-02 and set to PRO on 2019-02-10, as in the console guide."""
    plans.CreateApp(plan_pb2.CreateAppRequest(app_id=app_id, at=ts(2019, 1, 2)))
    plans.Upgrade(plan_pb2.UpgradeRequest(app_id=app_id, edition=plan_pb2.EDITION_PRO, at=ts(2019, 2, 10)))
    return app_id


def test_create_app_starts_on_trial(plans: PlanServiceStub, app_id: int) -> None:
    app = plans.CreateApp(plan_pb2.CreateAppRequest(app_id=app_id))
    assert (app.edition, app.status, app.user_group_limit, app.group_member_limit) == \
        (plan_pb2.EDITION_TRIAL, plan_pb2.APP_STATUS_ACTIVE, 50, 20)
    assert app.limits == plan_pb2.Limits(user_groups=50, group_members=20, av_rooms=10)
    assert plans.GetApp(plan_pb2.GetAppRequest(app_id=app_id)) == app


def test_create_existing_app_is_already_exists(plans: PlanServiceStub, app_id: int) -> None:
    plans.CreateApp(plan_pb2.CreateAppRequest(app_id=app_id))
    refused(lambda: plans.CreateApp(plan_pb2.CreateAppRequest(app_id=app_id)), Code.ALREADY_EXISTS)


def test_unknown_app_is_not_found(plans: PlanServiceStub, app_id: int) -> None:
    refused(lambda: plans.GetApp(plan_pb2.GetAppRequest(app_id=app_id)), Code.NOT_FOUND, str(app_id))
    refused(lambda: plans.ChangePlan(plan_pb2.ChangePlanRequest(app_id=app_id, user_group_limit=600)),
            Code.NOT_FOUND)


def test_malformed_input_before_unknown_app(plans: PlanServiceStub, app_id: int) -> None:
    refused(lambda: plans.GetApp(plan_pb2.GetAppRequest(app_id=0)), Code.INVALID_ARGUMENT, "app_id")
    refused(lambda: plans.Upgrade(plan_pb2.UpgradeRequest(app_id=app_id, edition=plan_pb2.EDITION_TRIAL)),
            Code.INVALID_ARGUMENT, "edition")
    refused(lambda: plans.Upgrade(plan_pb2.UpgradeRequest(app_id=app_id, edition=7)),  # type: ignore[arg-type]
            Code.INVALID_ARGUMENT, "edition")
    refused(lambda: plans.Deactivate(plan_pb2.DeactivateRequest(app_id=app_id)), Code.INVALID_ARGUMENT, "confirm")
    refused(lambda: plans.ChangePlan(plan_pb2.ChangePlanRequest(app_id=app_id, request_id="x" * 129)),
            Code.INVALID_ARGUMENT, "request_id")


def test_upgrade_sets_edition_and_add_ons(plans: PlanServiceStub, app_id: int) -> None:
    plans.CreateApp(plan_pb2.CreateAppRequest(app_id=app_id, at=ts(2019, 1, 2)))
    app = plans.Upgrade(plan_pb2.UpgradeRequest(
        app_id=app_id, edition=plan_pb2.EDITION_PRO, av_room_unlimited=True, user_group_limit=800,
        at=ts(2019, 2, 10)))
    assert (app.edition, app.av_room_unlimited, app.user_group_limit, app.group_member_limit) == \
        (plan_pb2.EDITION_PRO, True, 800, 200)
    assert app.limits == plan_pb2.Limits(user_groups=800, group_members=200, av_rooms_unlimited=True)
    assert list(app.locked_items) == ["edition", "av_room_unlimited", "user_group_limit"]


def test_upgrade_from_pro_says_use_change_plan(plans: PlanServiceStub, pro: int) -> None:
    refused(lambda: plans.Upgrade(plan_pb2.UpgradeRequest(app_id=pro, edition=plan_pb2.EDITION_ULTIMATE)),
            Code.FAILED_PRECONDITION, "use ChangePlan")


def test_change_plan_on_trial_says_use_upgrade(plans: PlanServiceStub, app_id: int) -> None:
    plans.CreateApp(plan_pb2.CreateAppRequest(app_id=app_id))
    refused(lambda: plans.ChangePlan(plan_pb2.ChangePlanRequest(app_id=app_id, user_group_limit=600)),
            Code.FAILED_PRECONDITION, "use Upgrade")


def test_change_plan_to_ultimate_adjusts_implicitly(plans: PlanServiceStub, pro: int) -> None:
    app = plans.ChangePlan(plan_pb2.ChangePlanRequest(app_id=pro, edition=plan_pb2.EDITION_ULTIMATE,
                                                      at=ts(2019, 3, 1)))
    assert (app.user_group_limit, app.group_member_limit) == (1000, 2000)
    assert app.limits.community_allowed and app.limits.av_rooms_unlimited
    changes = plans.ListPlanChanges(plan_pb2.ListPlanChangesRequest(app_id=pro)).changes
    assert [(c.item, c.old_value, c.new_value, c.operation, c.implicit) for c in changes[-3:]] == [
        ("edition", "EDITION_PRO", "EDITION_ULTIMATE", "ChangePlan", False),
        ("user_group_limit", "500", "1000", "ChangePlan", True),
        ("group_member_limit", "200", "2000", "ChangePlan", True),
    ]


def test_av_add_on_not_applicable_on_ultimate(plans: PlanServiceStub, pro: int) -> None:
    plans.ChangePlan(plan_pb2.ChangePlanRequest(app_id=pro, edition=plan_pb2.EDITION_ULTIMATE, at=ts(2019, 3, 1)))
    refused(lambda: plans.ChangePlan(plan_pb2.ChangePlanRequest(app_id=pro, av_room_unlimited=False)),
            Code.INVALID_ARGUMENT, "av_room_unlimited: not applicable")


def test_bounds_name_the_field_and_change_nothing(plans: PlanServiceStub, pro: int) -> None:
    before = plans.GetApp(plan_pb2.GetAppRequest(app_id=pro))
    refused(lambda: plans.ChangePlan(plan_pb2.ChangePlanRequest(app_id=pro, user_group_limit=700,
                                                                group_member_limit=6001)),
            Code.INVALID_ARGUMENT, "group_member_limit: must be from 200")
    assert plans.GetApp(plan_pb2.GetAppRequest(app_id=pro)) == before


def test_monthly_rule_with_precondition_details(plans: PlanServiceStub, pro: int) -> None:
    plans.ChangePlan(plan_pb2.ChangePlanRequest(app_id=pro, user_group_limit=800, at=ts(2019, 3, 1)))
    plans.ChangePlan(plan_pb2.ChangePlanRequest(app_id=pro, user_group_limit=500, at=ts(2019, 3, 2)))  # revert
    error = refused(
        lambda: plans.ChangePlan(plan_pb2.ChangePlanRequest(app_id=pro, user_group_limit=900, at=ts(2019, 3, 3))),
        Code.FAILED_PRECONDITION, "may change again on 2019-04-01")
    violation = precondition_failure(error).violations[0]
    assert (violation.type, violation.subject) == ("MONTHLY_CHANGE_USED", "user_group_limit")
    app = plans.ChangePlan(plan_pb2.ChangePlanRequest(app_id=pro, user_group_limit=900, at=ts(2019, 4, 1)))
    assert app.user_group_limit == 900 and list(app.locked_items) == ["user_group_limit"]


def test_time_going_back_is_refused(plans: PlanServiceStub, pro: int) -> None:
    refused(lambda: plans.ChangePlan(plan_pb2.ChangePlanRequest(app_id=pro, user_group_limit=600,
                                                                at=ts(2019, 2, 1))),
            Code.FAILED_PRECONDITION, "back in time")


def test_dry_run_answers_and_changes_nothing(plans: PlanServiceStub, pro: int) -> None:
    before = plans.GetApp(plan_pb2.GetAppRequest(app_id=pro))
    answer = plans.ChangePlan(plan_pb2.ChangePlanRequest(app_id=pro, user_group_limit=700, dry_run=True,
                                                         at=ts(2019, 3, 1)))
    assert answer.user_group_limit == 700
    assert plans.GetApp(plan_pb2.GetAppRequest(app_id=pro)) == before
    real = plans.ChangePlan(plan_pb2.ChangePlanRequest(app_id=pro, user_group_limit=700, at=ts(2019, 3, 1)))
    assert real == answer
    refused(lambda: plans.ChangePlan(plan_pb2.ChangePlanRequest(app_id=pro, user_group_limit=800, dry_run=True,
                                                                at=ts(2019, 3, 2))),
            Code.FAILED_PRECONDITION, "user_group_limit")


def test_request_id_replays_first_answer(plans: PlanServiceStub, pro: int) -> None:
    request = plan_pb2.ChangePlanRequest(app_id=pro, user_group_limit=800, request_id="op-1", at=ts(2019, 3, 1))
    first = plans.ChangePlan(request)
    plans.ChangePlan(plan_pb2.ChangePlanRequest(app_id=pro, group_member_limit=300, at=ts(2019, 3, 2)))
    assert plans.ChangePlan(request) == first
    changes = plans.ListPlanChanges(plan_pb2.ListPlanChangesRequest(app_id=pro)).changes
    assert [c.request_id for c in changes].count("op-1") == 1
    different = plan_pb2.ChangePlanRequest(app_id=pro, user_group_limit=900, request_id="op-1", at=ts(2019, 3, 1))
    refused(lambda: plans.ChangePlan(different), Code.INVALID_ARGUMENT, "request_id")


def test_refusals_are_not_remembered(plans: PlanServiceStub, pro: int) -> None:
    too_big = plan_pb2.ChangePlanRequest(app_id=pro, user_group_limit=9000, request_id="op-2", at=ts(2019, 3, 1))
    refused(lambda: plans.ChangePlan(too_big), Code.INVALID_ARGUMENT)
    fine = plan_pb2.ChangePlanRequest(app_id=pro, user_group_limit=900, request_id="op-2", at=ts(2019, 3, 1))
    assert plans.ChangePlan(fine).user_group_limit == 900


def test_request_id_replay_comes_before_deactivated(plans: PlanServiceStub, pro: int) -> None:
    request = plan_pb2.ChangePlanRequest(app_id=pro, user_group_limit=800, request_id="op-3", at=ts(2019, 3, 1))
    first = plans.ChangePlan(request)
    plans.Deactivate(plan_pb2.DeactivateRequest(app_id=pro, confirm=True, at=ts(2019, 3, 2)))
    assert plans.ChangePlan(request) == first


def test_create_app_retry_with_request_id(plans: PlanServiceStub, app_id: int) -> None:
    request = plan_pb2.CreateAppRequest(app_id=app_id, request_id="create-1")
    assert plans.CreateApp(request) == plans.CreateApp(request)


def test_deactivate_is_immediate_and_final(plans: PlanServiceStub, pro: int) -> None:
    app = plans.Deactivate(plan_pb2.DeactivateRequest(app_id=pro, confirm=True, at=ts(2019, 3, 5)))
    assert app.status == plan_pb2.APP_STATUS_DEACTIVATED
    refused(lambda: plans.ChangePlan(plan_pb2.ChangePlanRequest(app_id=pro, user_group_limit=600)),
            Code.FAILED_PRECONDITION, "deactivated")
    refused(lambda: plans.Upgrade(plan_pb2.UpgradeRequest(app_id=pro, edition=plan_pb2.EDITION_PRO)),
            Code.FAILED_PRECONDITION, "deactivated")
    assert plans.GetApp(plan_pb2.GetAppRequest(app_id=pro)).status == plan_pb2.APP_STATUS_DEACTIVATED
    assert plans.Deactivate(plan_pb2.DeactivateRequest(app_id=pro, confirm=True)) == \
        plans.GetApp(plan_pb2.GetAppRequest(app_id=pro))
    changes = plans.ListPlanChanges(plan_pb2.ListPlanChangesRequest(app_id=pro)).changes
    assert (changes[-1].item, changes[-1].new_value) == ("status", "APP_STATUS_DEACTIVATED")


def test_console_scenarios_as_plan_changes(plans: PlanServiceStub, pro: int) -> None:
    # Scenario one: AV on 02-15 and off 02-25 (a revert, always allowed).
    plans.ChangePlan(plan_pb2.ChangePlanRequest(app_id=pro, av_room_unlimited=True, at=ts(2019, 2, 15)))
    app = plans.ChangePlan(plan_pb2.ChangePlanRequest(app_id=pro, av_room_unlimited=False, at=ts(2019, 2, 25)))
    assert not app.av_room_unlimited and list(app.locked_items) == ["edition", "av_room_unlimited"]
    # Scenario three: nothing kept from February; AV on 2019-04-10.
    app = plans.ChangePlan(plan_pb2.ChangePlanRequest(app_id=pro, av_room_unlimited=True, at=ts(2019, 4, 10)))
    assert app.av_room_unlimited and app.limits.av_rooms_unlimited
