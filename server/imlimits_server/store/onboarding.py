"""ImportGroups and ExportGroups against Redis: batches of records, each applied by one script.

An import keeps its per-stream state in Redis (which groups it named, and for
`replace` the members it named per group), so the server holds only the batch
being applied, whatever the stream's size. That state expires on its own if a
server dies mid-stream.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import redis.exceptions

from imlimits_server.core.checks import GroupType
from imlimits_server.core.editions import COMMUNITY_MEMBER_LIMIT
from imlimits_server.core.errors import FailedPrecondition, InvalidArgument, PlanError, app_not_found
from imlimits_server.core.onboarding import MAX_MEMBERS_PER_RECORD, GroupRecord, ImportReport, OverLimit
from imlimits_server.store.keys import AppKeys
from imlimits_server.store.redis_store import RedisStore

# Memberships written by one script call: a few milliseconds of Redis time,
# so checks of other apps never wait long behind an import. A record larger
# than this is still applied by one call (each record is atomic).
IMPORT_BATCH_MEMBERSHIPS = 1000
# Members read by one export call, and scan slices of the final passes.
EXPORT_BATCH_MEMBERSHIPS = 10_000
SCAN_SLICE = 500
# How long a stream's state outlives its last record (a server that died mid-stream leaves it behind).
STREAM_STATE_TTL_SECONDS = 86_400

# Batches sent before the oldest one's answer is awaited.
PIPELINE_DEPTH = 4
# import_groups.lua's answer for a batch behind a refused one: nothing of it was applied.
_AFTER_A_REFUSAL = -3

# Pauses before sending an import or export step again whose answer was lost (about 3 s in all); then
# the error is the caller's.
RETRY_PAUSES_SECONDS = (0.05, 0.1, 0.2, 0.5, 1.0, 1.0)

_TYPE_NAMES = {group_type.value: group_type.name for group_type in GroupType}


async def _retried(call: Callable[..., Awaitable[Any]], *args: Any) -> Any:
    """Send a step again whose answer was lost because Redis was slow.

    Every step of an import is idempotent and keeps its totals in Redis, and
    every step of an export is a read, so a long import or export survives a
    slow moment of Redis (a connection that took too long to open included).
    A Redis that is down makes it UNAVAILABLE after about 3 seconds.
    """
    for pause in RETRY_PAUSES_SECONDS:
        try:
            return await call(*args)
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
            await asyncio.sleep(pause)
    return await call(*args)


@dataclass(frozen=True)
class RecordRefused(Exception):
    """The record at `position` in the stream (1 is the first) was refused; the records before it are applied."""

    position: int
    group_id: str
    error: PlanError


class GroupImport:
    """One ImportGroups stream: `apply` records in stream order, then `finish` (or `discard`).

    Up to PIPELINE_DEPTH batches are in flight at once, so that Redis, the
    network and the server's parsing overlap. They run in the order sent (one
    connection, one slot), and once a batch is refused the stream's state says
    so and the batches behind it change nothing: no record after a refused one
    is applied.
    """

    def __init__(self, store: RedisStore, app_id: int, replace: bool) -> None:
        self._store = store
        self._app_id = app_id
        self._replace = replace
        self._keys = AppKeys(app_id)
        self._stream = uuid.uuid4().hex
        self._seen = self._keys.import_seen(self._stream)
        self._in_flight: collections.deque[asyncio.Task[None]] = collections.deque()
        self.report = ImportReport()

    async def apply(self, records: Sequence[GroupRecord], first_position: int) -> None:
        """Send every record, in order, `first_position` being the first one's position in the stream.

        Raises RecordRefused for the first refused record found so far; call
        `settle` to learn about the batches still in flight.
        """
        start, size = 0, 0
        for end, record in enumerate(records, start=1):
            size += len(record.members) + 1
            if size >= IMPORT_BATCH_MEMBERSHIPS or end == len(records):
                await self._send(records[start:end], first_position + start)
                start, size = end, 0
        if not records:  # the stream's first message may name no record: still check the app
            await self._send([], first_position)

    async def settle(self) -> None:
        """Wait for every batch in flight; raises RecordRefused for the first refused record."""
        while self._in_flight:
            await self._in_flight.popleft()

    async def _send(self, records: Sequence[GroupRecord], first_position: int) -> None:
        self._in_flight.append(asyncio.ensure_future(self._apply_batch(records, first_position)))
        # Let the new batch reach the connection now, so that batches go out in stream order.
        await asyncio.sleep(0)
        if len(self._in_flight) > PIPELINE_DEPTH:
            await self._in_flight.popleft()

    async def _apply_batch(self, records: Sequence[GroupRecord], first_position: int) -> None:
        keys = [self._keys.limits, self._keys.counts, self._keys.user_counts, self._keys.group_index, self._seen]
        args: list[Any] = ["1" if self._replace else "0", STREAM_STATE_TTL_SECONDS, len(records)]
        for record in records:
            keys += [self._keys.group(record.group_id), self._keys.members(record.group_id)]
            if self._replace:
                keys.append(self._keys.import_stage(self._stream, record.group_id))
            args += [record.group_id, record.group_type.value, record.owner, record.max_members,
                     len(record.members), *record.members]
        _, _, _, applied, code, detail = await self._run("import_groups", keys, args)
        if code in (0, _AFTER_A_REFUSAL):
            return
        position = first_position + int(applied)
        group_id = records[int(applied)].group_id if int(applied) < len(records) else ""
        if code == -1:
            raise RecordRefused(position, group_id, app_not_found(self._app_id))
        if code == 60016:
            raise RecordRefused(position, group_id,
                                FailedPrecondition(f"app {self._app_id} is deactivated: nothing is imported"))
        record = records[int(applied)]
        raise RecordRefused(position, group_id, InvalidArgument(
            "type", f"group {record.group_id!r} exists as GROUP_TYPE_{_TYPE_NAMES[detail]}, the record says "
                    f"GROUP_TYPE_{record.group_type.name}"))

    async def finish(self) -> ImportReport:
        """At the stream's end: replace memberships, report what exceeds the plan, drop the stream's state."""
        await self.settle()
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
        """After a refused or abandoned stream: drop its state; the records applied stay."""
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
                self._keys.import_stage(self._stream, group_id), self._keys.user_counts, self._seen]
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
