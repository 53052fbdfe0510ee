"""What unauthenticated callers can make the server hold: metric series, message bytes, calls, connections."""

from __future__ import annotations

import asyncio
import json
import secrets
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from harness import RedisProcess, ServerProcess, free_port
from imlimits.v1 import limit_pb2, limit_pb2_grpc
from imlimits_server import grpc_limits

ADMIN = "admin-token-000000000001"
FLOOD = Path(__file__).parents[1] / "flood.py"
MIB = 1024 * 1024


def _memory(pid: int, field: str) -> int:
    """VmRSS (resident now) or VmHWM (the peak since start) of a process, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise LookupError(field)


@pytest.fixture
def guarded(own_redis: RedisProcess) -> Iterator[tuple[ServerProcess, int]]:
    """A server with tokens and metrics, as the README recommends."""
    metrics_port = free_port()
    process = ServerProcess("--redis-url", own_redis.url, "--metrics-listen", f"127.0.0.1:{metrics_port}",
                            env={"IMLIMITS_ADMIN_TOKENS": ADMIN}).start()
    yield process, metrics_port
    process.stop()


def _calls_to_made_up_methods(target: str, count: int) -> set[grpc.StatusCode]:
    """`count` calls, 50 at a time: well within one connection's streams."""
    codes: set[grpc.StatusCode] = set()
    with grpc.insecure_channel(target) as channel:
        for start in range(0, count, 50):
            futures = [channel.unary_unary(f"/{secrets.token_hex(60)}/{secrets.token_hex(60)}").future(b"")
                       for _ in range(min(50, count - start))]
            for future in futures:
                codes.add(future.exception().code())
    return codes


def test_made_up_methods_add_no_metric_series(guarded: tuple[ServerProcess, int]) -> None:
    process, metrics_port = guarded
    assert _calls_to_made_up_methods(process.target, 500) == {grpc.StatusCode.UNAUTHENTICATED}  # warm-up
    started = _memory(process.pid, "VmRSS")
    assert _calls_to_made_up_methods(process.target, 10_000) == {grpc.StatusCode.UNAUTHENTICATED}
    grown = _memory(process.pid, "VmRSS") - started
    text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).read().decode()
    assert len(text) < 64 * 1024
    assert 'imlimits_calls_total{rpc="unknown",status="UNAUTHENTICATED"} 10500.0' in text
    assert grown < 20 * MIB, f"RSS grew by {grown / MIB:.1f} MiB"


class _HealthProbe:
    """Health checks every 10 ms on their own connection, each one's latency kept."""

    def __init__(self, target: str) -> None:
        self.latencies: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(target,))

    def _run(self, target: str) -> None:
        with grpc.insecure_channel(target) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            stub.Check(health_pb2.HealthCheckRequest(), timeout=5)  # connected before timing starts
            while not self._stop.is_set():
                started = time.perf_counter()
                try:
                    stub.Check(health_pb2.HealthCheckRequest(), timeout=2)
                    self.latencies.append(time.perf_counter() - started)
                except grpc.RpcError:
                    self.latencies.append(float("inf"))
                time.sleep(0.01)

    def __enter__(self) -> _HealthProbe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _probe(target: str, seconds: float) -> list[float]:
    with _HealthProbe(target) as probe:
        time.sleep(seconds)
    return probe.latencies


def _flood(target: str, size: int) -> dict[str, int]:
    done = subprocess.run([sys.executable, str(FLOOD), target, "--rounds", "3", "--concurrency", "200",
                           "--size", str(size)], capture_output=True, text=True, timeout=120, check=True)
    return dict(json.loads(done.stdout))


def _percentile(latencies: list[float], fraction: float) -> float:
    return sorted(latencies)[min(len(latencies) - 1, int(fraction * len(latencies)))]


def test_a_bounded_flood_holds_little_memory_and_health_keeps_answering(
        guarded: tuple[ServerProcess, int]) -> None:
    """3 rounds of 200 concurrent unauthenticated calls of 4 MB, then of just under the message limit.

    The documented bounds: peak resident memory within 100 MiB of the idle
    server's (measured: about +12 MiB; before the limits, +680 MiB), and
    health answering throughout: every check within the client's 2 s
    deadline, 90% of them within 50 ms. Not every single one within 50 ms:
    on this shared machine an idle server's health check alone sometimes
    takes 150 ms or more, so a maximum would test the machine, not the
    server. The 50 ms allows for what the machine adds to the 90th percentile
    without a flood, measured in the same test.
    """
    process, _ = guarded
    quiet = _probe(process.target, 1.0)
    idle = _memory(process.pid, "VmRSS")
    with _HealthProbe(process.target) as probe:
        refused = _flood(process.target, 4_000_000)
        near_limit = _flood(process.target, grpc_limits.MAX_RECEIVE_MESSAGE_BYTES - 10)
    peak = _memory(process.pid, "VmHWM")
    # A refusal does not wait for the rest of the request, so the client may
    # open a stream its connection has not yet freed: REFUSED_STREAM, UNAVAILABLE.
    assert set(refused) | set(near_limit) <= {"UNAUTHENTICATED", "UNAVAILABLE"}
    assert refused.get("UNAUTHENTICATED", 0) > 0 and near_limit.get("UNAUTHENTICATED", 0) > 0
    assert peak - idle < 100 * MIB, f"peak RSS {peak / MIB:.0f} MiB, idle {idle / MIB:.0f} MiB"
    assert max(probe.latencies) < 2.0  # every check answered (a failed one counts as infinite)
    assert _percentile(probe.latencies, 0.9) < 0.050 + _percentile(quiet, 0.9), \
        f"p90 {_percentile(probe.latencies, 0.9) * 1000:.0f} ms under the flood, " \
        f"{_percentile(quiet, 0.9) * 1000:.0f} ms without"


def test_a_message_over_the_limit_is_refused_and_the_largest_import_passes(own_redis: RedisProcess) -> None:
    process = ServerProcess("--redis-url", own_redis.url).start()
    try:
        with grpc.insecure_channel(process.target) as channel:
            limit = grpc_limits.MAX_RECEIVE_MESSAGE_BYTES
            import_groups = channel.stream_unary("/imlimits.v1.LimitService/ImportGroups")
            # Every field at its bound (SPEC sections 3 and 4), three full records: the documented maximum.
            record = limit_pb2.GroupRecord(group_id="g" * 48, type=limit_pb2.GROUP_TYPE_COMMUNITY, owner="o" * 32,
                                           members=[f"{i:032d}" for i in range(10_000)], max_members=2**32 - 1)
            largest = limit_pb2.ImportGroupsRequest(app_id=2**64 - 1, groups=[record] * 3, replace=True)
            assert largest.ByteSize() == limit
            with pytest.raises(grpc.RpcError) as within:
                import_groups(iter([largest.SerializeToString()]), timeout=20)
            assert within.value.code() != grpc.StatusCode.RESOURCE_EXHAUSTED
            with pytest.raises(grpc.RpcError) as over:
                channel.unary_unary("/imlimits.v1.LimitService/JoinGroup")(b"\x0a" + b"x" * limit, timeout=20)
            assert over.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    finally:
        process.stop()


async def _streams(channel: grpc.aio.Channel, count: int) -> list[Any]:
    """Check Streams: each stays open, holding one call, until cancelled (the first answer says it is open)."""
    stub = limit_pb2_grpc.LimitServiceStub(channel)
    streams = [stub.Stream(timeout=60) for _ in range(count)]
    probe = limit_pb2.Check(join_group=limit_pb2.JoinGroupRequest(app_id=1, group_id="g", users=["u"]))
    for stream in streams:
        await stream.write(probe)
    for stream in streams:
        await stream.read()
    return streams


async def _check(channel: grpc.aio.Channel, timeout: float) -> grpc.StatusCode:
    try:
        await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=timeout)
    except grpc.aio.AioRpcError as error:
        return error.code()
    return grpc.StatusCode.OK


async def _usage(channel: grpc.aio.Channel, timeout: float) -> grpc.StatusCode:
    try:
        await limit_pb2_grpc.LimitServiceStub(channel).GetUsage(limit_pb2.GetUsageRequest(app_id=1), timeout=timeout)
    except grpc.aio.AioRpcError as error:
        return error.code()
    return grpc.StatusCode.OK


def test_calls_are_capped_per_connection_and_per_process(own_redis: RedisProcess) -> None:
    per_process = grpc_limits.MAX_CONCURRENT_STREAMS + 50
    process = ServerProcess("--redis-url", own_redis.url, "--max-concurrent-rpcs", str(per_process),
                            "--max-streams-per-caller", str(per_process)).start()

    async def scenario() -> None:
        options = [("grpc.use_local_subchannel_pool", 1)]
        async with grpc.aio.insecure_channel(process.target, options=options) as first, \
                grpc.aio.insecure_channel(process.target, options=options) as second:
            streams = await _streams(first, grpc_limits.MAX_CONCURRENT_STREAMS)
            # The connection is full: a further call waits for a free stream, here past its deadline.
            assert await _check(first, 1) == grpc.StatusCode.DEADLINE_EXCEEDED
            streams += await _streams(second, per_process - grpc_limits.MAX_CONCURRENT_STREAMS)
            # The process is full: a call on a connection with free streams is refused at once, but health
            # checks are answered whatever the checks hold.
            assert await _usage(second, 10) == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert await _check(second, 10) == grpc.StatusCode.OK
            for stream in streams:
                stream.cancel()
            assert await _check(first, 10) == grpc.StatusCode.OK
            assert await _usage(second, 10) == grpc.StatusCode.NOT_FOUND  # answered again (app 1 is unknown)

    try:
        asyncio.run(scenario())
    finally:
        process.stop()


def test_an_idle_connection_is_closed(own_redis: RedisProcess) -> None:
    process = ServerProcess("--redis-url", own_redis.url, "--idle-timeout", "1").start()
    try:
        states: list[grpc.ChannelConnectivity] = []
        with grpc.insecure_channel(process.target, options=[("grpc.use_local_subchannel_pool", 1)]) as channel:
            health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
            channel.subscribe(states.append)
            deadline = time.monotonic() + 10
            while grpc.ChannelConnectivity.IDLE not in states and time.monotonic() < deadline:
                time.sleep(0.05)
            channel.unsubscribe(states.append)
        assert states[0] == grpc.ChannelConnectivity.READY and grpc.ChannelConnectivity.IDLE in states
    finally:
        process.stop()
