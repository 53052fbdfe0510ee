"""Ids that would spoof a display are INVALID_ARGUMENT naming the field, through the real service."""

from __future__ import annotations

from collections.abc import Callable

import grpc
import pytest

from imlimits.v1 import limit_pb2, limit_pb2_grpc, plan_pb2, plan_pb2_grpc

SPOOFING = ["\u202e", "\u200b", "\u2028"]  # right-to-left override, zero-width space, line separator


@pytest.mark.parametrize("character", SPOOFING)
def test_spoofing_ids_are_refused_and_change_nothing(plans: plan_pb2_grpc.PlanServiceStub,
                                                     limits: limit_pb2_grpc.LimitServiceStub, app_id: int,
                                                     character: str) -> None:
    plans.CreateApp(plan_pb2.CreateAppRequest(app_id=app_id))
    bad = f"ad{character}min"
    calls: dict[str, Callable[[], object]] = {
        "group_id": lambda: limits.CreateGroup(limit_pb2.CreateGroupRequest(app_id=app_id, group_id=bad,
                                                                            type=limit_pb2.GROUP_TYPE_WORK)),
        "owner": lambda: limits.CreateGroup(limit_pb2.CreateGroupRequest(app_id=app_id, group_id="g", owner=bad,
                                                                         type=limit_pb2.GROUP_TYPE_WORK)),
        "members[1]": lambda: limits.CreateGroup(limit_pb2.CreateGroupRequest(
            app_id=app_id, group_id="g", type=limit_pb2.GROUP_TYPE_WORK, members=["alice", bad])),
        "room_id": lambda: limits.CreateRoom(limit_pb2.CreateRoomRequest(app_id=app_id, room_id=bad)),
        "users[0]": lambda: limits.JoinGroup(limit_pb2.JoinGroupRequest(app_id=app_id, group_id="g", users=[bad])),
    }
    for field, call in calls.items():
        with pytest.raises(grpc.RpcError) as refused:
            call()
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert refused.value.details().startswith(f"{field}: must not contain control, format or separator")
    usage = limits.GetUsage(limit_pb2.GetUsageRequest(app_id=app_id))
    assert (usage.groups, usage.av_rooms) == (0, 0)


def test_ids_in_any_script_are_accepted(plans: plan_pb2_grpc.PlanServiceStub,
                                        limits: limit_pb2_grpc.LimitServiceStub, app_id: int) -> None:
    plans.CreateApp(plan_pb2.CreateAppRequest(app_id=app_id))
    answer = limits.CreateGroup(limit_pb2.CreateGroupRequest(app_id=app_id, group_id="群 ١٢ café 😀",
                                                             type=limit_pb2.GROUP_TYPE_WORK, owner="张三"))
    assert answer.allowed
