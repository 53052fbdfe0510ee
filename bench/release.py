"""`make bench`, release part: how long 100,000 memberships of a destroyed group take to be released.

SPEC allows 2 s from the destroy being accepted. Measured from the moment the
DestroyGroup call is sent (so it includes the call) until the app's last
tombstone is gone (every membership released), polled every millisecond:
- idle: nothing else runs;
- under load: the bench's join workload runs against the same server;
- takeover: the accepting replica is SIGKILLed as soon as it answers, and a
  second replica's worker finishes the release after the lease lapses.
Also reported: the longest single Redis command during the releases (SLOWLOG),
which shows the batches keep Redis unblocked.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import threading
import time
from pathlib import Path
from typing import Any

import grpc
import redis

from bench.load import APPS, GROUPS_PER_APP, Run, drive
from harness import RedisProcess, ServerProcess
from imlimits.v1 import limit_pb2, limit_pb2_grpc
from imlimits_client import AsyncClient, Edition, GroupType

MEMBERS = 100_000
# Redis commands longer than this are logged, to find the longest one.
_SLOW_US = 200
_APP_IDS = iter(range(1_700_000_001, 1_800_000_000))


async def _room(target: str, app_id: int, members: int) -> None:
    async with AsyncClient(target, check_timeout=60, admin_timeout=60) as client:
        await client.admin.create_app(app_id)
        await client.check.create_room(app_id, "big")
        in_flight = asyncio.Semaphore(8)

        async def join(start: int) -> None:
            async with in_flight:
                users = [f"u{i}" for i in range(start, min(start + 500, members))]
                for _ in range(20):  # a busy machine may answer UNAVAILABLE (denied, degraded): joins repeat safely
                    if (await client.check.join_group(app_id, "big", users)).allowed:
                        return
                raise RuntimeError("the room could not be filled")

        await asyncio.gather(*(join(start) for start in range(0, members, 500)))


async def _prepare_load(target: str) -> None:
    """The join workload's apps and groups (as the main bench prepares them)."""
    async with AsyncClient(target, check_timeout=30, admin_timeout=30) as client:
        for app in APPS:
            await client.admin.create_app(app)
            await client.admin.upgrade(app, Edition.PRO, user_group_limit=5000, group_member_limit=6000)
            await asyncio.gather(*(client.check.create_group(app, f"g{i}", GroupType.PUBLIC, owner=f"o{i}")
                                   for i in range(GROUPS_PER_APP)))


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _release_seconds(target: str, app_id: int, redis_client: redis.Redis, kill: ServerProcess | None = None) -> \
        tuple[float, float]:
    """(seconds the call took, seconds until the last membership was released), both from sending the call."""
    draining = f"{{im:{app_id}}}:drain"
    with grpc.insecure_channel(target) as channel:
        stub = limit_pb2_grpc.LimitServiceStub(channel)
        sent = time.perf_counter()
        answer = stub.DestroyGroup(limit_pb2.DestroyGroupRequest(app_id=app_id, group_id="big"), timeout=30)
        answered = time.perf_counter()
    if kill is not None:
        os.kill(kill.pid, signal.SIGKILL)
    assert (answer.code, answer.released) == (0, MEMBERS), answer
    while redis_client.exists(draining):
        time.sleep(0.001)
    released = time.perf_counter()
    assert redis_client.hlen(f"{{im:{app_id}}}:uc") == 0
    return answered - sent, released - sent


def _summary(name: str, samples: list[tuple[float, float]]) -> dict[str, Any]:
    calls = [call * 1000 for call, _ in samples]
    releases = [release for _, release in samples]
    row = {"case": name, "runs": len(samples), "call_ms_median": statistics.median(calls),
           "released_s_median": statistics.median(releases), "released_s_max": max(releases)}
    print(f"  {name:10} call {row['call_ms_median']:6.1f} ms; all {MEMBERS:,} released after "
          f"{row['released_s_median']:.3f} s (median of {len(samples)}), {row['released_s_max']:.3f} s at most",
          flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.release")
    parser.add_argument("--runs", type=int, default=3, help="destroys per case")
    parser.add_argument("--concurrency", type=int, default=64, help="calls in flight of the check load")
    parser.add_argument("--out", type=Path, default=Path("bench-results/release.json"))
    args = parser.parse_args()

    redis_server = RedisProcess().start()
    redis_client = redis_server.client()
    redis_client.config_set("slowlog-log-slower-than", _SLOW_US)
    redis_client.config_set("slowlog-max-len", 100_000)
    redis_client.slowlog_reset()
    servers = [ServerProcess("--redis-url", redis_server.url).start()]
    rows = []
    print(f"release of {MEMBERS:,} memberships of a destroyed AV chat room:", flush=True)
    try:
        target = servers[0].target
        idle, redis_cpu, server_cpu = [], 0.0, 0.0
        for _ in range(args.runs):
            app_id = next(_APP_IDS)
            asyncio.run(_room(target, app_id, MEMBERS))
            before = _cpu_seconds(redis_server.pid), _cpu_seconds(servers[0].pid)
            idle.append(_release_seconds(target, app_id, redis_client))
            redis_cpu += _cpu_seconds(redis_server.pid) - before[0]
            server_cpu += _cpu_seconds(servers[0].pid) - before[1]
        rows.append(_summary("idle", idle))
        # CPU, unlike wall time, does not grow when other processes take the cores.
        rows[0]["redis_cpu_s"], rows[0]["server_cpu_s"] = redis_cpu / args.runs, server_cpu / args.runs
        print(f"  {'':10} CPU per release: Redis {rows[0]['redis_cpu_s']:.3f} s, server "
              f"{rows[0]['server_cpu_s']:.3f} s", flush=True)

        asyncio.run(_prepare_load(target))
        loaded = []
        apps = [next(_APP_IDS) for _ in range(args.runs)]
        for app_id in apps:
            asyncio.run(_room(target, app_id, MEMBERS))
        seconds = 2.0 + 1.5 * args.runs
        load_result: list[tuple[int, int, list[float], int]] = []
        load = threading.Thread(target=lambda: load_result.append(
            drive(Run(target, "join", args.concurrency, seconds, 1.0), 2)))
        load.start()
        time.sleep(2.0)  # load processes started and warmed up
        for app_id in apps:
            loaded.append(_release_seconds(target, app_id, redis_client))
            time.sleep(0.5)
        load.join()
        calls, errors, _, _ = load_result[0]
        row = _summary("under load", loaded)
        row["load_checks_per_second"] = calls / seconds
        row["load_errors"] = errors
        rows.append(row)

        servers.append(ServerProcess("--redis-url", redis_server.url).start())
        takeover = []
        for _ in range(args.runs):
            app_id = next(_APP_IDS)
            asyncio.run(_room(servers[-1].target, app_id, MEMBERS))
            accepting = ServerProcess("--redis-url", redis_server.url).start()
            takeover.append(_release_seconds(accepting.target, app_id, redis_client, kill=accepting))
            accepting.wait_exit()
        rows.append(_summary("takeover", takeover))
        longest = max((entry["duration"] for entry in redis_client.slowlog_get(1000)), default=0)
    finally:
        for server in servers:
            server.stop()
        redis_server.stop()
    print(f"  longest Redis command meanwhile: {longest / 1000:.2f} ms" if longest else
          f"  no Redis command took {_SLOW_US} us or more")
    print(f"  under load: {rows[1]['load_checks_per_second']:,.0f} checks/s, {rows[1]['load_errors']} errors")
    load_average = os.getloadavg()[0]
    print(f"  ({os.cpu_count()} CPUs, load average {load_average:.1f} at the end; report in {args.out})")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"members": MEMBERS, "cases": rows, "longest_redis_command_ms": longest / 1000,
                                    "cpus": os.cpu_count(), "load_average": load_average}, indent=2))


if __name__ == "__main__":
    main()
