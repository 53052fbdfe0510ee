"""Batches and streams mixed with unary calls over several replicas admit exactly what the plan allows."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator

import grpc
import pytest

from harness import ClusterProcess, RedisProcess, ServerProcess
from imlimits.v1 import limit_pb2, limit_pb2_grpc, plan_pb2, plan_pb2_grpc

_RPCS = {"create_group": "CreateGroup", "create_room": "CreateRoom", "join_group": "JoinGroup"}


@pytest.fixture(scope="module")
def replicas(server: ServerProcess, redis_server: RedisProcess | ClusterProcess) -> Iterator[list[str]]:
    """The session's server and two more on the same Redis."""
    more = [ServerProcess("--redis-url", redis_server.url, "--redis-timeout", "1").start() for _ in range(2)]
    yield [server.target, *(process.target for process in more)]
    for process in more:
        process.stop()


def mixed_storm(targets: list[str], checks: list[limit_pb2.Check]) -> Counter[int]:
    """A third of the checks unary, a third in Batches of 10, a third in Streams of 25, all at once,
    spread over the replicas; the answers counted by IM code."""

    async def run() -> Counter[int]:
        channels = [grpc.aio.insecure_channel(target) for target in targets]
        stubs = [limit_pb2_grpc.LimitServiceStub(channel) for channel in channels]
        third = len(checks) // 3
        unary, batched, streamed = checks[:third], checks[third:2 * third], checks[2 * third:]

        async def one(index: int, check: limit_pb2.Check) -> list[limit_pb2.CheckResponse]:
            kind = check.WhichOneof("kind")
            assert kind is not None
            return [await getattr(stubs[index % len(stubs)], _RPCS[kind])(getattr(check, kind), timeout=30)]

        async def batch(index: int, part: list[limit_pb2.Check]) -> list[limit_pb2.CheckResponse]:
            response = await stubs[index % len(stubs)].Batch(limit_pb2.BatchRequest(checks=part), timeout=30)
            return [result.check for result in response.results]

        async def stream(index: int, part: list[limit_pb2.Check]) -> list[limit_pb2.CheckResponse]:
            return [result.check async for result in stubs[index % len(stubs)].Stream(iter(part), timeout=30)]

        answers = await asyncio.gather(
            *(one(i, check) for i, check in enumerate(unary)),
            *(batch(i, batched[start:start + 10]) for i, start in enumerate(range(0, len(batched), 10))),
            *(stream(i, streamed[start:start + 25]) for i, start in enumerate(range(0, len(streamed), 25))))
        for channel in channels:
            await channel.close()
        return Counter(answer.code for part in answers for answer in part)

    return asyncio.run(run())


def pro_app(target: str, app_id: int) -> tuple[plan_pb2_grpc.PlanServiceStub, limit_pb2_grpc.LimitServiceStub]:
    channel = grpc.insecure_channel(target)
    plans, limits = plan_pb2_grpc.PlanServiceStub(channel), limit_pb2_grpc.LimitServiceStub(channel)
    plans.CreateApp(plan_pb2.CreateAppRequest(app_id=app_id))
    plans.Upgrade(plan_pb2.UpgradeRequest(app_id=app_id, edition=plan_pb2.EDITION_PRO))
    return plans, limits


def no_drift(limits: limit_pb2_grpc.LimitServiceStub, app_id: int) -> None:
    assert not limits.VerifyUsage(limit_pb2.VerifyUsageRequest(app_id=app_id)).drifts


def test_300_mixed_joins_fill_a_pro_group_to_exactly_200(replicas: list[str], app_id: int) -> None:
    _, limits = pro_app(replicas[0], app_id)
    limits.CreateGroup(limit_pb2.CreateGroupRequest(app_id=app_id, group_id="hot", type=limit_pb2.GROUP_TYPE_PUBLIC,
                                                    owner="owner"))
    checks = [limit_pb2.Check(join_group=limit_pb2.JoinGroupRequest(app_id=app_id, group_id="hot",
                                                                    users=[f"user-{i}"])) for i in range(300)]
    assert mixed_storm(replicas, checks) == Counter({0: 199, 10038: 101})
    assert limits.GetUsage(limit_pb2.GetUsageRequest(app_id=app_id, group_id="hot")).group_members == 200
    no_drift(limits, app_id)


def test_600_mixed_creates_by_one_owner_admit_exactly_500(replicas: list[str], app_id: int) -> None:
    _, limits = pro_app(replicas[1], app_id)
    checks = [limit_pb2.Check(create_group=limit_pb2.CreateGroupRequest(
        app_id=app_id, group_id=f"g-{i}", type=limit_pb2.GROUP_TYPE_WORK, owner="prolific")) for i in range(600)]
    assert mixed_storm(replicas, checks) == Counter({0: 500, 10037: 100})
    assert limits.GetUsage(limit_pb2.GetUsageRequest(app_id=app_id, user="prolific")).user_groups == 500
    no_drift(limits, app_id)


def test_120_mixed_rooms_on_pro_admit_exactly_50(replicas: list[str], app_id: int) -> None:
    _, limits = pro_app(replicas[2], app_id)
    checks = [limit_pb2.Check(create_room=limit_pb2.CreateRoomRequest(app_id=app_id, room_id=f"room-{i}",
                                                                      owner=f"host-{i}")) for i in range(120)]
    assert mixed_storm(replicas, checks) == Counter({0: 50, 10036: 70})
    assert limits.GetUsage(limit_pb2.GetUsageRequest(app_id=app_id)).av_rooms == 50
    no_drift(limits, app_id)


def test_no_drift_after_a_redis_restart_mid_storm(own_redis: RedisProcess, app_id: int) -> None:
    """Redis killed while batches and streams run: every answer given is exact afterwards, nothing drifts."""
    durable = RedisProcess(data_dir=own_redis.data_dir, port=own_redis.port, durable=True)
    own_redis.stop()
    durable.start()
    process = ServerProcess("--redis-url", durable.url, "--redis-timeout", "1").start()
    try:
        _, limits = pro_app(process.target, app_id)
        limits.CreateGroup(limit_pb2.CreateGroupRequest(app_id=app_id, group_id="hot",
                                                        type=limit_pb2.GROUP_TYPE_PUBLIC, owner="owner"))
        first = [limit_pb2.Check(join_group=limit_pb2.JoinGroupRequest(app_id=app_id, group_id="hot",
                                                                       users=[f"user-{i}"])) for i in range(150)]
        assert mixed_storm([process.target], first) == Counter({0: 150})
        durable.kill()
        down = limits.Batch(limit_pb2.BatchRequest(checks=first[:3]), timeout=30).results
        assert {result.error.code for result in down} == {grpc.StatusCode.UNAVAILABLE.value[0]}
        durable.start()
        process.wait_health(1)
        second = [limit_pb2.Check(join_group=limit_pb2.JoinGroupRequest(app_id=app_id, group_id="hot",
                                                                        users=[f"late-{i}"])) for i in range(150)]
        assert mixed_storm([process.target], second) == Counter({0: 49, 10038: 101})
        assert limits.GetUsage(limit_pb2.GetUsageRequest(app_id=app_id, group_id="hot")).group_members == 200
        no_drift(limits, app_id)
    finally:
        process.stop()
        durable.stop()
