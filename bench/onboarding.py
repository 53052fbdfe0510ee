"""`make bench`, onboarding part: ImportGroups and ExportGroups of 1,000,000 memberships.

10,000 groups of 100 members drawn from 100,000 users (each user in 10
groups, as in the main bench's memory figure). Reports memberships/s for the
client library's import and export and for the `imlimits admin import`
command on a JSON Lines file, Redis memory per membership and the server's
RSS, and, measured in the same run, the JoinGroup path for comparison.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from google.protobuf import json_format

from bench.cpu import cpu_seconds
from harness import ClusterProcess, RedisProcess, ServerProcess
from imlimits_client import AsyncClient, Client, Edition, GroupRecord, GroupType

IMPORTED, VIA_CLI, VIA_JOINS, IMPORTED_LIKE_JOINS = 1_700_000_001, 1_700_000_002, 1_700_000_003, 1_700_000_004


def _records(groups: int, per_group: int, users: int) -> list[GroupRecord]:
    return [GroupRecord(f"g{index}", GroupType.PUBLIC, "",
                        tuple(f"user{(index * per_group + k) % users}" for k in range(per_group)))
            for index in range(groups)]


def _status_kib(pid: int, field: str) -> int:
    for status_line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if status_line.startswith(field + ":"):
            return int(status_line.split()[1])
    return 0


async def _via_joins(target: str, records: list[GroupRecord]) -> float:
    """The same groups built by CreateGroup and JoinGroup calls (500 users a call), 16 at a time."""
    async with AsyncClient(target, check_timeout=60, admin_timeout=60) as client:
        semaphore = asyncio.Semaphore(16)

        async def build(record: GroupRecord) -> None:
            async with semaphore:
                await client.check.create_group(VIA_JOINS, record.group_id, record.type)
                result = await client.check.join_group(VIA_JOINS, record.group_id, list(record.members))
                assert result.allowed, result

        started = time.perf_counter()
        await asyncio.gather(*(build(record) for record in records))
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.onboarding")
    parser.add_argument("--groups", type=int, default=10_000)
    parser.add_argument("--members", type=int, default=100, help="members per group")
    parser.add_argument("--join-groups", type=int, default=1000,
                        help="groups built through JoinGroup for the comparison (same group size and shape)")
    parser.add_argument("--cluster", action="store_true", help="on a 3-master Redis Cluster (no Redis memory)")
    parser.add_argument("--out", type=Path, default=Path("bench-results/onboarding.json"))
    args = parser.parse_args()
    memberships = args.groups * args.members
    records = _records(args.groups, args.members, max(args.members, memberships // 10))
    redis_server: RedisProcess | ClusterProcess = ClusterProcess().start() if args.cluster else RedisProcess().start()
    redis_client = None if isinstance(redis_server, ClusterProcess) else redis_server.client()
    service = ServerProcess("--redis-url", redis_server.url).start()
    redis_pids = [process.pid for process in redis_server.processes] if isinstance(redis_server, ClusterProcess) \
        else [redis_server.pid]

    def _redis_cpu() -> float:
        return cpu_seconds(redis_pids)

    report: dict[str, Any] = {"memberships": memberships, "groups": args.groups, "cpus": os.cpu_count()}
    try:
        with Client(service.target, admin_timeout=60) as client:
            for app in (IMPORTED, VIA_CLI, VIA_JOINS, IMPORTED_LIKE_JOINS):
                client.admin.create_app(app)
                client.admin.upgrade(app, Edition.ULTIMATE, user_group_limit=5000)
            rss_before = _status_kib(service.pid, "VmRSS")
            memory_before = int(redis_client.info("memory")["used_memory"]) if redis_client else 0
            cpu_before = cpu_seconds([service.pid]), _redis_cpu()
            started = time.perf_counter()
            result = client.admin.import_groups(IMPORTED, records)
            seconds = time.perf_counter() - started
            server_cpu, redis_cpu = cpu_seconds([service.pid]) - cpu_before[0], _redis_cpu() - cpu_before[1]
            assert result.memberships_added == memberships, result
            memory_after = int(redis_client.info("memory")["used_memory"]) if redis_client else 0
            report["import"] = {
                "seconds": seconds, "memberships_per_second": memberships / seconds,
                "server_rss_mib_before": rss_before / 1024, "server_rss_mib_after": _status_kib(service.pid, "VmRSS")
                / 1024, "server_peak_rss_mib": _status_kib(service.pid, "VmHWM") / 1024,
                "redis_bytes_per_membership": (memory_after - memory_before) / memberships if redis_client else None,
                "server_cpu_us_per_membership": server_cpu / memberships * 1e6,
                "redis_cpu_us_per_membership": redis_cpu / memberships * 1e6}

            cpu_before = cpu_seconds([service.pid]), _redis_cpu()
            started = time.perf_counter()
            exported = sum(len(record.members) for record in client.admin.export_groups(IMPORTED))
            seconds = time.perf_counter() - started
            assert exported == memberships
            report["export"] = {
                "seconds": seconds, "memberships_per_second": memberships / seconds,
                "server_cpu_us_per_membership": (cpu_seconds([service.pid]) - cpu_before[0]) / memberships * 1e6,
                "redis_cpu_us_per_membership": (_redis_cpu() - cpu_before[1]) / memberships * 1e6}

        data = args.out.parent / "onboarding-groups.jsonl"
        data.parent.mkdir(parents=True, exist_ok=True)
        with data.open("w") as out:
            for record in records:
                out.write(json.dumps(json_format.MessageToDict(record.to_proto()), separators=(",", ":")) + "\n")
        started = time.perf_counter()
        done = subprocess.run([str(Path(sys.executable).parent / "imlimits"), "admin", "import", str(VIA_CLI),
                               str(data), "--json"], capture_output=True, text=True,
                              env={**os.environ, "IMLIMITS_TARGET": service.target})
        seconds = time.perf_counter() - started
        assert done.returncode == 0, done.stderr
        report["cli_import"] = {"seconds": seconds, "memberships_per_second": memberships / seconds,
                                "file_mib": data.stat().st_size / 2**20}
        data.unlink()

        # The JoinGroup path on a smaller set of the same shape (each user in 10 groups), and an import
        # of that same set, so that memory per membership compares like with like.
        join_memberships = args.join_groups * args.members
        joined = _records(args.join_groups, args.members, max(args.members, join_memberships // 10))

        def used_memory() -> int:
            return int(redis_client.info("memory")["used_memory"]) if redis_client else 0

        memory_before = used_memory()
        seconds = asyncio.run(_via_joins(service.target, joined))
        join_bytes = (used_memory() - memory_before) / join_memberships
        memory_before = used_memory()
        with Client(service.target, admin_timeout=60) as client:
            client.admin.import_groups(IMPORTED_LIKE_JOINS, joined)
        import_bytes = (used_memory() - memory_before) / join_memberships
        report["join_path"] = {"memberships": join_memberships, "seconds": seconds,
                               "memberships_per_second": join_memberships / seconds,
                               "redis_bytes_per_membership": join_bytes if redis_client else None,
                               "redis_bytes_per_membership_imported": import_bytes if redis_client else None}
        report["import_over_join_path"] = report["import"]["memberships_per_second"] / \
            report["join_path"]["memberships_per_second"]
    finally:
        service.stop()
        redis_server.stop()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    imported, exported_ = report["import"], report["export"]
    print(f"onboarding, {memberships:,} memberships in {args.groups:,} groups ({os.cpu_count()} CPUs"
          f"{', Redis Cluster' if args.cluster else ''}):")
    print(f"  import (client library): {imported['memberships_per_second']:,.0f} memberships/s "
          f"({imported['seconds']:.1f} s; target 100,000)")
    print(f"    CPU per membership: server {imported['server_cpu_us_per_membership']:.2f} us, Redis "
          f"{imported['redis_cpu_us_per_membership']:.2f} us"
          + (" (the three masters)" if args.cluster else ""))
    print(f"  import (imlimits admin import, {report['cli_import']['file_mib']:.0f} MiB JSONL): "
          f"{report['cli_import']['memberships_per_second']:,.0f} memberships/s")
    print(f"  export: {exported_['memberships_per_second']:,.0f} memberships/s ({exported_['seconds']:.1f} s; "
          "target 200,000)")
    print(f"    CPU per membership: server {exported_['server_cpu_us_per_membership']:.2f} us, Redis "
          f"{exported_['redis_cpu_us_per_membership']:.2f} us")
    print(f"  load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    if imported["redis_bytes_per_membership"] is not None:
        join = report["join_path"]
        print(f"  redis bytes per membership: {imported['redis_bytes_per_membership']:.1f} at {memberships:,}; "
              f"at {join['memberships']:,}: {join['redis_bytes_per_membership_imported']:.1f} imported, "
              f"{join['redis_bytes_per_membership']:.1f} through JoinGroup")
    print(f"  server RSS: {imported['server_rss_mib_before']:.0f} MiB before, {imported['server_rss_mib_after']:.0f} "
          f"MiB after, peak {imported['server_peak_rss_mib']:.0f} MiB")
    print(f"  JoinGroup path, same run: {report['join_path']['memberships_per_second']:,.0f} memberships/s; "
          f"import is {report['import_over_join_path']:.1f}x that")
    print(f"  (report in {args.out})")


if __name__ == "__main__":
    main()
