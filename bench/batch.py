"""`make bench`, batching: Batch and coalesced single checks against unary JoinGroup, in one run on one machine.

- Redis: one app's checks decided by batch.lua (one script call per app and
  batch) against the same checks as pipelined EVALSHAs (one script call per
  check, written back to back), Redis CPU per check measured for each.
- Throughput: JoinGroups of one user each, spread over 8 apps, closed loop
  from the same load processes: unary calls against Batches of 100 (raw
  stubs, as bench.load sends them), and single calls through the client
  library, unary against coalesced by the asyncio client into Batch calls
  (its default) and into a Stream; against imlimits and the no-op server.
- Latency: the client library's unary and coalesced calls at the same
  offered (open-loop) rate.
- Attempts: the service writing each Redis command at once, against the
  service as shipped, which writes a loop turn's commands together (uvloop
  has its own comparison, bench/loops.py, with a no-op server on each loop).

Run alone with `PYTHONPATH=tests .venv/bin/python -m bench.batch`.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import multiprocessing
import os
import random
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import grpc
import redis

from bench.cpu import cpu_seconds
from bench.load import APPS, GROUPS_PER_APP, USERS_PER_APP
from harness import RedisProcess, ServerProcess
from imlimits.v1 import limit_pb2, limit_pb2_grpc
from imlimits_client import AsyncClient, ImlimitsError
from imlimits_server.core.checks import JoinGroup
from imlimits_server.store.connections import connect
from imlimits_server.store.redis_store import RedisStore

BATCH_SIZE = 100
SATURATING = 4  # times --concurrency: enough tasks to fill coalesced Batches (see run)
LATENCY_ROUNDS = 3


@dataclass(frozen=True)
class Load:
    target: str
    mode: str  # "unary" or "batch" (raw stubs); "client", "coalesced-batch" or "coalesced-stream" (client library)
    concurrency: int
    seconds: float
    warmup: float
    rate: float = 0.0  # checks/s offered by this process; 0 is a closed loop


@dataclass
class Figure:
    server: str
    mode: str
    concurrency: int
    offered: float
    checks_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int
    server_cpu_us_per_check: float
    redis_cpu_us_per_check: float | None


def _join_of(rng: random.Random) -> tuple[int, str, list[str]]:
    """A JoinGroup's app, group and user: the client library takes these, a raw stub the message."""
    return rng.choice(APPS), f"g{rng.randrange(GROUPS_PER_APP)}", [f"u{rng.randrange(USERS_PER_APP)}"]


def _join(rng: random.Random) -> limit_pb2.JoinGroupRequest:
    app_id, group_id, users = _join_of(rng)
    return limit_pb2.JoinGroupRequest(app_id=app_id, group_id=group_id, users=users)


async def _drive(load: Load, seed: int) -> tuple[int, int, list[float], int]:
    """(checks answered in the window, errors, latencies of single checks or batches, checks sent in all)."""
    rng = random.Random(seed)
    async with AsyncClient(load.target, check_timeout=10, on_unavailable="raise",
                           coalesce=load.mode.startswith("coalesced"),
                           coalesce_via="stream" if load.mode == "coalesced-stream" else "batch") as client, \
            grpc.aio.insecure_channel(load.target) as channel:
        stub = limit_pb2_grpc.LimitServiceStub(channel)
        start = time.perf_counter() + load.warmup
        end = start + load.seconds
        latencies: list[float] = []
        counts = {"answered": 0, "errors": 0, "sent": 0}

        async def one(sent: float) -> None:
            size = BATCH_SIZE if load.mode == "batch" else 1
            counts["sent"] += size
            failed = 0
            try:
                if load.mode == "batch":
                    request = limit_pb2.BatchRequest(checks=[limit_pb2.Check(join_group=_join(rng))
                                                             for _ in range(BATCH_SIZE)])
                    response = await stub.Batch(request, timeout=10)
                    failed = sum(result.HasField("error") for result in response.results)
                elif load.mode == "unary":
                    await stub.JoinGroup(_join(rng), timeout=10)
                else:
                    await client.check.join_group(*_join_of(rng))
            except (grpc.RpcError, ImlimitsError):
                failed = size
            if sent >= start:
                counts["errors"] += failed
                counts["answered"] += size - failed
                latencies.append(time.perf_counter() - sent)

        async def closed_loop() -> None:
            while (sent := time.perf_counter()) < end:
                await one(sent)

        async def open_loop() -> None:
            tasks = set()
            due = time.perf_counter()
            while due < end:
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                task = asyncio.ensure_future(one(due))  # latency counts from when the check was due
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                due += 1 / load.rate
            await asyncio.gather(*tasks)

        if load.rate:
            # A gen-2 collection in a load process stops its clock for 15-30 ms (measured): held off while it
            # times latencies, so that a p99 reads the service's tail, not the load generator's.
            gc.disable()
            try:
                await open_loop()
            finally:
                gc.enable()
        else:
            await asyncio.gather(*(closed_loop() for _ in range(load.concurrency)))
        return counts["answered"], counts["errors"], latencies, counts["sent"]


def _process(load: Load, seed: int, results: Any) -> None:
    results.put(asyncio.run(_drive(load, seed)))


def drive(load: Load, processes: int) -> tuple[int, int, list[float], int]:
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    share = Load(load.target, load.mode, max(1, load.concurrency // processes), load.seconds, load.warmup,
                 load.rate / processes)
    workers = [context.Process(target=_process, args=(share, i + 1, results)) for i in range(processes)]
    for worker in workers:
        worker.start()
    gathered = [results.get() for _ in workers]
    for worker in workers:
        worker.join()
    return (sum(g[0] for g in gathered), sum(g[1] for g in gathered), [x for g in gathered for x in g[2]],
            sum(g[3] for g in gathered))


def _percentile(ordered: list[float], fraction: float) -> float:
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000 if ordered else float("nan")


def measure(name: str, server: ServerProcess, redis_pid: int | None, load: Load, processes: int) -> Figure:
    pids = [server.pid]
    before, before_redis = cpu_seconds(pids), cpu_seconds([redis_pid]) if redis_pid else 0.0
    answered, errors, latencies, sent = drive(load, processes)
    cpu, redis_cpu = cpu_seconds(pids) - before, (cpu_seconds([redis_pid]) - before_redis) if redis_pid else 0.0
    latencies.sort()
    figure = Figure(name, load.mode, load.concurrency, load.rate, answered / load.seconds,
                    _percentile(latencies, 0.5), _percentile(latencies, 0.99), errors,
                    cpu / max(1, sent) * 1e6, redis_cpu / max(1, sent) * 1e6 if redis_pid else None)
    print(f"  {name:8} {load.mode:9} c={load.concurrency} offered={load.rate:,.0f}/s: "
          f"{figure.checks_per_second:,.0f} checks/s, p99 {figure.p99_ms:.2f} ms", flush=True)
    return figure


def _redis_figures(redis_client: redis.Redis) -> tuple[float, float, int]:
    """(Redis CPU seconds, seconds inside script commands, script calls) so far, as Redis counts them."""
    cpu = redis_client.info("cpu")
    stats = redis_client.info("commandstats")
    scripts = [stats.get(name, {}) for name in ("cmdstat_evalsha", "cmdstat_eval")]
    return (float(cpu["used_cpu_sys"]) + float(cpu["used_cpu_user"]),
            sum(int(s.get("usec", 0)) for s in scripts) / 1e6, sum(int(s.get("calls", 0)) for s in scripts))


async def compare_store(redis_url: str, seconds: float, rounds: int = 3) -> dict[str, dict[str, float]]:
    """Redis CPU per check: batch.lua against pipelined EVALSHAs, on the same batches of 100 JoinGroups.

    Alternating rounds, so that a noisy moment on a shared machine hurts both alike.
    """
    store = RedisStore(connect(redis_url, timeout=10))
    redis_client = redis.Redis.from_url(redis_url)
    rng = random.Random(7)

    def batch() -> list[JoinGroup]:
        return [JoinGroup(rng.choice(APPS), f"g{rng.randrange(GROUPS_PER_APP)}", (f"u{rng.randrange(USERS_PER_APP)}",),
                          False) for _ in range(BATCH_SIZE)]

    async def pipelined(checks: list[JoinGroup]) -> None:
        await asyncio.gather(*(store.decide(check) for check in checks))

    async def scripted(checks: list[JoinGroup]) -> None:
        await store.decide_all(checks)

    totals: dict[str, list[float]] = {}
    for name, decide in (("pipelined EVALSHA per check", pipelined), ("batch.lua per app", scripted)) * rounds:
        await decide(batch())  # the script is loaded before the clock starts
        redis_before, self_before, decided = _redis_figures(redis_client), cpu_seconds([os.getpid()]), 0
        started = time.perf_counter()
        while time.perf_counter() < started + seconds / rounds:
            await asyncio.gather(*(decide(batch()) for _ in range(4)))
            decided += 4 * BATCH_SIZE
        redis_after = _redis_figures(redis_client)
        sums = totals.setdefault(name, [0.0] * 6)
        for i, value in enumerate((redis_after[0] - redis_before[0], redis_after[1] - redis_before[1],
                                   redis_after[2] - redis_before[2], cpu_seconds([os.getpid()]) - self_before,
                                   decided, time.perf_counter() - started)):
            sums[i] += value
    await store.redis.close()
    redis_client.close()
    return {name: {"redis_cpu_us_per_check": cpu / decided * 1e6, "script_us_per_check": inside / decided * 1e6,
                   "script_calls_per_check": calls / decided, "store_cpu_us_per_check": own / decided * 1e6,
                   "checks_per_second": decided / elapsed}
            for name, (cpu, inside, calls, own, decided, elapsed) in totals.items()}


def run(service: ServerProcess, noop: ServerProcess, redis_url: str, redis_pid: int | None, seconds: float,
        warmup: float, processes: int, concurrency: int) -> dict[str, Any]:
    """Every figure of the batching report; service and no-op serve the apps of bench.load."""
    report: dict[str, Any] = {}
    if redis_pid is not None:
        report["store"] = asyncio.run(compare_store(redis_url, 2 * seconds))
    figures: list[Figure] = []
    # 64 tasks fill a coalesced Batch with at most 32 checks per load process, and each process then waits for
    # its Batch: coalescing is measured there and with SATURATING times as many tasks, where the coalesced
    # Batches are full; unary is measured at both to show it gains nothing from more tasks.
    crowd = SATURATING * concurrency
    for mode, conc in (("unary", concurrency), ("batch", 8), ("client", concurrency),
                       ("coalesced-batch", concurrency), ("coalesced-stream", concurrency), ("client", crowd),
                       ("coalesced-batch", crowd)):
        for name, server in (("no-op", noop), ("imlimits", service)):
            figures.append(measure(name, server, None if server is noop else redis_pid,
                                   Load(server.target, mode, conc, seconds, warmup), processes))
    by = {(f.server, f.mode, f.concurrency): f for f in figures}
    unary = by["imlimits", "unary", concurrency].checks_per_second
    client = by["imlimits", "client", concurrency].checks_per_second
    # Latency at the same offered load: half what unary sustains through the client, so that each keeps up
    # even when the shared machine has a busy moment.
    offered = 0.5 * client
    # A p99 over a few seconds on a shared machine is set by its worst stall: alternating rounds, medians.
    for _ in range(LATENCY_ROUNDS):
        for mode in ("client", "coalesced-batch", "coalesced-stream"):
            figures.append(measure("imlimits", service, redis_pid, Load(service.target, mode, concurrency, seconds,
                                                                        warmup, offered), processes))
    p99s = {mode: [f.p99_ms for f in figures if f.offered and f.mode == mode]
            for mode in ("client", "coalesced-batch", "coalesced-stream")}
    report["figures"] = [asdict(f) for f in figures]
    report["attempts"] = attempts(redis_url, seconds, warmup, processes, concurrency)
    def rate(server: str, mode: str, conc: int = concurrency) -> float:
        return by[server, mode, conc].checks_per_second

    report["ratios"] = {
        "batch_over_unary": rate("imlimits", "batch", 8) / unary,
        "coalesced_batch_over_client_unary": rate("imlimits", "coalesced-batch") / client,
        "coalesced_stream_over_client_unary": rate("imlimits", "coalesced-stream") / client,
        "saturating_tasks": crowd,
        "coalesced_batch_over_client_unary_saturating": rate("imlimits", "coalesced-batch", crowd)
        / rate("imlimits", "client", crowd),
        "unary_over_noop": unary / rate("no-op", "unary"),
        "batch_over_noop_batch": rate("imlimits", "batch", 8) / rate("no-op", "batch", 8),
        "coalesced_batch_over_noop": rate("imlimits", "coalesced-batch") / rate("no-op", "coalesced-batch"),
        "p99_ms_at_same_offered_load": {"offered_checks_per_second": offered,
                                        "unary": statistics.median(p99s["client"]),
                                        "coalesced_batch": statistics.median(p99s["coalesced-batch"]),
                                        "coalesced_stream": statistics.median(p99s["coalesced-stream"]),
                                        "per_round": p99s},
    }
    print("batching (bench/batch.py):")
    print_report(report)
    return report


# Attempts, each the same service started differently (see the modules).
ATTEMPTS = {"as shipped": "imlimits_server.main", "redis writes uncorked": "bench.uncorked_server"}


def attempts(redis_url: str, seconds: float, warmup: float, processes: int, concurrency: int) -> dict[str, Any]:
    """Unary JoinGroup at `concurrency` and at 1, and Batches of 100, for each attempt, on the same Redis."""
    servers = {name: ServerProcess("--redis-url", redis_url, module=module).start()
               for name, module in ATTEMPTS.items()}
    report: dict[str, Any] = {}
    try:
        for mode, conc in (("unary", concurrency), ("unary", 1), ("batch", 8)):
            for name, server in servers.items():
                figure = measure(name[:8], server, None, Load(server.target, mode, conc, seconds, warmup),
                                 min(processes, conc))
                report.setdefault(name, {})[f"{mode} c={conc}"] = {
                    "checks_per_second": figure.checks_per_second, "p50_ms": figure.p50_ms, "p99_ms": figure.p99_ms,
                    "server_cpu_us_per_check": figure.server_cpu_us_per_check}
    finally:
        for server in servers.values():
            server.stop()
    return report


def print_attempts(report: dict[str, Any]) -> None:
    print("  attempts (same run, same Redis):")
    for name, figures in report.items():
        print(f"    {name}: " + "; ".join(f"{key} {value['checks_per_second']:,.0f}/s p50 {value['p50_ms']:.2f} ms "
                                          f"cpu {value['server_cpu_us_per_check']:.0f} us"
                                          for key, value in figures.items()))


def print_report(report: dict[str, Any]) -> None:
    for name, figure in report.get("store", {}).items():
        print(f"  store, {name}: Redis CPU {figure['redis_cpu_us_per_check']:.1f} us/check (in scripts "
              f"{figure['script_us_per_check']:.1f}, {figure['script_calls_per_check']:.2f} script calls/check), "
              f"store CPU {figure['store_cpu_us_per_check']:.1f} us/check, {figure['checks_per_second']:,.0f} checks/s")
    header = ("server", "mode", "conc", "offered/s", "checks/s", "p50 ms", "p99 ms", "cpu us/check", "redis us/check",
              "errors")
    rows = [(f["server"], f["mode"], f["concurrency"], f"{f['offered']:,.0f}", f"{f['checks_per_second']:,.0f}",
             f"{f['p50_ms']:.2f}", f"{f['p99_ms']:.2f}", f"{f['server_cpu_us_per_check']:.0f}",
             "-" if f["redis_cpu_us_per_check"] is None else f"{f['redis_cpu_us_per_check']:.1f}", f["errors"])
            for f in report["figures"]]
    widths = [max(len(str(x)) for x in column) for column in zip(header, *rows, strict=True)]
    for row in (header, *rows):
        print("  " + "  ".join(str(cell).rjust(width) for cell, width in zip(row, widths, strict=True)))
    ratios = report["ratios"]
    print(f"batch of {BATCH_SIZE} / unary checks/s: {ratios['batch_over_unary']:.1f}x; through the client, coalesced "
          f"/ unary: {ratios['coalesced_batch_over_client_unary']:.1f}x into Batch (the default), "
          f"{ratios['coalesced_stream_over_client_unary']:.1f}x into Stream; with {ratios['saturating_tasks']} tasks, "
          f"{ratios['coalesced_batch_over_client_unary_saturating']:.1f}x into Batch")
    print_attempts(report["attempts"])
    latency = ratios["p99_ms_at_same_offered_load"]
    rounds = latency.get("per_round", {})
    count = len(rounds.get("client", []))
    print(f"p99 at {latency['offered_checks_per_second']:,.0f} checks/s offered (median of {count} rounds): "
          f"unary {latency['unary']:.2f} ms, coalesced into Batch "
          f"{latency['coalesced_batch']:.2f} ms, into Stream {latency['coalesced_stream']:.2f} ms; rounds: "
          + "; ".join(f"{mode} " + ", ".join(f"{p99:.2f}" for p99 in values) for mode, values in rounds.items()))


def main() -> None:
    from bench.__main__ import _prepare  # the apps and groups every workload uses

    parser = argparse.ArgumentParser(prog="python -m bench.batch")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--load-processes", type=int, default=2)
    parser.add_argument("--server-module", default="imlimits_server.main")
    parser.add_argument("--out", type=Path, default=Path("bench-results/batch.json"))
    args = parser.parse_args()
    redis_server = RedisProcess().start()
    service = ServerProcess("--redis-url", redis_server.url, module=args.server_module).start()
    noop = ServerProcess(module="bench.noop_server").start(wait_serving=False)
    try:
        asyncio.run(_prepare(service.target))
        report = run(service, noop, redis_server.url, redis_server.pid, args.seconds, args.warmup,
                     args.load_processes, args.concurrency)
    finally:
        service.stop()
        noop.stop()
        redis_server.stop()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
