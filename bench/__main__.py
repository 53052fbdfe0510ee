"""`make bench`: throughput and latency of the service against a no-op server on the same stack.

Every figure of one report comes from one run on one machine, so ratios are
meaningful even where absolute numbers are noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import redis

from bench import batch, loops
from bench.cpu import children_cpu_seconds, cpu_seconds
from bench.load import APPS, GROUPS_PER_APP, Run, drive
from harness import ClusterProcess, RedisProcess, ServerProcess
from imlimits_client import AsyncClient, Edition, GroupType

NOOP, FLOOR, SERVICE = "no-op", "no-op+redis", "imlimits"


@dataclass
class Result:
    server: str
    workload: str
    workers: int
    concurrency: int
    calls: int
    errors: int
    checks_per_second: float
    p50_ms: float
    p99_ms: float
    p999_ms: float
    redis_round_trips_per_check: float | None = None
    redis_commands_in_scripts_per_check: float | None = None
    script_loads: int | None = None
    server_cpu_us_per_check: float | None = None
    redis_cpu_us_per_check: float | None = None
    load_cpu_us_per_check: float | None = None  # the load generator's processes (the callers' side)


def _percentile(ordered: list[float], fraction: float) -> float:
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000 if ordered else float("nan")


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _commandstats(client: redis.Redis) -> dict[str, int]:
    return {name: int(stats["calls"]) for name, stats in client.info("commandstats").items()}


# Commands the service sends itself; everything else in commandstats ran inside its scripts.
_CLIENT_COMMANDS = {"cmdstat_evalsha", "cmdstat_eval", "cmdstat_script|load", "cmdstat_smembers"}


def _measure(name: str, server: ServerProcess, pids: list[int], workload: str, workers: int, concurrency: int,
             args: argparse.Namespace, redis_client: redis.Redis | None, redis_pid: int) -> Result:
    before_stats = _commandstats(redis_client) if redis_client else {}
    before_cpu = cpu_seconds(pids)
    before_redis_cpu = cpu_seconds([redis_pid])
    before_load = children_cpu_seconds()
    calls, errors, latencies, all_calls = drive(Run(server.target, workload, concurrency, args.seconds, args.warmup),
                                     min(args.load_processes, concurrency))
    cpu = cpu_seconds(pids) - before_cpu
    redis_cpu = cpu_seconds([redis_pid]) - before_redis_cpu
    print(f"  {name:8} {workload:4} workers={workers} c={concurrency}: {calls / args.seconds:,.0f} calls/s",
          flush=True)
    latencies.sort()
    result = Result(name, workload, workers, concurrency, calls, errors, calls / args.seconds,
                    _percentile(latencies, 0.5), _percentile(latencies, 0.99), _percentile(latencies, 0.999))
    # CPU is read around the whole run, warm-up included, so it is divided by every call sent.
    result.server_cpu_us_per_check = cpu / max(1, all_calls) * 1e6
    result.load_cpu_us_per_check = (children_cpu_seconds() - before_load) / max(1, all_calls) * 1e6
    if redis_client:
        after = _commandstats(redis_client)
        delta = {key: after.get(key, 0) - before_stats.get(key, 0) for key in after}
        round_trips = sum(value for key, value in delta.items() if key in _CLIENT_COMMANDS)
        inner = sum(value for key, value in delta.items() if key not in _CLIENT_COMMANDS and key != "cmdstat_ping"
                    and key != "cmdstat_info")
        result.redis_round_trips_per_check = round_trips / max(1, all_calls)
        result.redis_commands_in_scripts_per_check = inner / max(1, all_calls)
        result.script_loads = delta.get("cmdstat_script|load", 0)
        result.redis_cpu_us_per_check = redis_cpu / max(1, all_calls) * 1e6
    return result


async def _prepare(target: str) -> None:
    """Apps on PRO with every add-on at its maximum, each with GROUPS_PER_APP groups."""
    async with AsyncClient(target, check_timeout=30, admin_timeout=30) as client:
        for app in APPS:
            await client.admin.create_app(app)
            await client.admin.upgrade(app, Edition.PRO, av_room_unlimited=True, user_group_limit=5000,
                                       group_member_limit=6000)
            await asyncio.gather(*(client.check.create_group(app, f"g{i}", GroupType.PUBLIC, owner=f"o{i}")
                                   for i in range(GROUPS_PER_APP)))


async def _load_memberships(target: str, memberships: int) -> None:
    """`memberships` memberships in one app: groups of 500 drawn from a pool of users."""
    app, per_group = 1_600_000_001, 500
    users = max(per_group, memberships // 10)
    async with AsyncClient(target, check_timeout=60, admin_timeout=60) as client:
        await client.admin.create_app(app)
        await client.admin.upgrade(app, Edition.ULTIMATE, user_group_limit=5000)
        semaphore = asyncio.Semaphore(16)

        async def group(index: int) -> None:
            async with semaphore:
                await client.check.create_group(app, f"m{index}", GroupType.COMMUNITY)
                first = index * per_group
                result = await client.check.join_group(app, f"m{index}",
                                                       [f"user{(first + k) % users}" for k in range(per_group)])
                assert result.allowed, result

        await asyncio.gather(*(group(i) for i in range(memberships // per_group)))


def _table(results: list[Result]) -> str:
    header = ("server", "workload", "workers", "conc", "checks/s", "p50 ms", "p99 ms", "p99.9 ms", "RTT/check",
              "cmds in script", "cpu us/check", "redis us/check", "errors")
    rows = [(r.server, r.workload, r.workers, r.concurrency, f"{r.checks_per_second:,.0f}", f"{r.p50_ms:.2f}",
             f"{r.p99_ms:.2f}", f"{r.p999_ms:.2f}",
             "-" if r.redis_round_trips_per_check is None else f"{r.redis_round_trips_per_check:.2f}",
             "-" if r.redis_commands_in_scripts_per_check is None else f"{r.redis_commands_in_scripts_per_check:.1f}",
             "-" if r.server_cpu_us_per_check is None else f"{r.server_cpu_us_per_check:.0f}",
             "-" if r.redis_cpu_us_per_check is None else f"{r.redis_cpu_us_per_check:.0f}", r.errors)
            for r in results]
    widths = [max(len(str(x)) for x in column) for column in zip(header, *rows, strict=True)]
    return "\n".join("  ".join(str(cell).rjust(width) for cell, width in zip(row, widths, strict=True))
                     for row in (header, *rows))


def main() -> None:
    parser = argparse.ArgumentParser(prog="make bench")
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--load-processes", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2, help="also measure the service with this many workers")
    parser.add_argument("--memberships", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3,
                        help="alternating rounds of the no-op, the floor and the service for each headline figure")
    parser.add_argument("--cluster", action="store_true",
                        help="run the service on a 3-master Redis Cluster (Redis figures are then left out)")
    parser.add_argument("--out", type=Path, default=Path("bench-results/bench.json"))
    args = parser.parse_args()

    started = time.monotonic()
    redis_server: RedisProcess | ClusterProcess = ClusterProcess().start() if args.cluster else RedisProcess().start()
    redis_client = None if isinstance(redis_server, ClusterProcess) else redis_server.client()
    service = ServerProcess("--redis-url", redis_server.url).start()
    noop = ServerProcess(module="bench.noop_server").start(wait_serving=False)
    # The floor: the no-op, but each check waits for one Redis PING first (bench/noop_server.py).
    floor = ServerProcess("--redis-url", redis_server.url, module="bench.noop_server").start(wait_serving=False)
    results: list[Result] = []
    headline = [(workload, concurrency) for workload in ("join", "mix") for concurrency in (args.concurrency, 1)]
    memory: dict[str, Any] = {}
    redis_server_version = ""  # read below from the single redis-server; not on a cluster
    batching: dict[str, Any] = {}
    event_loops: dict[str, Any] = {}
    redis_pid = redis_server.processes[0].pid if isinstance(redis_server, ClusterProcess) else redis_server.pid
    try:
        asyncio.run(_prepare(service.target))

        def measure(server: ServerProcess, workload: str, concurrency: int) -> Result:
            name = {noop.pid: NOOP, floor.pid: FLOOR}.get(server.pid, SERVICE)
            result = _measure(name, server, [server.pid], workload, 1, concurrency, args,
                              None if server is noop else redis_client, redis_pid)
            results.append(result)
            return result

        # Each figure alternates several rounds of the three servers, so that a noisy second hurts every side
        # alike; each ratio and gap is the median of its rounds' own.
        for workload, concurrency in headline:
            for _ in range(args.rounds):
                for server in (noop, floor, service):
                    measure(server, workload, concurrency)
        batching = batch.run(service, noop, redis_server.url, redis_pid if redis_client else None, args.seconds,
                             args.warmup, args.load_processes, args.concurrency)
        event_loops = loops.run(redis_server.url, args.seconds, args.warmup, args.load_processes, args.concurrency,
                                args.rounds)
        if redis_client is not None:
            redis_server_version = str(redis_client.info("server")["redis_version"])
            before = int(redis_client.info("memory")["used_memory"])
            asyncio.run(_load_memberships(service.target, args.memberships))
            after = int(redis_client.info("memory")["used_memory"])
            memory = {"memberships": args.memberships,
                      "redis_bytes_per_membership": (after - before) / args.memberships,
                      "server_rss_mib": _rss_mib(service.pid)}
        if args.workers > 1:
            service.stop()
            service = ServerProcess("--redis-url", redis_server.url, "--workers", str(args.workers)).start()
            pids = [service.pid, *_children(service.pid)]
            results.append(_measure(SERVICE, service, pids, "join", args.workers, args.concurrency, args,
                                    redis_client, redis_pid))
    finally:
        service.stop()
        noop.stop()
        floor.stop()
        redis_server.stop()

    def per_round(server: str, workload: str, concurrency: int, value: Callable[[Result, Result], float]) \
            -> list[float]:
        """`value` of each round of `server`, with the no-op's run of the same round."""
        return [value(run, noop_run) for run, noop_run in
                zip(_rounds(results, server, workload, concurrency), _rounds(results, NOOP, workload, concurrency),
                    strict=True)]

    def ratio(run: Result, noop_run: Result) -> float:
        return run.checks_per_second / noop_run.checks_per_second

    def p50_gap(run: Result, noop_run: Result) -> float:
        return run.p50_ms - noop_run.p50_ms

    ratio_rounds = {server: {f"{workload} c={concurrency}": per_round(server, workload, concurrency, ratio)
                             for workload, concurrency in headline} for server in (SERVICE, FLOOR)}
    ratios = {name: statistics.median(values) for name, values in ratio_rounds[SERVICE].items()}
    floor_ratios = {name: statistics.median(values) for name, values in ratio_rounds[FLOOR].items()}
    gap_rounds = {server: per_round(server, "join", 1, p50_gap) for server in (SERVICE, FLOOR)}
    gap, floor_gap = (statistics.median(gap_rounds[server]) for server in (SERVICE, FLOOR))
    cpu_split = {f"{workload} c={args.concurrency}": _cpu_split(results, workload, args.concurrency)
                 for workload in ("join", "mix")}
    report = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "redis_server": redis_server_version, "redis_py": redis.__version__},
        "settings": {k: str(v) for k, v in vars(args).items()},
        "results": [asdict(r) for r in results],
        "throughput_ratio_service_over_noop": ratios,
        "ratio_per_round": ratio_rounds[SERVICE],
        "p50_gap_ms_at_concurrency_1": gap,
        "p50_gap_ms_per_round": gap_rounds[SERVICE],
        "floor": {"throughput_ratio_over_noop": floor_ratios, "ratio_per_round": ratio_rounds[FLOOR],
                  "p50_gap_ms_at_concurrency_1": floor_gap, "p50_gap_ms_per_round": gap_rounds[FLOOR],
                  "server_cpu_us_per_check": cpu_split},
        "memory": memory,
        "batching": batching,
        "event_loops": event_loops,
        "seconds": time.monotonic() - started,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(_table(results))
    print()
    print(f"each figure below is the median of {args.rounds} alternating rounds (each round's own in brackets)")
    for name, value in ratios.items():
        print(f"throughput ratio imlimits / no-op, {name}: {value:.2f} ("
              + ", ".join(f"{r:.2f}" for r in ratio_rounds[SERVICE][name]) + ")")
    print(f"p50 gap at concurrency 1 (join): {gap:+.3f} ms (" + ", ".join(f"{g:+.3f}" for g in gap_rounds[SERVICE])
          + ")")
    print("the floor, a no-op that waits for one Redis PING per check (what one round trip alone allows): "
          + ", ".join(f"{name} {value:.2f}" for name, value in floor_ratios.items())
          + f"; p50 gap at concurrency 1 {floor_gap:+.3f} ms")
    for name, split in cpu_split.items():
        print(f"  server CPU per check, {name}: gRPC and the no-op {split['noop']:.0f} us, + the Redis round trip "
              f"{split['round_trip']:+.0f} us, + imlimits' own work {split['own_work']:+.0f} us")
    loops.print_report(event_loops)
    if memory:
        print(f"redis bytes per membership at {memory['memberships']:,}: {memory['redis_bytes_per_membership']:.1f}; "
              f"server RSS {memory['server_rss_mib']:.0f} MiB")
    print(f"({os.cpu_count()} CPUs; report in {args.out}; {report['seconds']:.0f} s)")


def _rounds(results: list[Result], server: str, workload: str, concurrency: int) -> list[Result]:
    """The single-process runs of one headline figure by one server, in round order."""
    return [r for r in results
            if (r.server, r.workload, r.workers, r.concurrency) == (server, workload, 1, concurrency)]


def _cpu_split(results: list[Result], workload: str, concurrency: int) -> dict[str, float]:
    """Server CPU per check (medians over the rounds): what the no-op spends, what one Redis round trip adds
    (the floor over the no-op), and what the service's own work adds (the service over the floor)."""
    noop, floor, service = (statistics.median(r.server_cpu_us_per_check or 0.0
                                              for r in _rounds(results, name, workload, concurrency))
                            for name in (NOOP, FLOOR, SERVICE))
    return {"noop": noop, "round_trip": floor - noop, "own_work": service - floor}


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in path.read_text().split()] if path.exists() else []


if __name__ == "__main__":
    main()
