"""`make soak`: mixed load from several processes for a bounded time, with a Redis kill -9 and restart
in the middle; at the end every limit must hold and every count must match the membership sets.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import random
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import grpc

from harness import RedisProcess, ServerProcess
from imlimits.v1 import limit_pb2, limit_pb2_grpc
from imlimits_client import Client, Edition, GroupType

APPS = [1_800_000_001 + i for i in range(4)]
USERS = 2_000
GROUPS = 40
# PRO defaults: what the invariants are checked against.
USER_GROUP_LIMIT, GROUP_MEMBER_LIMIT, AV_ROOMS = 500, 200, 50


async def _drive(targets: list[str], seconds: float, concurrency: int, seed: int) -> dict[str, int]:
    """Closed-loop mixed load; returns answers counted by gRPC status and IM code."""
    outcomes: Counter[str] = Counter()
    channels = [grpc.aio.insecure_channel(target) for target in targets]
    stubs = [limit_pb2_grpc.LimitServiceStub(channel) for channel in channels]
    start = time.monotonic()
    end = start + seconds

    async def worker(index: int) -> None:
        rng = random.Random(seed * 1000 + index)
        created: list[str] = []
        serial = 0
        while time.monotonic() < end:
            stub, app, roll = rng.choice(stubs), rng.choice(APPS), rng.random()
            users = [f"u{rng.randrange(USERS)}" for _ in range(rng.randrange(1, 4))]
            group = f"g{rng.randrange(GROUPS)}"
            serial += 1
            try:
                if roll < 0.60:
                    answer: Any = await stub.JoinGroup(limit_pb2.JoinGroupRequest(app_id=app, group_id=group,
                                                                                  users=users), timeout=2)
                elif roll < 0.75:
                    answer = await stub.LeaveGroup(limit_pb2.LeaveGroupRequest(app_id=app, group_id=group,
                                                                               users=users), timeout=2)
                elif roll < 0.85:
                    name = f"n{seed}-{index}-{serial}"
                    answer = await stub.CreateGroup(limit_pb2.CreateGroupRequest(
                        app_id=app, group_id=name, type=limit_pb2.GROUP_TYPE_PUBLIC, owner=users[0],
                        members=users[1:]), timeout=2)
                    created.append(f"{app}/{name}")
                elif roll < 0.95:
                    name = f"r{seed}-{index}-{serial}"
                    answer = await stub.CreateRoom(limit_pb2.CreateRoomRequest(app_id=app, room_id=name,
                                                                               owner=users[0]), timeout=2)
                    created.append(f"{app}/{name}")
                else:
                    if not created:
                        continue
                    target_app, name = created.pop(rng.randrange(len(created))).split("/")
                    answer = await stub.DestroyGroup(limit_pb2.DestroyGroupRequest(app_id=int(target_app),
                                                                                   group_id=name), timeout=2)
                outcomes[f"OK {answer.code}"] += 1
            except grpc.aio.AioRpcError as error:
                outcomes[error.code().name] += 1
                outcomes[f"errors in second {int(time.monotonic() - start)}"] += 1
                await asyncio.sleep(0.05)

    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    for channel in channels:
        await channel.close()
    return dict(outcomes)


def _load_process(targets: list[str], seconds: float, concurrency: int, seed: int, results: Any) -> None:
    results.put(asyncio.run(_drive(targets, seconds, concurrency, seed)))


def _violations(redis_server: RedisProcess) -> list[str]:
    """Every count over its limit, read straight from Redis."""
    client = redis_server.client()
    found = []
    for app in APPS:
        tag = f"{{im:{app}}}"
        rooms = int(client.hget(f"{tag}:cnt", "rooms") or 0)
        if rooms > AV_ROOMS:
            found.append(f"app {app}: {rooms} AV rooms > {AV_ROOMS}")
        user_counts: dict[str, str] = client.hgetall(f"{tag}:uc")  # type: ignore[assignment]
        for user, groups in user_counts.items():
            if int(groups) > USER_GROUP_LIMIT:
                found.append(f"app {app}: {user} in {groups} groups > {USER_GROUP_LIMIT}")
        group_ids: set[str] = client.smembers(f"{tag}:gi")  # type: ignore[assignment]
        for group_id in group_ids:
            if client.hget(f"{tag}:g:{group_id}", "t") != "av":
                members = client.scard(f"{tag}:m:{group_id}")
                if members > GROUP_MEMBER_LIMIT:
                    found.append(f"app {app}: group {group_id} has {members} members > {GROUP_MEMBER_LIMIT}")
    return found


def main() -> int:
    parser = argparse.ArgumentParser(prog="make soak")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--processes", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=16, help="calls in flight per load process")
    parser.add_argument("--out", type=Path, default=Path("bench-results/soak.json"))
    args = parser.parse_args()
    redis_server = RedisProcess(durable=True).start()
    servers = [ServerProcess("--redis-url", redis_server.url, "--redis-timeout", "0.1").start() for _ in range(2)]
    try:
        with Client(servers[0].target, check_timeout=10) as client:
            for app in APPS:
                client.admin.create_app(app)
                client.admin.upgrade(app, Edition.PRO)
                for i in range(GROUPS):
                    client.check.create_group(app, f"g{i}", GroupType.PUBLIC, owner=f"owner{i}")
        context = multiprocessing.get_context("spawn")
        results = context.Queue()
        loaders = [context.Process(target=_load_process, args=([s.target for s in servers], args.seconds,
                                                               args.concurrency, seed, results))
                   for seed in range(args.processes)]
        for loader in loaders:
            loader.start()
        time.sleep(args.seconds / 2)
        redis_server.kill()
        down = time.monotonic()
        time.sleep(1.0)
        redis_server.start()
        print(f"redis-server killed with SIGKILL and restarted after {time.monotonic() - down:.1f} s", flush=True)
        outcomes: Counter[str] = Counter()
        for _ in loaders:
            outcomes.update(results.get())
        for loader in loaders:
            loader.join()
        violations = _violations(redis_server)
        with Client(servers[1].target, check_timeout=60) as client:
            drifts = [f"app {app}: {d.subject} recorded {d.recorded}, actual {d.actual}"
                      for app in APPS for d in client.check.verify_usage(app).drifts]
    finally:
        for server in servers:
            server.stop()
        redis_server.stop()
    unexpected = [line for server in servers for line in server.output if "ERROR" in line or "Traceback" in line]
    served = sum(count for key, count in outcomes.items() if key.startswith("OK"))
    timeline = {key: count for key, count in outcomes.items() if key.startswith("errors in second")}
    answers = {key: count for key, count in outcomes.items() if key not in timeline}
    report = {"seconds": args.seconds, "calls_served": served, "answers": dict(sorted(answers.items())),
              "errors_by_second": timeline, "over_admissions": violations, "count_drifts": drifts,
              "server_errors_logged": unexpected}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"calls served: {served:,} in {args.seconds:.0f} s")
    for key, count in sorted(answers.items()):
        print(f"  {key:22} {count:>9,}")
    print("errors by second of the run: " + ", ".join(
        f"{key.rsplit(' ', 1)[1]}s: {count}" for key, count in sorted(timeline.items(), key=lambda kv: int(
            kv[0].rsplit(" ", 1)[1]))))
    print(f"server errors logged (other than Redis unavailable): {len(unexpected)}")
    print(f"over-admissions: {len(violations)}; count drifts: {len(drifts)} (report in {args.out})")
    for line in violations + drifts:
        print("  " + line)
    return 1 if violations or drifts or unexpected else 0


if __name__ == "__main__":
    sys.exit(main())
