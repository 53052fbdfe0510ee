"""ImportGroups and ExportGroups against Redis: batches of records, each applied by one script.

An import keeps its per-stream state in Redis (which groups it named, and for
`replace` the members it named per group), so the server holds only the batch
being applied, whatever the stream's size. That state expires on its own if a
server dies mid-stream.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from imlimits_server.core.checks import GroupType
from imlimits_server.core.editions import COMMUNITY_MEMBER_LIMIT
from imlimits_server.core.errors import FailedPrecondition, InvalidArgument, PlanError, app_not_found
from imlimits_server.core.onboarding import MAX_MEMBERS_PER_RECORD, GroupRecord, ImportReport, OverLimit
from imlimits_server.store.keys import AppKeys
from imlimits_server.store.redis_store import RedisStore

# Memberships written by one script call: a few milliseconds of Redis time,
# so checks of other apps never wait long behind an import. A record larger
# than this is still applied by one call (each record is atomic).
IMPORT_BATCH_MEMBERSHIPS = 2000
# Members read by one export call, and scan slices of the final passes.
EXPORT_BATCH_MEMBERSHIPS = 20_000
SCAN_SLICE = 500
# How long a stream's state outlives its last record (a server that died mid-stream leaves it behind).
STREAM_STATE_TTL_SECONDS = 86_400

_TYPE_NAMES = {group_type.value: group_type.name for group_type in GroupType}


@dataclass(frozen=True)
class RecordRefused(Exception):
    """Record `index` of the batch given to `apply` was refused; the records before it are applied."""

    index: int
    error: PlanError


class GroupImport:
    """One ImportGroups stream: `apply` batches of records in stream order, then `finish` (or `discard`)."""

    def __init__(self, store: RedisStore, app_id: int, replace: bool) -> None:
        self._store = store
        self._app_id = app_id
        self._replace = replace
        self._keys = AppKeys(app_id)
        self._stream = uuid.uuid4().hex
        self._seen = self._keys.import_seen(self._stream)
        self.report = ImportReport()

    async def apply(self, records: Sequence[GroupRecord]) -> None:
        """Apply every record, in order; raises RecordRefused at the first refused one."""
        start, size = 0, 0
        for end, record in enumerate(records, start=1):
            size += len(record.members) + 1
            if size >= IMPORT_BATCH_MEMBERSHIPS or end == len(records):
                await self._apply_batch(records[start:end], start)
                start, size = end, 0
        if not records:  # the stream's first message may name no record: still check the app
            await self._apply_batch([], 0)

    async def _apply_batch(self, records: Sequence[GroupRecord], offset: int) -> None:
        keys = [self._keys.limits, self._keys.counts, self._keys.user_counts, self._keys.group_index, self._seen]
        args: list[Any] = ["1" if self._replace else "0", STREAM_STATE_TTL_SECONDS, len(records)]
        for record in records:
            keys += [self._keys.group(record.group_id), self._keys.members(record.group_id)]
            if self._replace:
                keys.append(self._keys.import_stage(self._stream, record.group_id))
            args += [record.group_id, record.group_type.value, record.owner, record.max_members,
                     len(record.members), *record.members]
        created, updated, added, applied, code, detail = await self._store.run_script("import_groups", keys, args)
        self.report.groups_created += int(created)
        self.report.groups_updated += int(updated)
        self.report.memberships_added += int(added)
        if code == 0:
            return
        index = offset + int(applied)
        if code == -1:
            raise RecordRefused(index, app_not_found(self._app_id))
        if code == 60016:
            raise RecordRefused(index, FailedPrecondition(f"app {self._app_id} is deactivated: nothing is imported"))
        record = records[int(applied)]
        raise RecordRefused(index, InvalidArgument(
            "type", f"group {record.group_id!r} exists as GROUP_TYPE_{_TYPE_NAMES[detail]}, the record says "
                    f"GROUP_TYPE_{record.group_type.name}"))

    async def finish(self) -> ImportReport:
        """At the stream's end: replace memberships, report what exceeds the plan, drop the stream's state."""
        if self._replace:
            async for group_id, state in self._named_groups():
                released = await self._replace_members(group_id)
                self.report.memberships_removed += released
                if released and state == "s":
                    self.report.groups_updated += 1
        await self._report_over_limit()
        await self._store.redis.execute("DEL", self._seen)
        return self.report

    async def discard(self) -> None:
        """After a refused or abandoned stream: drop its state; the records applied stay."""
        if self._replace:
            async for group_id, _ in self._named_groups():
                await self._store.redis.execute("DEL", self._keys.import_stage(self._stream, group_id))
        await self._store.redis.execute("DEL", self._seen)

    async def _named_groups(self) -> AsyncIterator[tuple[str, str]]:
        cursor = "0"
        while True:
            cursor, flat = await self._store.redis.execute("HSCAN", self._seen, cursor, "COUNT", SCAN_SLICE)
            for i in range(0, len(flat), 2):
                yield flat[i], flat[i + 1]
            if cursor == "0":
                return

    async def _replace_members(self, group_id: str) -> int:
        keys = [self._keys.group(group_id), self._keys.members(group_id),
                self._keys.import_stage(self._stream, group_id), self._keys.user_counts]
        cursor, released = "0", 0
        while True:
            cursor, batch = await self._store.run_script("replace_members", keys, [cursor, SCAN_SLICE])
            released += int(batch)
            if cursor == "0":
                return released

    async def _report_over_limit(self) -> None:
        keys = [self._keys.limits, self._keys.counts, self._keys.group_index, self._keys.user_counts]
        for what, kind in (("groups", "group_members"), ("users", "user_groups")):
            cursor = "0"
            while True:
                reply = await self._store.run_script(
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
    if not await store.redis.execute("EXISTS", keys.limits):
        raise app_not_found(app_id)
    cursor = "0"
    while True:
        cursor, group_ids = await store.redis.execute("SSCAN", keys.group_index, cursor, "COUNT", SCAN_SLICE)
        while group_ids:
            reply = await store.run_script(
                "export_groups", [keys.group_index],
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
        cursor, batch = await store.redis.execute("SSCAN", members_key, cursor, "COUNT", MAX_MEMBERS_PER_RECORD)
        pending += batch
        while len(pending) >= MAX_MEMBERS_PER_RECORD or (cursor == "0" and pending):
            yield pending[:MAX_MEMBERS_PER_RECORD]
            pending = pending[MAX_MEMBERS_PER_RECORD:]
        if cursor == "0":
            return
