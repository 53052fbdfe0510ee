"""`make bench`, event loops: the service against the no-op server, both on asyncio and both on uvloop.

Each loop gets its own pair of servers on the same Redis, so a ratio compares
the service with a baseline on the same loop; the rounds alternate no-op and
service, and loops, so that a noisy second hurts every side alike.
"""

from __future__ import annotations

import statistics
from typing import Any

from bench.cpu import cpu_seconds
from bench.load import Run, drive
from harness import ServerProcess

LOOPS = ("asyncio", "uvloop")
WORKLOADS = ("join", "mix")


def _start(loop: str, *args: str, module: str) -> ServerProcess:
    return ServerProcess(*args, "--event-loop", loop, module=module)


def _measure(server: ServerProcess, workload: str, concurrency: int, seconds: float, warmup: float,
             processes: int) -> dict[str, float]:
    before = cpu_seconds([server.pid])
    calls, errors, _, all_calls = drive(Run(server.target, workload, concurrency, seconds, warmup),
                                        min(processes, concurrency))
    return {"checks_per_second": calls / seconds, "errors": errors,
            "server_cpu_us_per_check": (cpu_seconds([server.pid]) - before) / max(1, all_calls) * 1e6}


def run(redis_url: str, seconds: float, warmup: float, processes: int, concurrency: int,
        rounds: int) -> dict[str, Any]:
    """Per loop and workload: the median ratio over `rounds`, each round's ratio, and the medians of each side."""
    pairs = {loop: (_start(loop, module="bench.noop_server").start(wait_serving=False),
                    _start(loop, "--redis-url", redis_url, module="imlimits_server.main").start())
             for loop in LOOPS}
    figures: dict[tuple[str, str], list[tuple[dict[str, float], dict[str, float]]]] = {}
    try:
        for workload in WORKLOADS:
            for _ in range(rounds):
                for loop, (noop, service) in pairs.items():
                    figures.setdefault((loop, workload), []).append(
                        (_measure(noop, workload, concurrency, seconds, warmup, processes),
                         _measure(service, workload, concurrency, seconds, warmup, processes)))
    finally:
        for noop, service in pairs.values():
            noop.stop()
            service.stop()
    report: dict[str, Any] = {}
    for (loop, workload), runs in figures.items():
        ratios = [service["checks_per_second"] / noop["checks_per_second"] for noop, service in runs]
        report.setdefault(loop, {})[f"{workload} c={concurrency}"] = {
            "ratio": statistics.median(ratios), "ratio_per_round": ratios,
            **{f"{side}_{key}": statistics.median(run[index][key] for run in runs)
               for index, side in enumerate(("noop", "service"))
               for key in ("checks_per_second", "server_cpu_us_per_check")},
            "errors": sum(run[1]["errors"] for run in runs)}
    return report


def print_report(report: dict[str, Any]) -> None:
    print("event loops (bench/loops.py), each loop's service against a no-op server on that loop:")
    for loop, workloads in report.items():
        for name, figure in workloads.items():
            print(f"  {loop:7} {name}: ratio {figure['ratio']:.2f} (rounds "
                  + ", ".join(f"{ratio:.2f}" for ratio in figure["ratio_per_round"])
                  + f"); service {figure['service_checks_per_second']:,.0f}/s at "
                  f"{figure['service_server_cpu_us_per_check']:.0f} us CPU, no-op "
                  f"{figure['noop_checks_per_second']:,.0f}/s at {figure['noop_server_cpu_us_per_check']:.0f} us; "
                  f"errors {figure['errors']}")
