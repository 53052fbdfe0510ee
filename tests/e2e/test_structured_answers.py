"""What callers word in their own language comes as data, beside the English text.

A group's usage names the limit that applies to it; the history names the
deployment's time zone; a bill names its rule and the values its reasons
speak of; a refused plan call carries a google.rpc.ErrorInfo with its reason
and values.
"""

from __future__ import annotations

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from e2e.helpers import refused, ts
from imlimits.v1 import limit_pb2, plan_pb2
from imlimits.v1.limit_pb2_grpc import LimitServiceStub
from imlimits.v1.plan_pb2_grpc import PlanServiceStub

Code = grpc.StatusCode
WORK, AV, COMMUNITY = limit_pb2.GROUP_TYPE_WORK, limit_pb2.GROUP_TYPE_AVCHATROOM, limit_pb2.GROUP_TYPE_COMMUNITY


def error_info(error: grpc.RpcError) -> tuple[str, str, dict[str, str]]:
    status = rpc_status.from_call(error)
    assert status is not None
    for detail in status.details:
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            return info.reason, info.domain, dict(info.metadata)
    raise AssertionError(f"no ErrorInfo in {status}")


@pytest.fixture
def ultimate(plans: PlanServiceStub, app_id: int) -> int:
    plans.CreateApp(plan_pb2.CreateAppRequest(app_id=app_id, at=ts(2019, 1, 2)))
    plans.Upgrade(plan_pb2.UpgradeRequest(app_id=app_id, edition=plan_pb2.EDITION_ULTIMATE, at=ts(2019, 1, 3)))
    return app_id


def test_a_groups_usage_names_the_limit_that_applies(limits: LimitServiceStub, ultimate: int) -> None:
    """Issue 23: a group created with --max-members 1 showed 1 / 20, the plan's limit."""
    def create(group_id: str, type: limit_pb2.GroupType.ValueType, max_members: int) -> None:
        answer = limits.CreateGroup(limit_pb2.CreateGroupRequest(app_id=ultimate, group_id=group_id, type=type,
                                                                 owner="boss", max_members=max_members))
        assert answer.code == 0, answer

    def usage(group_id: str) -> tuple[int, bool, int, int, int]:
        answer = limits.GetUsage(limit_pb2.GetUsageRequest(app_id=ultimate, group_id=group_id))
        return (answer.group_members, answer.HasField("group_members_limit"), answer.group_members_limit,
                answer.group_max_members, answer.group_type)

    create("capped", WORK, 1)
    create("plain", WORK, 0)
    create("club", COMMUNITY, 0)
    create("stage", AV, 0)
    create("small-stage", AV, 30)
    assert usage("capped") == (1, True, 1, 1, WORK)
    assert usage("plain") == (1, True, 2000, 0, WORK)
    assert usage("club") == (1, True, 100_000, 0, COMMUNITY)
    assert usage("stage") == (0, False, 0, 0, AV)  # no member limit at all
    assert usage("small-stage") == (0, True, 30, 30, AV)
    # Without a group asked for, none of them is set.
    plain = limits.GetUsage(limit_pb2.GetUsageRequest(app_id=ultimate))
    assert not plain.HasField("group_members_limit") and plain.group_type == 0


def test_wide_cap_meets_the_plans_limit(plans: PlanServiceStub, limits: LimitServiceStub, ultimate: int) -> None:
    plans.ChangePlan(plan_pb2.ChangePlanRequest(app_id=ultimate, group_member_limit=6000, at=ts(2019, 2, 1)))
    limits.CreateGroup(limit_pb2.CreateGroupRequest(app_id=ultimate, group_id="wide", type=WORK, max_members=5000))
    answer = limits.GetUsage(limit_pb2.GetUsageRequest(app_id=ultimate, group_id="wide"))
    assert (answer.group_members_limit, answer.group_max_members) == (5000, 5000)
    plans.ChangePlan(plan_pb2.ChangePlanRequest(app_id=ultimate, group_member_limit=2000, at=ts(2019, 2, 2)))
    answer = limits.GetUsage(limit_pb2.GetUsageRequest(app_id=ultimate, group_id="wide"))
    assert (answer.group_members_limit, answer.group_max_members) == (2000, 5000)


def test_history_names_the_time_zone(plans: PlanServiceStub, ultimate: int) -> None:
    history = plans.ListPlanChanges(plan_pb2.ListPlanChangesRequest(app_id=ultimate))
    assert history.time_zone == "Asia/Shanghai"


def test_a_bill_names_its_rule_and_the_days_it_speaks_of(plans: PlanServiceStub, app_id: int) -> None:
    plans.CreateApp(plan_pb2.CreateAppRequest(app_id=app_id, at=ts(2019, 3, 3)))
    plans.Upgrade(plan_pb2.UpgradeRequest(app_id=app_id, edition=plan_pb2.EDITION_PRO, user_group_limit=700,
                                          at=ts(2019, 3, 5)))
    march = plans.GetBill(plan_pb2.GetBillRequest(app_id=app_id, month="2019-03"))
    assert (march.rule, march.created_on, march.edition_changed_on, march.deactivated_on) == \
        (plan_pb2.BILL_RULE_EDITION_CHANGED, "2019-03-03", "2019-03-05", "")
    # Created on the 3rd: charged as it started, not "as of 2019-03-01", a day it did not exist.
    assert all("the configuration the app started with on 2019-03-03" in line.reason for line in march.lines)
    assert all("2019-03-01" not in line.reason for line in march.lines)
    april = plans.GetBill(plan_pb2.GetBillRequest(app_id=app_id, month="2019-04"))
    assert april.rule == plan_pb2.BILL_RULE_HIGHEST_LEVEL
    groups = next(line for line in april.lines if line.item == "user_group_limit")
    assert (groups.level, groups.edition_default, groups.charged, groups.steps, groups.step > 0) == \
        ("700", 500, True, -(-200 // groups.step), True)
    february = plans.GetBill(plan_pb2.GetBillRequest(app_id=app_id, month="2019-02"))
    assert (february.rule, february.created_on) == (plan_pb2.BILL_RULE_NOT_CREATED, "2019-03-03")
    plans.Deactivate(plan_pb2.DeactivateRequest(app_id=app_id, confirm=True, at=ts(2019, 5, 20)))
    may = plans.GetBill(plan_pb2.GetBillRequest(app_id=app_id, month="2019-05"))
    assert (may.rule, may.deactivated_on) == (plan_pb2.BILL_RULE_HIGHEST_LEVEL, "2019-05-20")
    june = plans.GetBill(plan_pb2.GetBillRequest(app_id=app_id, month="2019-06"))
    assert (june.rule, june.deactivated_on) == (plan_pb2.BILL_RULE_DEACTIVATED, "2019-05-20")


def test_refused_plan_calls_carry_their_reason_and_values(plans: PlanServiceStub, ultimate: int) -> None:
    error = refused(lambda: plans.ChangePlan(plan_pb2.ChangePlanRequest(app_id=ultimate, user_group_limit=100)),
                    Code.INVALID_ARGUMENT, "the EDITION_ULTIMATE default")
    assert error_info(error) == ("LIMIT_OUT_OF_BOUNDS", "imlimits.v1", {
        "field": "user_group_limit", "edition": "EDITION_ULTIMATE", "low": "1000", "high": "5000", "value": "100"})
    error = refused(lambda: plans.ChangePlan(plan_pb2.ChangePlanRequest(app_id=ultimate, av_room_unlimited=True)),
                    Code.INVALID_ARGUMENT)
    assert error_info(error)[0::2] == ("AV_ADD_ON_PRO_ONLY", {"field": "av_room_unlimited",
                                                              "edition": "EDITION_ULTIMATE"})
    error = refused(lambda: plans.Upgrade(plan_pb2.UpgradeRequest(app_id=ultimate, edition=plan_pb2.EDITION_PRO)),
                    Code.FAILED_PRECONDITION)
    assert error_info(error)[0::2] == ("WRONG_OPERATION", {"edition": "EDITION_ULTIMATE", "use": "ChangePlan"})
    # The edition changed in January: a second change that month names the day and the revert.
    error = refused(lambda: plans.ChangePlan(plan_pb2.ChangePlanRequest(
        app_id=ultimate, edition=plan_pb2.EDITION_PRO, at=ts(2019, 1, 20))), Code.FAILED_PRECONDITION)
    assert error_info(error)[0::2] == ("MONTHLY_CHANGE_USED", {
        "item": "edition", "month": "2019-01", "again": "2019-02-01", "revert_to": "EDITION_TRIAL"})
    error = refused(lambda: plans.GetBill(plan_pb2.GetBillRequest(app_id=ultimate, month="2999-01")),
                    Code.FAILED_PRECONDITION)
    assert error_info(error)[0] == "MONTH_IN_FUTURE" and error_info(error)[2]["month"] == "2999-01"
    error = refused(lambda: plans.GetBill(plan_pb2.GetBillRequest(app_id=ultimate, month="2019-1")),
                    Code.INVALID_ARGUMENT)
    assert error_info(error)[0::2] == ("FIELD_INVALID", {"field": "month"})
    plans.Deactivate(plan_pb2.DeactivateRequest(app_id=ultimate, confirm=True))
    error = refused(lambda: plans.ChangePlan(plan_pb2.ChangePlanRequest(app_id=ultimate, user_group_limit=1200)),
                    Code.FAILED_PRECONDITION)
    assert error_info(error)[0::2] == ("APP_DEACTIVATED", {"app_id": str(ultimate)})
