"""Reconciliation: counts recomputed from the membership sets, drift reported and repaired."""

from __future__ import annotations

import asyncio
import os
import signal

import grpc
import pytest

from harness import RedisProcess, ServerProcess
from imlimits.v1 import limit_pb2, limit_pb2_grpc
from imlimits_client import Client, Edition, GroupType


def _populated(client: Client, app_id: int) -> None:
    client.admin.create_app(app_id)
    client.check.create_group(app_id, "g1", GroupType.WORK, owner="alice", members=["bob"])
    client.check.create_group(app_id, "g2", GroupType.PUBLIC, owner="bob")
    client.check.create_room(app_id, "r1", owner="host")
    client.check.join_group(app_id, "r1", ["alice"])


def test_no_drift_then_drift_reported_then_repaired(own_redis: RedisProcess, app_id: int) -> None:
    process = ServerProcess("--redis-url", own_redis.url, "--redis-timeout", "1").start()
    try:
        with Client(process.target, check_timeout=10) as client:
            _populated(client, app_id)
            clean = client.check.verify_usage(app_id)
            assert (clean.groups, clean.users, clean.drifts) == (3, 2, ())
            redis_client = own_redis.client()
            redis_client.hincrby(f"{{im:{app_id}}}:uc", "alice", 5)  # a count that drifted
            redis_client.hset(f"{{im:{app_id}}}:uc", "ghost", 3)  # a user in no group
            redis_client.hset(f"{{im:{app_id}}}:cnt", "rooms", 9)
            found = client.check.verify_usage(app_id)
            assert {(d.subject, d.recorded, d.actual) for d in found.drifts} == {
                ("user_groups of alice", 7, 2), ("user_groups of ghost", 3, 0), ("av_rooms", 9, 1)}
            assert client.check.usage(app_id, user="alice").user_groups == 7  # a report changes nothing
            repaired = client.check.verify_usage(app_id, repair=True)
            assert repaired.repaired and len(repaired.drifts) == 3
            assert client.check.verify_usage(app_id).drifts == ()
            assert client.check.usage(app_id, user="alice").user_groups == 2
            assert client.check.usage(app_id).av_rooms == 1
    finally:
        process.stop()


def test_a_server_killed_mid_load_leaves_no_partial_check(own_redis: RedisProcess, app_id: int) -> None:
    """kill -9 of the server under load: every check was all or nothing, so the counts still agree."""
    process = ServerProcess("--redis-url", own_redis.url, "--redis-timeout", "1").start()
    with Client(process.target, check_timeout=10) as client:
        client.admin.create_app(app_id)
        client.admin.upgrade(app_id, Edition.PRO)
        for i in range(20):
            client.check.create_group(app_id, f"g{i}", GroupType.PUBLIC, owner=f"o{i}")

    answered = 0
    running = asyncio.Event()
    failures: list[str] = []

    async def load(target: str) -> None:
        async with grpc.aio.insecure_channel(target) as channel:
            stub = limit_pb2_grpc.LimitServiceStub(channel)

            async def worker(index: int) -> None:
                nonlocal answered
                for n in range(10_000):
                    group = f"g{(index + n) % 20}"
                    users = [f"u{(index * 7 + n + k) % 300}" for k in range(5)]
                    try:
                        if n % 3 == 2:
                            await stub.LeaveGroup(limit_pb2.LeaveGroupRequest(app_id=app_id, group_id=group,
                                                                              users=users), timeout=5)
                        else:
                            await stub.JoinGroup(limit_pb2.JoinGroupRequest(app_id=app_id, group_id=group,
                                                                            users=users), timeout=5)
                    except grpc.aio.AioRpcError as error:
                        if error.code() is not grpc.StatusCode.UNAVAILABLE:  # only "the server is gone" ends it
                            failures.append(f"{error.code().name}: {error.details()}")
                        return
                    answered += 1
                    if answered >= 500:
                        running.set()

            await asyncio.gather(*(worker(i) for i in range(32)))

    async def kill_under_load() -> None:
        loading = asyncio.create_task(load(process.target))
        # Killed once the load is in full swing (500 answers), not after a guessed delay.
        await asyncio.wait_for(running.wait(), timeout=60)
        assert process.process is not None
        os.kill(process.process.pid, signal.SIGKILL)
        await asyncio.wait_for(loading, timeout=60)

    asyncio.run(kill_under_load())
    assert failures == []
    process.wait_exit()
    restarted = ServerProcess("--redis-url", own_redis.url).start()
    try:
        with Client(restarted.target, check_timeout=30) as client:
            result = client.check.verify_usage(app_id)
            assert result.drifts == ()
            assert result.users > 0
            # The restarted server serves checks (g0..g19 may be full by now: 10038 would be right there).
            assert client.check.create_group(app_id, "after-restart", GroupType.WORK, owner="o0").allowed
            assert client.check.join_group(app_id, "after-restart", ["u0"]).allowed
    finally:
        restarted.stop()


def test_verify_unknown_app(server: ServerProcess, app_id: int) -> None:
    with grpc.insecure_channel(server.target) as channel, pytest.raises(grpc.RpcError) as refused:
        limit_pb2_grpc.LimitServiceStub(channel).VerifyUsage(limit_pb2.VerifyUsageRequest(app_id=app_id))
    assert refused.value.code() == grpc.StatusCode.NOT_FOUND
