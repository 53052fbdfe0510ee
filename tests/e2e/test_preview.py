"""PreviewPlanChange: the console's cost preview, through a real channel to a real server.

A preview is the dry run of the same request plus what it locks and the two
bills it shapes; it must agree with what the change then does, and be refused
exactly as the dry run is.
"""

from __future__ import annotations

from collections.abc import Callable

import grpc
import pytest

from e2e.helpers import refused, ts
from imlimits.v1 import plan_pb2
from imlimits.v1.plan_pb2_grpc import PlanServiceStub

Code = grpc.StatusCode
PRO, ULTIMATE, TRIAL = plan_pb2.EDITION_PRO, plan_pb2.EDITION_ULTIMATE, plan_pb2.EDITION_TRIAL


def of_upgrade(request: plan_pb2.UpgradeRequest) -> plan_pb2.PreviewPlanChangeRequest:
    return plan_pb2.PreviewPlanChangeRequest(upgrade=request)


def of_change(request: plan_pb2.ChangePlanRequest) -> plan_pb2.PreviewPlanChangeRequest:
    return plan_pb2.PreviewPlanChangeRequest(change_plan=request)


@pytest.fixture
def trial(plans: PlanServiceStub, app_id: int) -> int:
    plans.CreateApp(plan_pb2.CreateAppRequest(app_id=app_id, at=ts(2019, 1, 2)))
    return app_id


@pytest.fixture
def pro(plans: PlanServiceStub, trial: int) -> int:
    """Set to PRO on 2019-02-10, as in the console guide's scenarios."""
    plans.Upgrade(plan_pb2.UpgradeRequest(app_id=trial, edition=PRO, at=ts(2019, 2, 10)))
    return trial


def snapshot(plans: PlanServiceStub, app_id: int) -> tuple[plan_pb2.App, list[plan_pb2.PlanChange]]:
    return (plans.GetApp(plan_pb2.GetAppRequest(app_id=app_id)),
            list(plans.ListPlanChanges(plan_pb2.ListPlanChangesRequest(app_id=app_id)).changes))


def test_upgrade_preview_charges_nothing_this_month_and_the_edition_from_the_next(
        plans: PlanServiceStub, trial: int) -> None:
    before = snapshot(plans, trial)
    preview = plans.PreviewPlanChange(of_upgrade(plan_pb2.UpgradeRequest(app_id=trial, edition=PRO,
                                                                         at=ts(2019, 2, 10))))
    assert (preview.app.edition, preview.app.user_group_limit, list(preview.newly_locked_items)) == \
        (PRO, 500, ["edition"])
    assert (preview.this_month.month, preview.this_month.total) == ("2019-02", 0)
    assert (preview.next_month.month, preview.next_month.issued_on, preview.next_month.total) == \
        ("2019-03", "2019-04-01", 99900)
    assert [line.item for line in preview.next_month.lines] == \
        ["edition", "av_room_unlimited", "user_group_limit", "group_member_limit"]
    assert snapshot(plans, trial) == before


def test_add_on_preview_follows_the_console_guides_second_scenario(plans: PlanServiceStub, pro: int) -> None:
    """AV on 02-15 in the month the edition changed: not charged for February, charged from March."""
    preview = plans.PreviewPlanChange(of_change(plan_pb2.ChangePlanRequest(
        app_id=pro, av_room_unlimited=True, at=ts(2019, 2, 15))))
    assert list(preview.newly_locked_items) == ["av_room_unlimited"]
    assert list(preview.app.locked_items) == ["edition", "av_room_unlimited"]
    assert preview.this_month.total == 0
    av_line = preview.next_month.lines[1]
    assert (av_line.item, av_line.charged, preview.next_month.total) == ("av_room_unlimited", True, 99900 + 30000)


@pytest.mark.parametrize("change", [
    plan_pb2.ChangePlanRequest(av_room_unlimited=True, at=ts(2019, 3, 5)),
    plan_pb2.ChangePlanRequest(edition=ULTIMATE, group_member_limit=3000, at=ts(2019, 3, 5)),
    plan_pb2.ChangePlanRequest(edition=TRIAL, at=ts(2019, 3, 5)),
    plan_pb2.ChangePlanRequest(user_group_limit=500, at=ts(2019, 3, 5)),  # changes nothing
])
def test_preview_agrees_with_the_change_it_previews(plans: PlanServiceStub, pro: int,
                                                    change: plan_pb2.ChangePlanRequest) -> None:
    change.app_id = pro
    locked_before = set(plans.GetApp(plan_pb2.GetAppRequest(app_id=pro)).locked_items)
    preview = plans.PreviewPlanChange(of_change(change))
    app = plans.ChangePlan(change)
    assert preview.app == app
    assert set(preview.newly_locked_items) == set(app.locked_items) - locked_before
    assert preview.this_month == plans.GetBill(plan_pb2.GetBillRequest(app_id=pro, month="2019-03"))
    # Nothing else changed, so April reads as previewed.
    assert preview.next_month == plans.GetBill(plan_pb2.GetBillRequest(app_id=pro, month="2019-04"))


def _refusal(call: Callable[[], object]) -> tuple[grpc.StatusCode, str, bytes]:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    error = caught.value
    status_details = dict(error.trailing_metadata() or ()).get("grpc-status-details-bin", b"")
    return error.code(), error.details(), status_details


@pytest.mark.parametrize("name, upgrade", [
    ("unknown app", lambda app: plan_pb2.UpgradeRequest(app_id=app + 10**9, edition=PRO)),
    ("upgrade from PRO", lambda app: plan_pb2.UpgradeRequest(app_id=app, edition=ULTIMATE, at=ts(2019, 3, 5))),
    ("target TRIAL", lambda app: plan_pb2.UpgradeRequest(app_id=app, edition=TRIAL)),
    ("app_id 0", lambda app: plan_pb2.UpgradeRequest(app_id=0, edition=PRO)),
])
def test_upgrade_preview_is_refused_as_its_dry_run(plans: PlanServiceStub, pro: int, name: str,
                                                   upgrade: Callable[[int], plan_pb2.UpgradeRequest]) -> None:
    request = upgrade(pro)
    preview = _refusal(lambda: plans.PreviewPlanChange(of_upgrade(request)))
    request.dry_run = True
    assert preview == _refusal(lambda: plans.Upgrade(request))


@pytest.mark.parametrize("name, change", [
    ("monthly rule", plan_pb2.ChangePlanRequest(user_group_limit=900, at=ts(2019, 3, 7))),
    ("bounds", plan_pb2.ChangePlanRequest(group_member_limit=6001, at=ts(2019, 3, 7))),
    ("not applicable", plan_pb2.ChangePlanRequest(edition=ULTIMATE, av_room_unlimited=True, at=ts(2019, 3, 7))),
    ("back in time", plan_pb2.ChangePlanRequest(user_group_limit=700, at=ts(2019, 3, 1))),
])
def test_change_preview_is_refused_as_its_dry_run(plans: PlanServiceStub, pro: int, name: str,
                                                  change: plan_pb2.ChangePlanRequest) -> None:
    plans.ChangePlan(plan_pb2.ChangePlanRequest(app_id=pro, user_group_limit=800, at=ts(2019, 3, 5)))
    change.app_id = pro
    preview = _refusal(lambda: plans.PreviewPlanChange(of_change(change)))
    assert preview[0] in (Code.FAILED_PRECONDITION, Code.INVALID_ARGUMENT)
    change.dry_run = True
    assert preview == _refusal(lambda: plans.ChangePlan(change))


def test_preview_of_a_deactivated_app_is_refused_as_its_dry_run(plans: PlanServiceStub, pro: int) -> None:
    plans.Deactivate(plan_pb2.DeactivateRequest(app_id=pro, confirm=True, at=ts(2019, 3, 1)))
    change = plan_pb2.ChangePlanRequest(app_id=pro, user_group_limit=600, at=ts(2019, 3, 2))
    preview = _refusal(lambda: plans.PreviewPlanChange(of_change(change)))
    assert preview[0] == Code.FAILED_PRECONDITION and "deactivated" in preview[1]
    change.dry_run = True
    assert preview == _refusal(lambda: plans.ChangePlan(change))


def test_preview_names_one_change(plans: PlanServiceStub) -> None:
    refused(lambda: plans.PreviewPlanChange(plan_pb2.PreviewPlanChangeRequest()), Code.INVALID_ARGUMENT, "change")


def test_preview_of_a_request_already_made_changes_nothing(plans: PlanServiceStub, pro: int) -> None:
    change = plan_pb2.ChangePlanRequest(app_id=pro, user_group_limit=800, request_id="ugl-800", at=ts(2019, 3, 5))
    app = plans.ChangePlan(change)
    preview = plans.PreviewPlanChange(of_change(change))
    assert preview.app == app and list(preview.newly_locked_items) == []
    other = plan_pb2.ChangePlanRequest(app_id=pro, user_group_limit=900, request_id="ugl-800", at=ts(2019, 3, 5))
    preview_refusal = _refusal(lambda: plans.PreviewPlanChange(of_change(other)))
    assert preview_refusal[:2] == (Code.INVALID_ARGUMENT, "request_id: was already used for a different request "
                                                          "to this app")
