"""Health checks stay answerable whatever the checks hold, and one caller's streams are bounded (issue 22, item 5).

Seen: a client with a check token held 2,500 open Streams, and 13 of 88
health probes answered RESOURCE_EXHAUSTED (they shared gRPC's 2,000-call
cap), so a load balancer would pull a healthy replica.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from harness import RedisProcess, ServerProcess
from imlimits.v1 import limit_pb2, limit_pb2_grpc

TOKENS = {name: f"{name}-check-token-0000001" for name in ("alpha", "beta", "gamma")}
CALLS, PER_CALLER = 40, 15


async def _open(channel: grpc.aio.Channel, token: str, count: int) -> tuple[list[Any], Counter[str]]:
    """`count` Streams with `token`; each is open once it answered its first check. Returns them and outcomes."""
    metadata = (("authorization", f"Bearer {token}"),)
    stub = limit_pb2_grpc.LimitServiceStub(channel)
    probe = limit_pb2.Check(join_group=limit_pb2.JoinGroupRequest(app_id=1, group_id="g", users=["u"]))
    streams, outcomes = [], Counter[str]()

    async def checks() -> AsyncIterator[limit_pb2.Check]:
        yield probe
        await asyncio.Event().wait()  # the stream stays open until cancelled

    for _ in range(count):
        # Written by gRPC from the generator: a refused call then ends with its status, not a failed write.
        stream = stub.Stream(checks(), metadata=metadata, timeout=60)
        try:
            await stream.read()
            streams.append(stream)
            outcomes["open"] += 1
        except grpc.aio.AioRpcError as error:
            # The server refuses before reading: grpc's client may then fail its own write of the first check
            # first, and report that (INTERNAL, a failed SendMessage) instead of the server's status.
            lost_race = error.code() == grpc.StatusCode.INTERNAL and "SendMessage" in (error.debug_error_string() or "")
            assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED or lost_race, error.details()
            outcomes[grpc.StatusCode.RESOURCE_EXHAUSTED.name] += 1
    return streams, outcomes


def test_health_answers_serving_while_streams_fill_the_call_budget(own_redis: RedisProcess) -> None:
    process = ServerProcess("--redis-url", own_redis.url, "--max-concurrent-rpcs", str(CALLS),
                            "--max-streams-per-caller", str(PER_CALLER),
                            env={"IMLIMITS_CHECK_TOKENS": ",".join(f"{n}:{t}" for n, t in TOKENS.items())}).start()

    async def scenario() -> None:
        async with grpc.aio.insecure_channel(process.target) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            held: list[Any] = []
            opened: dict[str, Counter[str]] = {}
            for name, token in TOKENS.items():
                streams, opened[name] = await _open(channel, token, PER_CALLER + 5)
                held += streams
            # Each caller holds at most its bound; together they fill the process's budget, and the rest is
            # refused at once.
            assert opened["alpha"] == Counter(open=PER_CALLER, RESOURCE_EXHAUSTED=5)
            assert opened["beta"] == Counter(open=PER_CALLER, RESOURCE_EXHAUSTED=5)
            assert opened["gamma"] == Counter(open=CALLS - 2 * PER_CALLER, RESOURCE_EXHAUSTED=PER_CALLER + 5 -
                                              (CALLS - 2 * PER_CALLER))
            probes = [(await health.Check(health_pb2.HealthCheckRequest(), timeout=10)).status for _ in range(50)]
            assert probes == [health_pb2.HealthCheckResponse.SERVING] * 50
            watch = health.Watch(health_pb2.HealthCheckRequest(), timeout=10)
            assert (await watch.read()).status == health_pb2.HealthCheckResponse.SERVING
            watch.cancel()
            for stream in held[:5]:
                stream.cancel()
            # Once the server has seen the cancellations, the budget is free again for a caller under its bound.
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 30
            while len(held) < CALLS + 5:
                streams, _ = await _open(channel, TOKENS["gamma"], 1)
                held += streams
                assert loop.time() < deadline, "the cancelled streams were never given back"
                await asyncio.sleep(0 if streams else 0.05)
            _, over = await _open(channel, TOKENS["gamma"], 1)
            assert over == Counter(RESOURCE_EXHAUSTED=1)  # gamma is at its bound
            for stream in held:
                stream.cancel()

    try:
        asyncio.run(scenario())
    finally:
        process.stop()
