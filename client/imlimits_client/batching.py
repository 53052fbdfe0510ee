"""Many checks per call: `batch` (sync and asyncio) and the asyncio client's coalescing into Stream.

A check keeps its meaning however it travels: its own deadline, the
on_unavailable policy when its answer is unknown, and retries only where a
retry is safe.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Iterator, Sequence
from typing import Any, Literal, NamedTuple

import grpc

from imlimits.v1 import limit_pb2
from imlimits_client.calls import Call
from imlimits_client.errors import ImlimitsError, Unavailable, from_rpc_error, from_status
from imlimits_client.policy import Attempts, OnUnavailable, RetryPolicy, unavailable_answer
from imlimits_client.types import CheckResult, HoldResult, Released

MAX_CHECKS_PER_BATCH = 1000
# Coalescing: how long a check may wait for others, and how many are sent at once.
DEFAULT_COALESCE_WINDOW = 0.0005
DEFAULT_COALESCE_MAX = 100
# How long a confirm or a cancel may wait for others, even when nothing is on its way: what it closes has
# already happened, and a confirm alone costs the service about what a check does (docs/holds.md).
DEFAULT_COALESCE_CONFIRM_WINDOW = 0.01
# Checks leave at once (at the end of the loop turn, with whatever else was asked in it) while fewer calls than
# this are on their way, and wait for company only past it: a moderate load then waits for no window (p50 as
# unary's at half of unary capacity), a heavy one fills its Batches (measured in bench/batch.py: 1 did worse
# on both counts).
CALLS_BEFORE_WAITING = 4

BatchAnswer = CheckResult | Released | HoldResult | ImlimitsError
CoalesceVia = Literal["stream", "batch"]


def check_message(call: Call[Any]) -> limit_pb2.Check:
    if not call.check_field:
        raise ValueError(f"{call.method} is not a check: Batch and Stream carry CreateGroup, CreateRoom, JoinGroup, "
                         "LeaveGroup, DestroyGroup, ConfirmHold and CancelHold")
    message = limit_pb2.Check()
    getattr(message, call.check_field).CopyFrom(call.request)
    return message


def answer_of(result: Any) -> Any:
    """A batched check's answer as its unary call returns it (CheckResponse, ReleaseResponse) or raises it."""
    if not isinstance(result, limit_pb2.CheckResult):
        return result  # the unary call's own answer
    which = result.WhichOneof("result")
    if which == "check":
        return result.check
    if which == "release":
        return result.release
    if which == "hold":
        return result.hold
    if which == "error":
        raise from_status(result.error.code, result.error.message)
    raise ImlimitsError(grpc.StatusCode.UNKNOWN, "the service answered a check with an empty result")


class BatchRun:
    """One `batch([...])`: which checks still need an answer, and what each answered.

    The whole call is retried for the checks whose answer is unknown
    (UNAVAILABLE) and that are safe to send twice, within one deadline;
    the others get the on_unavailable policy's answer, or the error.
    """

    def __init__(self, checks: Sequence[Call[Any]], policy: RetryPolicy, timeout: float,
                 on_unavailable: OnUnavailable) -> None:
        if not 1 <= len(checks) <= MAX_CHECKS_PER_BATCH:
            raise ValueError(f"a batch holds 1 to {MAX_CHECKS_PER_BATCH} checks, got {len(checks)}")
        self._messages = [check_message(call) for call in checks]
        self._checks = checks
        self._on_unavailable = on_unavailable
        self.attempts = Attempts(policy, timeout, retry_safe=True)
        self._answers: list[BatchAnswer | None] = [None] * len(checks)
        self._todo = list(range(len(checks)))

    def request(self) -> limit_pb2.BatchRequest:
        return limit_pb2.BatchRequest(checks=[self._messages[index] for index in self._todo])

    def answered(self, response: limit_pb2.BatchResponse) -> None:
        if len(response.results) != len(self._todo):
            raise ImlimitsError(grpc.StatusCode.UNKNOWN, f"{len(response.results)} results for {len(self._todo)} "
                                "checks")
        for index, result in zip(self._todo, response.results, strict=True):
            try:
                self._answers[index] = self._checks[index].convert(answer_of(result))
            except ImlimitsError as error:
                self._answers[index] = error

    def failed(self, error: grpc.RpcError) -> None:
        """The call as a whole failed: UNAVAILABLE leaves every check unknown; anything else is raised."""
        failure = from_rpc_error(error)
        if not isinstance(failure, Unavailable):
            raise failure
        for index in self._todo:
            self._answers[index] = failure

    def retry_delay(self) -> float | None:
        """Seconds before sending again the unknown checks that may be sent twice; None when done."""
        unknown = [index for index in self._todo if isinstance(self._answers[index], Unavailable)]
        retryable = [index for index in unknown if self._checks[index].retry_safe]
        delay = self.attempts.retry_delay(self._answers[retryable[0]]) if retryable else None  # type: ignore[arg-type]
        if delay is None:
            self._todo = []
            return None
        self._todo = retryable
        return delay

    def results(self) -> list[BatchAnswer]:
        results: list[BatchAnswer] = []
        for call, answer in zip(self._checks, self._answers, strict=True):
            assert answer is not None
            if isinstance(answer, Unavailable):
                try:
                    answer = unavailable_answer(call, answer, self._on_unavailable)
                except ImlimitsError as error:
                    answer = error
            results.append(answer)
        return results


# A coalesced Batch stays well inside the server's receive limit (about 1 MB,
# the size of the largest import message): 100 concurrent joins of 500 users
# each would be 1.6 MB, and a refused Batch would fail every check in it.
COALESCED_BATCH_MAX_BYTES = 512 * 1024


class Waiting(NamedTuple):
    """A check handed to the coalescer: its call, its Check message (built once), its caller's future, and
    when (loop time) its caller stops waiting. A tuple: one is made per check, and cheaply."""

    call: Call[Any]
    message: limit_pb2.Check
    future: asyncio.Future[Any]
    deadline: float


def by_size(waiting: list[Waiting], max_bytes: int = COALESCED_BATCH_MAX_BYTES) -> Iterator[list[Waiting]]:
    """The waiting checks in runs whose Batch stays under `max_bytes`; each run keeps at least one check."""
    run: list[Waiting] = []
    size = 0
    for item in waiting:
        # A repeated field's element costs its own size, its tag and a length prefix of at most 3 bytes.
        cost = item.message.ByteSize() + 4
        if run and size + cost > max_bytes:
            yield run
            run, size = [], 0
        run.append(item)
        size += cost
    if run:
        yield run


_DEADLINE_PASSED = "no answer within the check's deadline"


def unanswered(items: list[Waiting], now: float) -> list[Waiting]:
    """The checks of `items` still waiting for an answer, once those whose deadline has passed are failed."""
    left = []
    for item in items:
        if item.future.done():
            continue
        if item.deadline <= now:
            item.future.set_exception(Unavailable(grpc.StatusCode.DEADLINE_EXCEEDED, _DEADLINE_PASSED))
        else:
            left.append(item)
    return left


def expire(sent: list[Waiting], loop: asyncio.AbstractEventLoop) -> asyncio.TimerHandle | None:
    """Fails each check of `sent` when its deadline passes: one timer for a whole run, at its earliest
    deadline (each check keeps its own), instead of a timer per check."""
    left = unanswered(sent, loop.time())
    return loop.call_at(min(item.deadline for item in left), expire, left, loop) if left else None


class Coalescer:
    """Single checks from many tasks, sent together in one Batch call or over one long-lived Stream.

    While fewer than CALLS_BEFORE_WAITING calls are on their way (over a
    Stream: while nothing is), a check leaves at the end of the current turn
    of the event loop, with whatever other tasks asked in that turn (a lone
    check as its own unary call): a quiet client waits for no window. Past
    that, new checks wait at most `window` seconds for company, or until
    `max_checks` are waiting, or until a call on its way is answered. A
    confirm or a cancel waits up to `confirm_window` in any case, unless
    another check takes it along. Answers come back in the order the checks were sent,
    so each is matched to its caller first in, first out. A failed call, or
    a broken stream, leaves each of its checks UNAVAILABLE (and retried,
    where safe, with the next send). Each check keeps its own deadline: a
    Batch call lasts as long as the latest of its checks may wait, and one
    timer per run answers the others DEADLINE_EXCEEDED when theirs passes.
    """

    def __init__(self, stub: Any, metadata: tuple[tuple[str, str], ...], window: float, max_checks: int,
                 via: CoalesceVia = "batch", confirm_window: float = DEFAULT_COALESCE_CONFIRM_WINDOW) -> None:
        self._stub = stub
        self._via = via
        self._metadata = metadata
        self._window = window
        self._confirm_window = confirm_window
        self._max_checks = max_checks
        # The loop of the first check: the channel, and so every call of this coalescer, belongs to it.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiting: list[Waiting] = []
        self._urgent_waiting = False  # a waiting check other than a confirm or a cancel
        self._timer: asyncio.Handle | None = None
        self._due = 0.0  # while _timer is set: when (loop time) the waiting checks leave
        self._flush = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._sends: set[asyncio.Task[None]] = set()  # Batch or unary calls on their way
        self._stream: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._in_flight: collections.deque[asyncio.Future[Any]] = collections.deque()

    async def send(self, call: Call[Any], timeout: float) -> Any:
        """The check's answer message, or its error raised, within `timeout`."""
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        now = loop.time()
        deadline = now + timeout
        self._waiting.append(Waiting(call, check_message(call), future, deadline))
        if self._writer is None or self._writer.done():
            self._writer = loop.create_task(self._write())
        if len(self._waiting) >= self._max_checks:
            self._send_now()
            return answer_of(await future)
        if call.urgent:
            self._urgent_waiting = True
            wait = 0.0 if self._free_to_send() else self._window
        else:
            wait = self._confirm_window
        # Never past its deadline: then it leaves with the others, or is answered DEADLINE_EXCEEDED.
        self._leave_by(min(now + wait, deadline), loop)
        return answer_of(await future)

    def _leave_by(self, due: float, loop: asyncio.AbstractEventLoop) -> None:
        """The waiting checks leave at `due` (loop time) at the latest; at the end of this turn if it has come."""
        if self._timer is not None:
            if self._due <= due:
                return
            self._timer.cancel()
        self._due = due
        self._timer = loop.call_soon(self._send_now) if due <= loop.time() else loop.call_at(due, self._send_now)

    def _free_to_send(self) -> bool:
        return len(self._sends) < CALLS_BEFORE_WAITING and not self._in_flight

    def _send_now(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._flush.set()

    def _answered(self) -> None:
        """A call on its way is answered: checks waiting for company go now if that freed a place (confirms and
        cancels keep their own window)."""
        if self._free_to_send() and self._urgent_waiting:
            self._send_now()

    async def _write(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._flush.wait()
            self._flush.clear()
            waiting, self._waiting = self._waiting, []
            self._urgent_waiting = False
            waiting = unanswered(waiting, loop.time())  # a check whose deadline passed while waiting is not sent
            if not waiting:
                continue
            if self._via == "batch":
                # Concurrent callers' checks have no order among themselves, so runs may go side by side.
                for run in by_size(waiting):
                    self._sends.add(loop.create_task(self._call(run, expire(run, loop))))
                continue
            expire(waiting, loop)  # before the writes, which may wait for gRPC's flow control
            try:
                stream = self._open()
                for item in waiting:
                    self._in_flight.append(item.future)
                    await stream.write(item.message)
            except (grpc.RpcError, asyncio.InvalidStateError) as error:
                self._break(error, waiting)

    async def _call(self, waiting: list[Waiting], timer: asyncio.TimerHandle | None) -> None:
        """One Batch call for the waiting checks; a lone check as its own unary call, which costs less.

        `timer` (set before this task runs, so no check can wait past its deadline whatever happens here)
        answers the checks whose deadline passes first.
        """
        timeout = max(0.0, max(item.deadline for item in waiting) - asyncio.get_running_loop().time())
        try:
            if len(waiting) == 1:
                call = waiting[0].call
                answers = [await getattr(self._stub, call.method)(call.request, timeout=timeout,
                                                                  metadata=self._metadata)]
            else:
                request = limit_pb2.BatchRequest(checks=[item.message for item in waiting])
                answers = list((await self._stub.Batch(request, timeout=timeout, metadata=self._metadata)).results)
            for item, answer in zip(waiting, answers, strict=True):
                if not item.future.done():
                    item.future.set_result(answer)
        except grpc.RpcError as error:
            failure = from_rpc_error(error)
            for item in waiting:
                if not item.future.done():
                    item.future.set_exception(failure)
        finally:
            if timer is not None:
                timer.cancel()
            self._sends.discard(asyncio.current_task())
            self._answered()

    def _open(self) -> Any:
        if self._stream is None:
            self._stream = self._stub.Stream(metadata=self._metadata)
            self._reader = asyncio.get_running_loop().create_task(self._read(self._stream))
        return self._stream

    async def _read(self, stream: Any) -> None:
        try:
            async for result in stream:
                future = self._in_flight.popleft()
                if not future.done():
                    future.set_result(result)
                self._answered()
            error: BaseException = Unavailable(grpc.StatusCode.UNAVAILABLE, "the stream ended")
        except grpc.RpcError as rpc_error:
            error = rpc_error
        if self._stream is stream:
            self._break(error, [])

    def _break(self, error: BaseException, waiting: list[Waiting]) -> None:
        """Every check written to a broken stream, or not yet written, has no answer: UNAVAILABLE."""
        failure = from_rpc_error(error) if isinstance(error, grpc.RpcError) else error
        if not isinstance(failure, Unavailable):
            failure = Unavailable(grpc.StatusCode.UNAVAILABLE, f"check stream failed: {failure}")
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.cancel()
        in_flight, self._in_flight = self._in_flight, collections.deque()
        for future in [*in_flight, *(item.future for item in waiting)]:
            if not future.done():
                future.set_exception(failure)

    async def close(self) -> None:
        for task in (self._writer, self._reader, *self._sends):
            if task is not None:
                task.cancel()
        if self._stream is not None:
            self._stream.cancel()
        self._break(Unavailable(grpc.StatusCode.UNAVAILABLE, "client closed"), self._waiting)
        self._waiting = []
