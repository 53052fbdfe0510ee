"""Batch and Stream: many checks decided together, each answered as its unary RPC would answer it."""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterator, Sequence

from google.rpc import code_pb2

from imlimits.v1 import limit_pb2
from imlimits_server.core.checks import Check
from imlimits_server.core.errors import InvalidArgument
from imlimits_server.metrics import BATCHED_CHECKS, CHECKS_PER_BATCH, count_hold_event
from imlimits_server.service import convert
from imlimits_server.service.errors import check_status
from imlimits_server.store.redis_store import RedisStore

MAX_CHECKS_PER_BATCH = 1000


def batch_size(count: int) -> None:
    if not 1 <= count <= MAX_CHECKS_PER_BATCH:
        raise InvalidArgument("checks", f"must hold 1 to {MAX_CHECKS_PER_BATCH} checks, got {count}")


async def decide(store: RedisStore, messages: Sequence[limit_pb2.Check], rpc: str) -> list[limit_pb2.CheckResult]:
    """One result per message, in order; a malformed check answers its own error and is not sent to Redis."""
    answers: list[limit_pb2.CheckResult | None] = [None] * len(messages)
    valid: list[Check] = []
    positions: list[int] = []
    hold_ids = await store.hold_ids()
    for position, message in enumerate(messages):
        try:
            valid.append(convert.check(message, hold_ids))
            positions.append(position)
        except InvalidArgument as error:
            answers[position] = convert.check_result(check_status(error))
    for position, decided in zip(positions, await store.decide_all(valid), strict=True):
        if isinstance(decided, Exception):
            answers[position] = convert.check_result(check_status(decided))
            continue
        count_hold_event(decided)
        answers[position] = convert.check_result(decided)
    results = [answer for answer in answers if answer is not None]
    _count(messages, results, rpc)
    return results


async def rounds(store: RedisStore,
                 checks: AsyncIterator[limit_pb2.Check]) -> AsyncIterator[list[limit_pb2.CheckResult]]:
    """A stream's results in rounds: each round decides every check that arrived while the last was decided.

    A lone check is decided at once; under load, checks queue while a round
    is in Redis and the next round takes them all (up to 1000), so a busy
    stream pays Redis and gRPC per round, not per check. A client that goes
    away mid-round stops the stream, but the round in Redis completes: what
    was decided stays decided, and nothing is half done.
    """
    # Bounded: a client writing faster than Redis decides is slowed by gRPC's flow control.
    queue: asyncio.Queue[limit_pb2.Check] = asyncio.Queue(MAX_CHECKS_PER_BATCH)

    async def read() -> None:
        async for check in checks:
            await queue.put(check)

    reader = asyncio.ensure_future(read())
    try:
        while True:
            if queue.empty():
                if reader.done():
                    reader.result()  # a reading error ends the stream with it
                    return
                getter = asyncio.ensure_future(queue.get())
                await asyncio.wait((getter, reader), return_when=asyncio.FIRST_COMPLETED)
                if not getter.done():
                    getter.cancel()
                    continue
                pending = [getter.result()]
            else:
                pending = []
            while len(pending) < MAX_CHECKS_PER_BATCH and not queue.empty():
                pending.append(queue.get_nowait())
            yield await asyncio.shield(decide(store, pending, "Stream"))
    finally:
        reader.cancel()
        if reader.done() and not reader.cancelled():
            reader.exception()  # the client went away: its reading error is expected, not to be logged


def _count(messages: Sequence[limit_pb2.Check], results: list[limit_pb2.CheckResult], rpc: str) -> None:
    CHECKS_PER_BATCH.labels(rpc).observe(len(messages))
    # Counted per distinct label, not per check: a batch of 1000 costs a handful of increments.
    outcomes: collections.Counter[tuple[str, str]] = collections.Counter()
    for message, result in zip(messages, results, strict=True):
        kind = convert.CHECK_RPCS.get(message.WhichOneof("kind") or "", "Unknown")
        outcomes[kind, "OK" if result is convert.ADMITTED_RESULT else _outcome(result)] += 1
    for (kind, outcome), count in outcomes.items():
        BATCHED_CHECKS.labels(kind, outcome).inc(count)


def _outcome(result: limit_pb2.CheckResult) -> str:
    which = result.WhichOneof("result")
    if which == "error":
        return str(code_pb2.Code.Name(result.error.code))
    code = {"check": result.check.code, "release": result.release.code, "hold": result.hold.code}[which or "check"]
    return "OK" if code == 0 else str(code)

