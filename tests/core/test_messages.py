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
    (CheckResult(ImCode.GROUP_FULL, 10, 9, newcomers=2),
     "the group's own max_members (10) would be exceeded: it has 9 members and 2 would join"),
    (CheckResult(ImCode.GROUP_FULL, 10, 1, newcomers=10),
     "the group's own max_members (10) would be exceeded: it has 1 member and 10 would join"),
    # An import records groups above their own cap (no limit is checked).
    (CheckResult(ImCode.GROUP_FULL, 10, 12, newcomers=1),
     "the group's own max_members (10) would be exceeded: it has 12 members and 1 would join "
     "(already more than the limit: members admitted before stay)"),
    (CheckResult(ImCode.GROUP_MEMBER_LIMIT, 200, 200, newcomers=1),
     "the plan's member limit (200) would be exceeded: the group has 200 members and 1 would join"),
    # CreateGroup with too many initial members: the group has none yet.
    (CheckResult(ImCode.GROUP_MEMBER_LIMIT, 20, 0, newcomers=25),
     "the plan's member limit (20) would be exceeded: the group has 0 members and 25 would join"),
    # Imported above the plan, or the plan lowered since: the count, never mislabelled as a cap.
    (CheckResult(ImCode.GROUP_MEMBER_LIMIT, 500, 601, newcomers=1),
     "the plan's member limit (500) would be exceeded: the group has 601 members and 1 would join "
     "(already more than the limit: members admitted before stay)"),
    # CreateGroup with a max_members above the plan's limit: no newcomer was compared.
    (CheckResult(ImCode.GROUP_MEMBER_LIMIT, 200, 300),
     "the group's own max_members (300) is above the plan's member limit (200)"),
    (CheckResult(ImCode.AV_ROOM_LIMIT, 50, 50), "av_rooms limit 50 reached (50 AVChatRooms exist)"),
    # The AV add-on turned off with more rooms open than the edition allows.
    (CheckResult(ImCode.AV_ROOM_LIMIT, 50, 60),
     "av_rooms limit 50 reached (60 AVChatRooms exist, more than the limit: rooms opened under a higher limit stay)"),
    # user_group_limit lowered below what a user already has.
    (CheckResult(ImCode.USER_GROUP_LIMIT, 500, 700, ("zz",)),
     "user_group_limit (500) would be exceeded: zz is already in 700 groups"),
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
