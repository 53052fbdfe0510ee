"""Edition defaults are not add-ons, through the real server: ULTIMATE's 2000 members do not follow the app to PRO."""

from __future__ import annotations

from e2e.helpers import ts
from imlimits.v1 import plan_pb2, plan_pb2_grpc


def test_ultimate_to_pro_follows_pro_defaults_and_bills_no_add_on(plans: plan_pb2_grpc.PlanServiceStub,
                                                                  app_id: int) -> None:
    plans.CreateApp(plan_pb2.CreateAppRequest(app_id=app_id, at=ts(2021, 1, 2)))
    plans.Upgrade(plan_pb2.UpgradeRequest(app_id=app_id, edition=plan_pb2.EDITION_ULTIMATE, at=ts(2021, 1, 10)))
    app = plans.ChangePlan(plan_pb2.ChangePlanRequest(app_id=app_id, edition=plan_pb2.EDITION_PRO,
                                                      at=ts(2021, 2, 5)))
    assert (app.user_group_limit, app.group_member_limit) == (500, 200)
    assert (app.limits.user_groups, app.limits.group_members) == (500, 200)
    assert list(app.locked_items) == ["edition"]
    march = plans.GetBill(plan_pb2.GetBillRequest(app_id=app_id, month="2021-03"))
    assert {line.item: line.charged for line in march.lines} == {
        "edition": True, "av_room_unlimited": False, "user_group_limit": False, "group_member_limit": False}


def test_bought_members_stay_on_pro_and_are_billed_there(plans: plan_pb2_grpc.PlanServiceStub, app_id: int) -> None:
    plans.CreateApp(plan_pb2.CreateAppRequest(app_id=app_id, at=ts(2021, 1, 2)))
    plans.Upgrade(plan_pb2.UpgradeRequest(app_id=app_id, edition=plan_pb2.EDITION_ULTIMATE, group_member_limit=3000,
                                          at=ts(2021, 1, 10)))
    app = plans.ChangePlan(plan_pb2.ChangePlanRequest(app_id=app_id, edition=plan_pb2.EDITION_PRO,
                                                      at=ts(2021, 2, 5)))
    assert app.group_member_limit == 3000
    march = plans.GetBill(plan_pb2.GetBillRequest(app_id=app_id, month="2021-03"))
    members = next(line for line in march.lines if line.item == "group_member_limit")
    assert members.charged and members.level == "3000" and "EDITION_PRO default 200" in members.reason
