"""A refusal's `info` names the limit that refused and what it was compared with, for every way its code arises.

Grandfathered counts (an import, a lowered plan) and a group's own cap each
read differently; the number shown is never a member count under a cap's label.
"""

from __future__ import annotations

import pytest

from e2e.helpers import ts
from imlimits.v1 import limit_pb2, plan_pb2
from imlimits.v1.limit_pb2_grpc import LimitServiceStub
from imlimits.v1.plan_pb2_grpc import PlanServiceStub

WORK, AV = limit_pb2.GROUP_TYPE_WORK, limit_pb2.GROUP_TYPE_AVCHATROOM


def names(prefix: str, count: int) -> list[str]:
    return [f"{prefix}{i}" for i in range(count)]


@pytest.fixture
def pro(plans: PlanServiceStub, app_id: int) -> int:
    plans.CreateApp(plan_pb2.CreateAppRequest(app_id=app_id, at=ts(2019, 1, 2)))
    plans.Upgrade(plan_pb2.UpgradeRequest(app_id=app_id, edition=plan_pb2.EDITION_PRO, at=ts(2019, 1, 3)))
    return app_id


def join(limits: LimitServiceStub, app_id: int, group_id: str, users: list[str]) -> limit_pb2.CheckResponse:
    return limits.JoinGroup(limit_pb2.JoinGroupRequest(app_id=app_id, group_id=group_id, users=users))


def create(limits: LimitServiceStub, app_id: int, group_id: str, members: list[str] | None = None,
           max_members: int = 0) -> limit_pb2.CheckResponse:
    return limits.CreateGroup(limit_pb2.CreateGroupRequest(app_id=app_id, group_id=group_id, type=WORK, owner="boss",
                                                           members=members or [], max_members=max_members))


def test_an_imported_group_over_the_plan_names_its_members_not_a_cap(limits: LimitServiceStub, pro: int) -> None:
    """Issue 23: 601 imported members on PRO (500) read as "max_members (601)"."""
    huge = limit_pb2.GroupRecord(group_id="huge", type=WORK, members=names("m", 601))
    limits.ImportGroups(iter([limit_pb2.ImportGroupsRequest(app_id=pro, groups=[huge])]))
    answer = join(limits, pro, "huge", ["newbie"])
    assert (answer.code, answer.limit, answer.current) == (10038, 200, 601)
    assert answer.info == ("the plan's member limit (200) would be exceeded: the group has 601 members and 1 would "
                           "join (already more than the limit: members admitted before stay)")
    assert "max_members" not in answer.info


def test_a_lowered_plan_names_the_members_admitted_under_the_higher_one(plans: PlanServiceStub,
                                                                       limits: LimitServiceStub, pro: int) -> None:
    plans.ChangePlan(plan_pb2.ChangePlanRequest(app_id=pro, group_member_limit=300, at=ts(2019, 2, 1)))
    assert create(limits, pro, "big", names("m", 249)).code == 0
    # Back to the month-start value (a revert): 250 members now exceed the plan's 200.
    plans.ChangePlan(plan_pb2.ChangePlanRequest(app_id=pro, group_member_limit=200, at=ts(2019, 2, 2)))
    answer = join(limits, pro, "big", ["late", "later"])
    assert (answer.code, answer.limit, answer.current) == (10038, 200, 250)
    assert answer.info == ("the plan's member limit (200) would be exceeded: the group has 250 members and 2 would "
                           "join (already more than the limit: members admitted before stay)")


def test_a_full_group_and_too_many_initial_members(limits: LimitServiceStub, pro: int) -> None:
    assert create(limits, pro, "full", names("m", 199)).code == 0
    answer = join(limits, pro, "full", ["a", "b"])
    assert answer.info == "the plan's member limit (200) would be exceeded: the group has 200 members and 2 would join"
    answer = create(limits, pro, "crowd", names("m", 200))
    assert (answer.code, answer.current) == (10038, 0)
    assert answer.info == "the plan's member limit (200) would be exceeded: the group has 0 members and 201 would join"


def test_the_groups_own_cap(limits: LimitServiceStub, pro: int) -> None:
    answer = create(limits, pro, "wide", max_members=201)
    assert (answer.code, answer.limit, answer.current) == (10038, 200, 201)
    assert answer.info == "the group's own max_members (201) is above the plan's member limit (200)"
    assert create(limits, pro, "small", ["ann"], max_members=2).code == 0
    answer = join(limits, pro, "small", ["bob", "cat"])
    assert (answer.code, answer.limit, answer.current) == (10014, 2, 2)
    assert answer.info == "the group's own max_members (2) would be exceeded: it has 2 members and 2 would join"
    # An import grandfathers a group above its own cap too.
    over = limit_pb2.GroupRecord(group_id="over", type=WORK, members=names("m", 5), max_members=3)
    limits.ImportGroups(iter([limit_pb2.ImportGroupsRequest(app_id=pro, groups=[over])]))
    answer = join(limits, pro, "over", ["new"])
    assert answer.info == ("the group's own max_members (3) would be exceeded: it has 5 members and 1 would join "
                           "(already more than the limit: members admitted before stay)")


def test_av_rooms_over_a_lowered_limit(plans: PlanServiceStub, limits: LimitServiceStub, pro: int) -> None:
    plans.ChangePlan(plan_pb2.ChangePlanRequest(app_id=pro, av_room_unlimited=True, at=ts(2019, 2, 1)))
    for room in range(52):
        assert limits.CreateRoom(limit_pb2.CreateRoomRequest(app_id=pro, room_id=f"r{room}")).code == 0
    plans.ChangePlan(plan_pb2.ChangePlanRequest(app_id=pro, av_room_unlimited=False, at=ts(2019, 2, 2)))
    answer = limits.CreateRoom(limit_pb2.CreateRoomRequest(app_id=pro, room_id="one-more"))
    assert answer.info == ("av_rooms limit 50 reached (52 AVChatRooms exist, more than the limit: rooms opened "
                           "under a higher limit stay)")
