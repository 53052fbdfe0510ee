"""`make bench`, last step: the capacity model of docs/capacity.md, fed by this run's measured costs.

Reads the reports the earlier steps wrote (bench-results/bench.json and holds.json) and prints
1. the model's inputs: server and Redis CPU per check, unary and batched, plain and held;
2. what a platform needs for N checks/s: server cores (one process per core) and Redis masters;
3. the most one app can do, since all of its keys share one hash slot and so one master;
4. the model against this machine: predicted and measured checks/s at 1 and 2 server processes.

Run alone with `python -m bench.capacity` after `make bench`.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LOADS = (10**4, 10**5, 10**6)


@dataclass(frozen=True)
class Cost:
    name: str
    server_us: float  # server CPU per check (a held check counts with its confirm)
    redis_us: float  # Redis CPU per check


def _median(rows: list[dict[str, Any]], key: str) -> float:
    return float(statistics.median(row[key] for row in rows))


def _unary_runs(bench: dict[str, Any], workload: str, workers: int = 1) -> list[dict[str, Any]]:
    """The service's closed-loop runs of `workload` at the run's concurrency."""
    key = ("imlimits", workload, workers, int(bench["settings"]["concurrency"]))
    return [r for r in bench["results"] if (r["server"], r["workload"], r["workers"], r["concurrency"]) == key]


def _cost(name: str, rows: list[dict[str, Any]]) -> Cost:
    return Cost(name, _median(rows, "server_cpu_us_per_check"), _median(rows, "redis_cpu_us_per_check"))


def costs(bench: dict[str, Any], holds: dict[str, Any] | None) -> list[Cost]:
    """The measured costs, medians over the rounds of each kind."""
    def batched(mode: str) -> list[dict[str, Any]]:
        """Closed loop only (the open-loop runs measure latency), with the most tasks measured: at capacity."""
        rows = [f for f in bench["batching"]["figures"] if f["server"] == "imlimits" and f["mode"] == mode
                and not f["offered"]]
        most = max(row["concurrency"] for row in rows)
        return [row for row in rows if row["concurrency"] == most]

    result = [_cost("unary JoinGroup", _unary_runs(bench, "join")),
              _cost("unary mixed checks", _unary_runs(bench, "mix")),
              _cost("Batch of 100", batched("batch")), _cost("coalescing client", batched("coalesced-batch"))]
    if holds:
        result += [_cost(name, [row for row in holds["costs"] if row["workload"] == workload])
                   for workload, name in (("held", "held + confirm, unary"),
                                          ("held-coalesced", "held + coalesced confirm"),
                                          ("held-all-coalesced", "held + confirm, coalesced"))]
    return result


def needs(cost: Cost, checks_per_second: float, utilization: float) -> tuple[int, int]:
    """(server cores, i.e. processes; Redis masters) for a load, each core kept `utilization` busy."""
    cores = checks_per_second * cost.server_us / 1e6 / utilization
    masters = checks_per_second * cost.redis_us / 1e6 / utilization
    return math.ceil(cores), max(1, math.ceil(masters))


def one_app_cap(cost: Cost, utilization: float) -> float:
    """Checks/s one app can get: its slot lives on one master, whose commands run on one thread."""
    return utilization * 1e6 / cost.redis_us


def machine_check(bench: dict[str, Any]) -> list[dict[str, float]]:
    """Predicted against measured checks/s for unary JoinGroup at 1 and at N server processes on this machine.

    On one machine the load generator, the server processes and Redis share the cores, so the prediction is
    the lower of two bounds: each server process is one event loop (about one core), and all the CPU spent
    per check (server, Redis and the load generator's client side) must fit in the machine's cores.
    """
    cpus = int(bench["machine"]["cpus"])
    rows = []
    for workers in sorted({r["workers"] for r in bench["results"] if r["server"] == "imlimits"}):
        runs = [r for r in _unary_runs(bench, "join", workers) if r.get("load_cpu_us_per_check") is not None]
        if not runs:
            continue
        server, redis_us, load = (_median(runs, key) for key in
                                  ("server_cpu_us_per_check", "redis_cpu_us_per_check", "load_cpu_us_per_check"))
        process_bound = workers * 1e6 / server  # server is the CPU of all the processes per check
        machine_bound = cpus * 1e6 / (server + redis_us + load)
        rows.append({"workers": workers, "server_us": server, "redis_us": redis_us, "load_us": load,
                     "process_bound": process_bound, "machine_bound": machine_bound,
                     "predicted": min(process_bound, machine_bound), "measured": _median(runs, "checks_per_second")})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.capacity")
    parser.add_argument("--results", type=Path, default=Path("bench-results"))
    parser.add_argument("--utilization", type=float, default=0.6,
                        help="the share of each core and each Redis master a plan leaves busy (headroom for peaks)")
    args = parser.parse_args()
    bench = json.loads((args.results / "bench.json").read_text())
    holds_path = args.results / "holds.json"
    holds = json.loads(holds_path.read_text()) if holds_path.exists() else None

    measured = costs(bench, holds)
    print(f"capacity (bench/capacity.py, docs/capacity.md), each core and master at {args.utilization:.0%}:")
    print("  model inputs, CPU per check (medians of this run):")
    for cost in measured:
        print(f"    {cost.name:26} server {cost.server_us:6.1f} us  redis {cost.redis_us:5.1f} us  "
              f"one app at most {one_app_cap(cost, args.utilization):9,.0f} checks/s")
    print("  needed for N checks/s: server cores (= processes) / Redis masters")
    for cost in measured:
        cells = (f"N={load:>9,}: {processes:5} / {masters:3}"
                 for load in LOADS for processes, masters in [needs(cost, load, args.utilization)])
        print(f"    {cost.name:26} " + "   ".join(cells))
    print("  the model on this machine (unary JoinGroup, server + Redis + load generator on "
          f"{bench['machine']['cpus']} CPUs):")
    for row in machine_check(bench):
        error = row["measured"] / row["predicted"] - 1
        print(f"    {row['workers']} process(es): server {row['server_us']:.0f} us + redis {row['redis_us']:.0f} us + "
              f"load generator {row['load_us']:.0f} us per check; predicted {row['predicted']:,.0f} checks/s "
              f"(process bound {row['process_bound']:,.0f}, machine bound {row['machine_bound']:,.0f}), "
              f"measured {row['measured']:,.0f} ({error:+.0%})")


if __name__ == "__main__":
    main()
