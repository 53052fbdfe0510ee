"""A Batch after a destroy (issue 22, item 6): what the next check sees, as docs/batching.md and docs/release.md say.

The group is gone, its id and room slot free, at once. A group of up to
1,000 members is released by the destroy itself, so a join right after it is
admitted; a larger group's members are released by the release workers
within 2 seconds, so a join right after may still be refused 10037, and is
admitted once they are released.
"""

from __future__ import annotations

from e2e.helpers import wait_until
from e2e.test_onboarding import AV, COMMUNITY, WORK, messages, record
from imlimits.v1 import limit_pb2, plan_pb2
from imlimits.v1.limit_pb2_grpc import LimitServiceStub
from imlimits.v1.plan_pb2_grpc import PlanServiceStub


def _check(**kind: object) -> limit_pb2.Check:
    return limit_pb2.Check(**kind)  # type: ignore[arg-type]


def _hot_at_its_limit(plans: PlanServiceStub, limits: LimitServiceStub, app_id: int, size: int) -> None:
    """TRIAL (50 groups a user, 10 rooms): `hot` in 49 groups and in `big` of `size` members; 10 rooms."""
    plans.CreateApp(plan_pb2.CreateAppRequest(app_id=app_id))
    limits.ImportGroups(messages(app_id, [record(f"g{i}", ["hot"]) for i in range(49)],
                                 [record("big", ["hot", *(f"m{i}" for i in range(size - 1))], type=COMMUNITY)],
                                 [record("after", ["someone"]), *(record(f"room-{i}", type=AV) for i in range(9)),
                                  record("big-room", type=AV)]))
    assert limits.GetUsage(limit_pb2.GetUsageRequest(app_id=app_id, user="hot")).user_groups == 50


def _batch_after_destroy(limits: LimitServiceStub, app_id: int) -> list[limit_pb2.CheckResult]:
    return list(limits.Batch(limit_pb2.BatchRequest(checks=[
        _check(destroy_group=limit_pb2.DestroyGroupRequest(app_id=app_id, group_id="big")),
        _check(destroy_group=limit_pb2.DestroyGroupRequest(app_id=app_id, group_id="big-room")),
        _check(create_room=limit_pb2.CreateRoomRequest(app_id=app_id, room_id="new-room", owner="o")),
        _check(create_group=limit_pb2.CreateGroupRequest(app_id=app_id, group_id="big", type=WORK)),
        _check(join_group=limit_pb2.JoinGroupRequest(app_id=app_id, group_id="after", users=["hot"])),
    ]), timeout=30).results)


def test_a_small_destroys_members_are_released_for_the_next_check(plans: PlanServiceStub, limits: LimitServiceStub,
                                                                  app_id: int) -> None:
    _hot_at_its_limit(plans, limits, app_id, 900)
    results = _batch_after_destroy(limits, app_id)
    assert [result.release.released for result in results[:2]] == [900, 0]
    # The room slot and the id are free at once; so are the 900 memberships.
    assert [result.check.code for result in results[2:]] == [0, 0, 0]


def test_a_large_destroys_members_are_released_within_the_workers_bound(
        plans: PlanServiceStub, limits: LimitServiceStub, app_id: int) -> None:
    _hot_at_its_limit(plans, limits, app_id, 5001)
    results = _batch_after_destroy(limits, app_id)
    assert [result.release.released for result in results[:2]] == [5001, 0]
    assert [result.check.code for result in results[2:4]] == [0, 0]  # slot and id free at once
    assert results[4].check.code in (0, 10037)  # the memberships may still be on their way
    # The workers release members in no set order: wait for `hot` itself, who is then in its 49 groups, and in
    # "after" too when the batch's join found big's release already done.
    hot_after_release = 49 + (results[4].check.code == 0)

    def released() -> bool:
        return limits.GetUsage(limit_pb2.GetUsageRequest(app_id=app_id, user="hot")).user_groups == hot_after_release

    wait_until(released)
    join = limit_pb2.JoinGroupRequest(app_id=app_id, group_id="after", users=["hot"])
    assert limits.JoinGroup(join).code == 0
