"""The sentences people read: check refusals and the monthly rule say what happened, in plain words."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from imlimits_server.core import plans
from imlimits_server.core.checks import CheckResult, ImCode
from imlimits_server.core.editions import Edition
from imlimits_server.core.errors import FailedPrecondition
from imlimits_server.core.plans import PlanRequest

TZ = ZoneInfo("Asia/Shanghai")


@pytest.mark.parametrize(("result", "info"), [
    (CheckResult(ImCode.USER_GROUP_LIMIT, 50, 50, ("zz",)),
     "user_group_limit (50) would be exceeded: zz is already in 50 groups"),
    (CheckResult(ImCode.USER_GROUP_LIMIT, 50, 50, ("zz", "yy")),
     "user_group_limit (50) would be exceeded: zz is already in 50 groups (also refused: yy)"),
    (CheckResult(ImCode.GROUP_FULL, 10, 1),
     "the group's own max_members (10) would be exceeded: it has 1 member"),
    (CheckResult(ImCode.GROUP_FULL, 10, 9),
     "the group's own max_members (10) would be exceeded: it has 9 members"),
    (CheckResult(ImCode.GROUP_MEMBER_LIMIT, 200, 200),
     "the plan's member limit (200) would be exceeded: the group has 200 members"),
    (CheckResult(ImCode.GROUP_MEMBER_LIMIT, 200, 300),
     "the group's own max_members (300) is above the plan's member limit (200)"),
    (CheckResult(ImCode.AV_ROOM_LIMIT, 50, 50), "av_rooms limit 50 reached (50 AVChatRooms exist)"),
])
def test_refusals_read_as_sentences(result: CheckResult, info: str) -> None:
    assert result.info() == info


def _refusal(state: plans.AppState, request: PlanRequest, when: datetime) -> str:
    operation = plans.upgrade if state.plan.edition is Edition.TRIAL else plans.change_plan
    with pytest.raises(FailedPrecondition) as refused:
        operation(state, request, when, TZ)
    return refused.value.message


def test_the_monthly_rule_suggests_a_revert_only_where_there_is_one() -> None:
    created = plans.create_app(1, datetime(2026, 11, 2, tzinfo=TZ))
    on_pro = plans.upgrade(created, PlanRequest(edition=Edition.PRO), datetime(2026, 11, 3, tzinfo=TZ), TZ)
    assert _refusal(on_pro, PlanRequest(edition=Edition.ULTIMATE), datetime(2026, 11, 4, tzinfo=TZ)) == (
        "edition was already changed in 2026-11; it may change again on 2026-12-01 "
        "(a revert to EDITION_TRIAL is allowed)")
    back_on_trial = plans.change_plan(on_pro, PlanRequest(edition=Edition.TRIAL),
                                      datetime(2026, 11, 5, tzinfo=TZ), TZ)
    assert _refusal(back_on_trial, PlanRequest(edition=Edition.PRO), datetime(2026, 11, 6, tzinfo=TZ)) == (
        "edition was already changed in 2026-11; it may change again on 2026-12-01")
