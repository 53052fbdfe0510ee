"""ImportGroups and ExportGroups against Redis: a stream's records in bounded steps, each one script call.

An import keeps its per-stream state in Redis (which groups it named, and for
`replace` the members it named per group), so the server holds only the steps
being applied, whatever the stream's size. That state expires on its own if a
server dies mid-stream.

A step is several whole records of about IMPORT_BATCH_MEMBERSHIPS memberships
in all, or one slice of a record larger than that, so no script call holds
Redis for more than a few milliseconds, whatever the records' size. Steps are
numbered and the script applies each once, in order: a step resent after a
lost reply learns from Redis what its first attempt did.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import redis.exceptions

from imlimits_server.core.checks import GroupType
from imlimits_server.core.editions import COMMUNITY_MEMBER_LIMIT
from imlimits_server.core.errors import FailedPrecondition, InvalidArgument, PlanError, app_not_found
from imlimits_server.core.onboarding import MAX_MEMBERS_PER_RECORD, GroupRecord, ImportReport, OverLimit
from imlimits_server.store.keys import AppKeys
from imlimits_server.store.redis_store import RedisStore

# Memberships written by one script call: about a millisecond of Redis time
# (a membership costs Redis about 3 us), so checks of other apps never wait
# long behind an import. A record larger than this is applied in slices of
# this size (see import_groups.lua for how it stays one record).
IMPORT_BATCH_MEMBERSHIPS = 300
# Members read by one export call, and scan slices of the final passes.
EXPORT_BATCH_MEMBERSHIPS = 10_000
SCAN_SLICE = 500
# How long a stream's state outlives its last record (a server that died mid-stream leaves it behind).
STREAM_STATE_TTL_SECONDS = 86_400

# Steps sent before the oldest one's answer is awaited.
PIPELINE_DEPTH = 8
# import_groups.lua's answers that apply nothing: a step behind a refused one, and a step that came before
# the one ahead of it (resent steps racing on a new connection).
_AFTER_A_REFUSAL = -3
_OUT_OF_ORDER = -4

# Pauses before sending an import or export step again whose answer was lost (about 3 s in all); then
# the error is the caller's.
RETRY_PAUSES_SECONDS = (0.05, 0.1, 0.2, 0.5, 1.0, 1.0)

_TYPE_NAMES = {group_type.value: group_type.name for group_type in GroupType}
_LOST = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)

log = logging.getLogger("imlimits.onboarding")
_T = TypeVar("_T")
# Work the server finishes whatever the caller does (see `in_background`).
_background: set[asyncio.Task[Any]] = set()


def in_background(work: Coroutine[Any, Any, _T]) -> asyncio.Task[_T]:
    """Run `work` as a task of its own, which a cancelled caller does not cancel: await it through shield."""
    task = asyncio.ensure_future(work)
    _background.add(task)
    task.add_done_callback(_finished)
    return task


def _finished(task: asyncio.Task[Any]) -> None:
    _background.discard(task)
    # Its caller may have gone: a failure (not a refusal, which is the caller's answer) is logged here.
    if not task.cancelled() and (error := task.exception()) is not None and not isinstance(error, RecordRefused):
        log.warning("import work the server finished for a caller ended with an error: %s", error)


async def _retried(call: Callable[..., Awaitable[Any]], *args: Any) -> Any:
    """Send again a read, or a step that learns from Redis what an attempt did, whose answer was lost.

    A long import or export survives a slow moment of Redis (a connection
    that took too long to open included). A Redis that is down makes it
    UNAVAILABLE after about 3 seconds.
    """
    for pause in RETRY_PAUSES_SECONDS:
        try:
            return await call(*args)
        except _LOST:
            await asyncio.sleep(pause)
    return await call(*args)


@dataclass(frozen=True)
class RecordRefused(Exception):
    """The record at `position` in the stream (1 is the first) was refused; the records before it are applied."""

    position: int
    group_id: str
    error: PlanError


@dataclass(frozen=True)
class _Piece:
    """A record, or one slice of it ('w' whole, 'f' its first slice, 'c' a slice continuing it)."""

    part: str
    position: int
    record: GroupRecord
    members: Sequence[str]
    token: str


class GroupImport:
    """One ImportGroups stream: `apply` records in stream order, then `finish` (or `discard`).

    Up to PIPELINE_DEPTH steps are in flight at once, so that Redis, the
    network and the server's parsing overlap. They run in the order sent (one
    connection, one slot), and once a step is refused the stream's state says
    so and the steps behind it change nothing: no record after a refused one
    is applied. A record the server began to apply is applied whole, even if
    the caller goes away meanwhile.
    """

    def __init__(self, store: RedisStore, app_id: int, replace: bool) -> None:
        self._store = store
        self._app_id = app_id
        self._replace = replace
        self._keys = AppKeys(app_id)
        self._stream = uuid.uuid4().hex
        self._seen = self._keys.import_seen(self._stream)
        self._steps = 0
        self._in_flight: collections.deque[asyncio.Task[None]] = collections.deque()
        self._applying: asyncio.Task[None] | None = None
        self._resending = 0  # steps waiting to be sent again behind the step before them
        self.report = ImportReport()

    async def apply(self, records: Sequence[GroupRecord], first_position: int) -> None:
        """Send every record, in order, `first_position` being the first one's position in the stream.

        Raises RecordRefused for the first refused record found so far; call
        `settle` to learn about the steps still in flight. The records are
        sent by a task of their own, so a cancelled caller leaves none half sent.
        """
        self._applying = in_background(self._send_records(records, first_position))
        await asyncio.shield(self._applying)

    async def _send_records(self, records: Sequence[GroupRecord], first_position: int) -> None:
        pieces: list[_Piece] = []
        size = 0
        for position, record in enumerate(records, start=first_position):
            if len(record.members) + 1 > IMPORT_BATCH_MEMBERSHIPS:
                if pieces:
                    await self._send(pieces)
                    pieces, size = [], 0
                token = uuid.uuid4().hex[:12]
                for start in range(0, len(record.members), IMPORT_BATCH_MEMBERSHIPS):
                    await self._send([_Piece("c" if start else "f", position, record,
                                             record.members[start:start + IMPORT_BATCH_MEMBERSHIPS], token)])
                continue
            pieces.append(_Piece("w", position, record, record.members, ""))
            size += len(record.members) + 1
            if size >= IMPORT_BATCH_MEMBERSHIPS:
                await self._send(pieces)
                pieces, size = [], 0
        if pieces or not records:  # the stream's first message may name no record: still check the app
            await self._send(pieces, first_position)

    async def settle(self) -> None:
        """Wait for every step in flight; raises RecordRefused for the first refused record."""
        if self._applying is not None:
            await asyncio.shield(self._applying)
        while self._in_flight:
            await self._in_flight.popleft()

    async def _send(self, pieces: list[_Piece], position: int = 0) -> None:
        """One step; `position` names where an empty step (a message without records) stands in the stream."""
        if self._resending:
            # Steps sent now would only overtake the ones being sent again, and be sent again themselves.
            await self.settle()
        self._steps += 1
        previous = self._in_flight[-1] if self._in_flight else None
        self._in_flight.append(asyncio.ensure_future(
            self._apply_step(self._steps, pieces, pieces[0].position if pieces else position, previous)))
        # Let the new step reach the connection now, so that steps go out in stream order.
        await asyncio.sleep(0)
        # The first step alone: its script may be new to Redis, and the EVAL that then loads it would let the
        # steps behind it (EVALSHA) run first.
        if len(self._in_flight) > PIPELINE_DEPTH or self._steps == 1:
            await self._in_flight.popleft()

    async def _apply_step(self, step: int, pieces: list[_Piece], first_position: int,
                          previous: asyncio.Task[None] | None) -> None:
        keys = [self._keys.limits, self._keys.counts, self._keys.user_counts, self._keys.group_index, self._seen]
        args: list[Any] = ["1" if self._replace else "0", STREAM_STATE_TTL_SECONDS, step, len(pieces)]
        for piece in pieces:
            group_id = piece.record.group_id
            keys += [self._keys.group(group_id), self._keys.members(group_id)]
            if self._replace:
                keys.append(self._keys.import_stage(self._stream, group_id))
            continuing = piece.part == "c"
            args += [piece.part, group_id, piece.record.group_type.value, "" if continuing else piece.record.owner,
                     0 if continuing else piece.record.max_members, piece.token, len(piece.members),
                     *piece.members]
        pauses, overtaken = iter(RETRY_PAUSES_SECONDS), iter(RETRY_PAUSES_SECONDS)
        while True:
            try:
                applied, code, detail = await self._store.run_script("import_groups", keys, args)
            except _LOST:
                pause = next(pauses, None)
                if pause is None:
                    raise
                await asyncio.sleep(pause)
            else:
                if code != _OUT_OF_ORDER:
                    break
                # It overtook the step before it (resent after a lost reply, or loaded with the script):
                # that one is settled first (applied, refused or failed), then this one is sent again.
                if previous is None or next(overtaken, None) is None:
                    raise redis.exceptions.ConnectionError(f"import step {step} kept running before step {step - 1}")
            if previous is not None and not previous.done():
                self._resending += 1
                try:
                    await asyncio.wait([previous])
                finally:
                    self._resending -= 1
        if code in (0, _AFTER_A_REFUSAL):
            return
        refused = pieces[int(applied)] if int(applied) < len(pieces) else None
        position = refused.position if refused else first_position
        group_id = refused.record.group_id if refused else ""
        if code == -1:
            raise RecordRefused(position, group_id, app_not_found(self._app_id))
        if code == 60016:
            raise RecordRefused(position, group_id,
                                FailedPrecondition(f"app {self._app_id} is deactivated: nothing is imported"))
        assert refused is not None
        record = refused.record
        raise RecordRefused(position, group_id, InvalidArgument(
            "type", f"group {record.group_id!r} exists as GROUP_TYPE_{_TYPE_NAMES[detail]}, the record says "
                    f"GROUP_TYPE_{record.group_type.name}"))

    async def finish(self) -> ImportReport:
        """At the stream's end: replace memberships, report what exceeds the plan, drop the stream's state.

        Raises RecordRefused, with the stream's state dropped, if a step still in flight was refused.
        """
        try:
            await self.settle()
        except BaseException:
            await self.discard()
            raise
        if self._replace:
            async for group_id in self._named_groups():
                await self._replace_members(group_id)
        created, updated, added, removed = await self._run_command(
            "HMGET", self._seen, "\0created", "\0updated", "\0added", "\0removed")
        self.report.groups_created, self.report.groups_updated = int(created or 0), int(updated or 0)
        self.report.memberships_added, self.report.memberships_removed = int(added or 0), int(removed or 0)
        await self._report_over_limit()
        await self._run_command("DEL", self._seen)
        return self.report

    async def discard(self) -> None:
        """After a refused or cut stream: finish the record being applied, then drop the stream's state.

        What was applied stays; nothing is replaced.
        """
        if self._applying is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._applying)
        while self._in_flight:
            with contextlib.suppress(Exception):
                await self._in_flight.popleft()
        if self._replace:
            async for group_id in self._named_groups():
                await self._store.redis.execute("DEL", self._keys.import_stage(self._stream, group_id))
        await self._store.redis.execute("DEL", self._seen)

    async def _run(self, name: str, keys: list[str], args: list[Any]) -> Any:
        return await _retried(self._store.run_script, name, keys, args)

    async def _run_command(self, *command: Any) -> Any:
        return await _retried(self._store.redis.execute, *command)

    async def _named_groups(self) -> AsyncIterator[str]:
        cursor = "0"
        while True:
            cursor, flat = await self._run_command("HSCAN", self._seen, cursor, "COUNT", SCAN_SLICE)
            for field in flat[::2]:
                if not field.startswith("\0"):  # the stream's totals
                    yield field
            if cursor == "0":
                return

    async def _replace_members(self, group_id: str) -> None:
        keys = [self._keys.group(group_id), self._keys.members(group_id),
                self._keys.import_stage(self._stream, group_id), self._keys.user_counts, self._seen,
                self._keys.held_members(group_id), self._keys.counts]
        cursor = "0"
        while True:
            cursor = await self._run("replace_members", keys, [cursor, SCAN_SLICE, group_id])
            if cursor == "0":
                return

    async def _report_over_limit(self) -> None:
        keys = [self._keys.limits, self._keys.counts, self._keys.group_index, self._keys.user_counts]
        for what, kind in (("groups", "group_members"), ("users", "user_groups")):
            cursor = "0"
            while True:
                reply = await self._run(
                    "over_limit", keys, [what, cursor, SCAN_SLICE, self._keys.group(""), self._keys.members(""),
                                         COMMUNITY_MEMBER_LIMIT])
                first_slice = cursor == "0"
                cursor = reply[0]
                for i in range(1, len(reply), 3):
                    subject = reply[i]
                    entry_kind = "av_rooms" if first_slice and what == "groups" and subject == "" else kind
                    self.report.note_over_limit(OverLimit(entry_kind, subject, int(reply[i + 1]), int(reply[i + 2])))
                if cursor == "0":
                    break


async def export_groups(store: RedisStore, app_id: int) -> AsyncIterator[GroupRecord]:
    """Every group of the app, in records of at most MAX_MEMBERS_PER_RECORD members.

    Not a snapshot: checks running meanwhile may show or not. Stop traffic
    to the app for an exact copy.
    """
    keys = AppKeys(app_id)
    if not await _retried(store.redis.execute, "EXISTS", keys.limits):
        raise app_not_found(app_id)
    cursor = "0"
    while True:
        cursor, group_ids = await _retried(store.redis.execute, "SSCAN", keys.group_index, cursor, "COUNT",
                                           SCAN_SLICE)
        while group_ids:
            reply = await _retried(
                store.run_script, "export_groups", [keys.group_index],
                [keys.group(""), keys.members(""), EXPORT_BATCH_MEMBERSHIPS, MAX_MEMBERS_PER_RECORD, *group_ids])
            group_ids = group_ids[int(reply[0]):]
            for group_id, type_value, owner, max_members, whole, *members in reply[1:]:
                header = (group_id, GroupType(type_value), owner, int(max_members))
                if whole == "1":
                    yield GroupRecord(*header[:3], members, header[3])
                else:
                    async for slice_ in _member_slices(store, keys.members(group_id)):
                        yield GroupRecord(*header[:3], slice_, header[3])
        if cursor == "0":
            return


async def _member_slices(store: RedisStore, members_key: str) -> AsyncIterator[list[str]]:
    cursor, pending = "0", []
    while True:
        cursor, batch = await _retried(store.redis.execute, "SSCAN", members_key, cursor, "COUNT",
                                       MAX_MEMBERS_PER_RECORD)
        pending += batch
        while len(pending) >= MAX_MEMBERS_PER_RECORD or (cursor == "0" and pending):
            yield pending[:MAX_MEMBERS_PER_RECORD]
            pending = pending[MAX_MEMBERS_PER_RECORD:]
        if cursor == "0":
            return
