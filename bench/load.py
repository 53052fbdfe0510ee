"""The load generator: closed loop at a fixed concurrency, in its own processes."""

from __future__ import annotations

import asyncio
import multiprocessing
import random
import time
from dataclasses import dataclass
from typing import Any

import grpc

from imlimits.v1 import limit_pb2, limit_pb2_grpc
from imlimits_client import AsyncClient, ImlimitsError

APPS = [1_500_000_001 + i for i in range(8)]
USERS_PER_APP = 20_000
GROUPS_PER_APP = 500
MIX = (("JoinGroup", 70), ("CreateGroup", 15), ("LeaveGroup", 10), ("CreateRoom", 5))


# The held workloads (bench/holds.py): a held JoinGroup and its ConfirmHold are one "check". "held": both as
# unary calls; "held-coalesced": the confirm through the coalescing client (concurrent confirms share Batch
# calls); "held-all-coalesced": both through it, against "join-coalesced", plain joins through it.
# "reconfirm" and "reconfirm-coalesced": after one held join and its confirm, each check confirms that hold
# again, the least work a ConfirmHold can do (unary, and through the coalescing client).
HOLD_SECONDS = 30
# The workloads that call through the client library's coalescing client rather than raw stubs.
COALESCED = ("held-coalesced", "held-all-coalesced", "join-coalesced", "reconfirm-coalesced")


@dataclass(frozen=True)
class Run:
    target: str
    workload: str  # "mix", "join", or one of bench/holds.py's: "held", "reconfirm", or one of COALESCED
    concurrency: int
    seconds: float
    warmup: float


class Workload:
    """Requests on many apps, users and groups; new groups and rooms get ids unique to the process."""

    def __init__(self, kind: str, seed: int) -> None:
        self.kind = kind
        self.random = random.Random(seed)
        self.seed = seed
        self.serial = 0
        self.operations = [name for name, weight in MIX for _ in range(weight)]
        self.confirmed: tuple[int, str] | None = None  # the reconfirm workloads' hold: app and hold id

    def _user(self) -> str:
        return f"u{self.random.randrange(USERS_PER_APP)}"

    def _group(self) -> str:
        return f"g{self.random.randrange(GROUPS_PER_APP)}"

    def next(self, stub: limit_pb2_grpc.LimitServiceStub, client: AsyncClient | None = None) -> Any:
        app = self.random.choice(APPS)
        if self.kind.startswith("held"):
            return self._held(stub, app, client)
        if self.kind.startswith("reconfirm"):
            return self._reconfirm(stub, app, client)
        if self.kind == "join-coalesced":
            assert client is not None
            return client.check.join_group(app, self._group(), [self._user()])
        operation = "JoinGroup" if self.kind == "join" else self.random.choice(self.operations)
        if operation == "JoinGroup":
            return stub.JoinGroup(limit_pb2.JoinGroupRequest(app_id=app, group_id=self._group(), users=[self._user()]))
        if operation == "LeaveGroup":
            return stub.LeaveGroup(limit_pb2.LeaveGroupRequest(app_id=app, group_id=self._group(),
                                                              users=[self._user()]))
        self.serial += 1
        if operation == "CreateGroup":
            members = [self._user() for _ in range(self.random.randrange(3))]
            return stub.CreateGroup(limit_pb2.CreateGroupRequest(
                app_id=app, group_id=f"n{self.seed}-{self.serial}", type=limit_pb2.GROUP_TYPE_PUBLIC,
                owner=self._user(), members=members))
        return stub.CreateRoom(limit_pb2.CreateRoomRequest(app_id=app, room_id=f"r{self.seed}-{self.serial}",
                                                           owner=self._user()))

    async def _held(self, stub: limit_pb2_grpc.LimitServiceStub, app: int, client: AsyncClient | None) -> None:
        if self.kind == "held-all-coalesced":
            assert client is not None
            answer: Any = await client.check.join_group(app, self._group(), [self._user()], hold_seconds=HOLD_SECONDS)
        else:
            answer = await stub.JoinGroup(limit_pb2.JoinGroupRequest(app_id=app, group_id=self._group(),
                                                                     users=[self._user()], hold_seconds=HOLD_SECONDS))
        await _confirm(stub, client, app, answer.hold_id)

    async def _reconfirm(self, stub: limit_pb2_grpc.LimitServiceStub, app: int, client: AsyncClient | None) -> None:
        if self.confirmed is None:
            # In the warm-up (one per task), but its two calls count in the run's CPU: about 2 % more per check.
            answer = await stub.JoinGroup(limit_pb2.JoinGroupRequest(app_id=app, group_id=self._group(),
                                                                     users=[self._user()], hold_seconds=HOLD_SECONDS))
            if not answer.hold_id:
                raise _failed(f"held join refused with code {answer.code}: nothing to confirm")
            await _confirm(stub, None, app, answer.hold_id)
            self.confirmed = app, answer.hold_id
            return
        await _confirm(stub, client, *self.confirmed)


async def _confirm(stub: limit_pb2_grpc.LimitServiceStub, client: AsyncClient | None, app: int, hold_id: str) -> None:
    """ConfirmHold through the coalescing client when given one, else unary; an error unless confirmed."""
    if client is not None:
        confirmed = (await client.check.confirm_hold(app, hold_id)).confirmed
    else:
        confirmed = (await stub.ConfirmHold(limit_pb2.ConfirmHoldRequest(app_id=app, hold_id=hold_id))).confirmed
    if not confirmed:
        raise _failed(f"hold {hold_id} not confirmed")


def _failed(message: str) -> grpc.aio.AioRpcError:
    """An answer the load counts as an error, as it counts a failed call."""
    return grpc.aio.AioRpcError(grpc.StatusCode.UNKNOWN, grpc.aio.Metadata(), grpc.aio.Metadata(), message)


async def _drive(run: Run, seed: int) -> tuple[int, int, list[float], int]:
    """(calls, errors, latencies in seconds) within the measured window, and all calls warm-up included."""
    client = AsyncClient(run.target, check_timeout=5, coalesce=True) if run.workload in COALESCED else None
    async with grpc.aio.insecure_channel(run.target) as channel:
        stub = limit_pb2_grpc.LimitServiceStub(channel)
        start = time.perf_counter() + run.warmup
        end = start + run.seconds
        latencies: list[float] = []
        errors = 0
        sent_in_all = 0

        async def worker(index: int) -> None:
            nonlocal errors, sent_in_all
            workload = Workload(run.workload, seed * 1000 + index)
            while True:
                sent = time.perf_counter()
                if sent >= end:
                    return
                sent_in_all += 1
                try:
                    await workload.next(stub, client)
                except (grpc.aio.AioRpcError, ImlimitsError):
                    if sent >= start:
                        errors += 1
                    continue
                if sent >= start:
                    latencies.append(time.perf_counter() - sent)

        await asyncio.gather(*(worker(i) for i in range(run.concurrency)))
        if client is not None:
            await client.close()
        return len(latencies), errors, latencies, sent_in_all


def _process(run: Run, seed: int, results: Any) -> None:
    results.put(asyncio.run(_drive(run, seed)))


def drive(run: Run, processes: int) -> tuple[int, int, list[float], int]:
    """Split the concurrency over `processes` load processes; gather their counts and latencies."""
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    shares = [run.concurrency // processes + (1 if i < run.concurrency % processes else 0) for i in range(processes)]
    workers = [context.Process(target=_process, args=(Run(run.target, run.workload, share, run.seconds,
                                                          run.warmup), i + 1, results))
               for i, share in enumerate(shares) if share]
    for worker in workers:
        worker.start()
    gathered = [results.get() for _ in workers]
    for worker in workers:
        worker.join()
    return (sum(g[0] for g in gathered), sum(g[1] for g in gathered), [x for g in gathered for x in g[2]],
            sum(g[3] for g in gathered))
