"""`make bench`, holds part (docs/holds.md): what a hold costs, and how soon ended holds are released.

1. Cost. The same join load five ways, each check on its own: a plain JoinGroup; a held JoinGroup and its
   ConfirmHold as unary calls; a held JoinGroup with its confirm sent through the coalescing client (so
   concurrent confirms share Batch calls); and through the coalescing client for everything, plain joins
   against held joins with their confirms. Server CPU and Redis CPU per check, read from /proc around each
   run, and each held way's ratio to its plain way, per round (rounds alternate the ways), all in one run of
   one server and one Redis. Two more ways price a confirm by itself: after one held join and its confirm,
   each check confirms that hold again (unary, and coalesced), the least work a ConfirmHold does; a plain
   check plus that repeat, against the plain check, is what the held way would cost if holding added
   nothing but the confirm.
2. Release. 10,000 held memberships (20 held joins of 500 users, one Batch) left to end: the time from
   their end (sent + hold_seconds, the earliest it can be) until the last is released, polled every
   millisecond; idle, and while the join load runs against the same server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import threading
import time
from pathlib import Path
from typing import Any

import grpc
import redis

from bench.cpu import cpu_seconds
from bench.load import APPS, GROUPS_PER_APP, Run, drive
from harness import RedisProcess, ServerProcess
from imlimits.v1 import limit_pb2, limit_pb2_grpc, plan_pb2, plan_pb2_grpc
from imlimits_client import AsyncClient, Edition, GroupType

WORKLOADS = ("join", "held", "held-coalesced", "join-coalesced", "held-all-coalesced", "reconfirm",
             "reconfirm-coalesced")
# Each held way against the plain way called alike.
PAIRS = (("held", "join"), ("held-coalesced", "join"), ("held-all-coalesced", "join-coalesced"))
# Each held way of PAIRS priced as a plain check plus a repeated confirm called as that way calls its confirm:
# a held check does all a plain check does, and a first confirm all a repeated one does (read the app and the
# hold, answer). Not a strict floor: CPU per call moves with the run's throughput on a saturated machine.
WITH_REPEAT = (("held", "reconfirm", "join"), ("held-coalesced", "reconfirm-coalesced", "join"),
               ("held-all-coalesced", "reconfirm-coalesced", "join-coalesced"))
HELD_MEMBERSHIPS = 10_000
RELEASE_HOLD_SECONDS = 2
_APP_IDS = iter(range(1_800_000_001, 1_900_000_000))


async def _prepare(target: str) -> None:
    async with AsyncClient(target, check_timeout=30, admin_timeout=30) as client:
        for app in APPS:
            await client.admin.create_app(app)
            await client.admin.upgrade(app, Edition.PRO, user_group_limit=5000, group_member_limit=6000)
            await asyncio.gather(*(client.check.create_group(app, f"g{i}", GroupType.PUBLIC, owner=f"o{i}")
                                   for i in range(GROUPS_PER_APP)))


def _cost(server: ServerProcess, redis_pid: int, workload: str, args: argparse.Namespace) -> dict[str, Any]:
    before = cpu_seconds([server.pid]), cpu_seconds([redis_pid])
    calls, errors, latencies, sent = drive(Run(server.target, workload, args.concurrency, args.seconds,
                                               args.warmup), args.load_processes)
    server_cpu, redis_cpu = cpu_seconds([server.pid]) - before[0], cpu_seconds([redis_pid]) - before[1]
    latencies.sort()
    row = {"workload": workload, "checks_per_second": calls / args.seconds, "errors": errors,
           "p50_ms": latencies[len(latencies) // 2] * 1000 if latencies else float("nan"),
           # CPU is read around the whole run, warm-up included, so it is divided by every check sent.
           "server_cpu_us_per_check": server_cpu / max(1, sent) * 1e6,
           "redis_cpu_us_per_check": redis_cpu / max(1, sent) * 1e6}
    print(f"  {workload:15} {row['checks_per_second']:8,.0f} checks/s  server {row['server_cpu_us_per_check']:5.0f} "
          f"us/check  redis {row['redis_cpu_us_per_check']:5.1f} us/check  p50 {row['p50_ms']:.2f} ms  "
          f"errors {errors}", flush=True)
    return row


def _release_after_end(target: str, redis_client: redis.Redis) -> float:
    """Seconds from the end of 10,000 held memberships until the last of them is released."""
    app_id = next(_APP_IDS)
    with grpc.insecure_channel(target) as channel:
        stub = limit_pb2_grpc.LimitServiceStub(channel)
        plans = plan_pb2_grpc.PlanServiceStub(channel)
        plans.CreateApp(plan_pb2.CreateAppRequest(app_id=app_id))
        plans.Upgrade(plan_pb2.UpgradeRequest(app_id=app_id, edition=plan_pb2.EDITION_PRO, user_group_limit=5000,
                                              group_member_limit=6000))
        groups = HELD_MEMBERSHIPS // 500
        for g in range(groups):
            stub.CreateGroup(limit_pb2.CreateGroupRequest(app_id=app_id, group_id=f"h{g}",
                                                          type=limit_pb2.GROUP_TYPE_PUBLIC), timeout=30)
        checks = [limit_pb2.Check(join_group=limit_pb2.JoinGroupRequest(
            app_id=app_id, group_id=f"h{g}", users=[f"m{g}-{i}" for i in range(500)],
            hold_seconds=RELEASE_HOLD_SECONDS)) for g in range(groups)]
        sent = time.perf_counter()
        results = stub.Batch(limit_pb2.BatchRequest(checks=checks), timeout=60).results
        assert all(result.check.hold_id for result in results), results
    user_counts = f"{{im:{app_id}}}:uc"
    while redis_client.hlen(user_counts):
        time.sleep(0.001)
    return float(time.perf_counter() - (sent + RELEASE_HOLD_SECONDS))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.holds")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--load-processes", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the cost runs")
    parser.add_argument("--runs", type=int, default=3, help="releases per case")
    parser.add_argument("--out", type=Path, default=Path("bench-results/holds.json"))
    args = parser.parse_args()

    redis_server = RedisProcess().start()
    redis_client = redis_server.client()
    server = ServerProcess("--redis-url", redis_server.url).start()
    costs: list[dict[str, Any]] = []
    releases: dict[str, list[float]] = {"idle": [], "under load": []}
    try:
        asyncio.run(_prepare(server.target))
        print(f"holds: cost per check at c={args.concurrency} (a held check counts with its confirm):", flush=True)
        for _ in range(args.rounds):
            costs += [_cost(server, redis_server.pid, workload, args) for workload in WORKLOADS]
        print(f"holds: release of {HELD_MEMBERSHIPS:,} held memberships after their end:", flush=True)
        for _ in range(args.runs):
            releases["idle"].append(_release_after_end(server.target, redis_client))
        seconds = 1.0 + (RELEASE_HOLD_SECONDS + 1.5) * args.runs
        load = threading.Thread(target=lambda: drive(Run(server.target, "join", args.concurrency, seconds, 1.0),
                                                     args.load_processes))
        load.start()
        time.sleep(1.5)
        for _ in range(args.runs):
            releases["under load"].append(_release_after_end(server.target, redis_client))
        load.join()
    finally:
        server.stop()
        redis_server.stop()

    def per_round(workload: str, key: str) -> list[float]:
        return [row[key] for row in costs if row["workload"] == workload]

    def median_of_rounds(label: str, rounds: list[float]) -> float:
        """Print `label` with the median of `rounds` and each round's own; return the median."""
        median = statistics.median(rounds)
        print(f"  {label}: {median:.2f} (median of {len(rounds)} rounds: {', '.join(f'{r:.2f}' for r in rounds)})")
        return median

    ratios: dict[str, float] = {}
    with_repeat: dict[str, float] = {}
    keys = {what: f"{what}_cpu_us_per_check" for what in ("server", "redis")}
    for held, plain in PAIRS:
        for what, key in keys.items():
            rounds = [h / p for h, p in zip(per_round(held, key), per_round(plain, key), strict=True)]
            ratios[f"{held} / {plain}, {what}"] = median_of_rounds(
                f"cost ratio {held} / {plain}, {what} CPU per check", rounds)
    for held, repeat, plain in WITH_REPEAT:
        for what, key in keys.items():
            rounds = [1 + r / p for r, p in zip(per_round(repeat, key), per_round(plain, key), strict=True)]
            with_repeat[f"{held}: 1 + {repeat} / {plain}, {what}"] = median_of_rounds(
                f"{held} priced as {plain} + {repeat}, {what} CPU: 1 + {repeat} / {plain}", rounds)
    for case, seconds_after in releases.items():
        print(f"  {case:10}: released {statistics.median(seconds_after):.3f} s after the end (median of "
              f"{len(seconds_after)}), {max(seconds_after):.3f} s at most")
    print(f"  ({os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; report in {args.out})")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"costs": costs, "ratios": ratios, "plain_plus_repeat": with_repeat,
                                    "releases": releases, "held_memberships": HELD_MEMBERSHIPS,
                                    "cpus": os.cpu_count()}, indent=2))


if __name__ == "__main__":
    main()
