"""ImportGroups and ExportGroups: stream messages become validated records, and reports become answers.

Errors name the record's position in the stream (1 is the first record of
the first message), so an operator can find the line to fix and re-run: the
records before it stay applied and an import applied twice changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence

from imlimits.v1 import limit_pb2
from imlimits_server.core.errors import FailedPrecondition, InvalidArgument, NotFound, PlanError
from imlimits_server.core.onboarding import MAX_MEMBERS_PER_RECORD, GroupRecord, ImportReport
from imlimits_server.service import convert, validation
from imlimits_server.store.onboarding import GroupImport, RecordRefused, export_groups, in_background
from imlimits_server.store.redis_store import RedisStore

# How long a replacing import waits, once its messages end, for word that the call was cancelled instead.
CUT_SIGNAL_SECONDS = 0.1


def at_record(position: int, group_id: str, error: PlanError) -> PlanError:
    """The same refusal, naming where in the stream it happened."""
    where = f"record {position} (group {group_id!r})" if group_id else f"record {position}"
    if isinstance(error, InvalidArgument):
        return InvalidArgument(f"{where}: {error.field}", error.rule)
    if isinstance(error, FailedPrecondition):
        return FailedPrecondition(f"{where}: {error.message}", error.violation)
    if isinstance(error, NotFound):
        return NotFound(f"{where}: {error.message}")
    return error


def record(message: limit_pb2.GroupRecord) -> GroupRecord:
    group_id = validation.group_id("group_id", message.group_id)
    group_type = convert.group_type(message.type)
    owner = validation.user_id("owner", message.owner, allow_empty=True)
    if len(message.members) > MAX_MEMBERS_PER_RECORD:
        raise InvalidArgument("members", f"at most {MAX_MEMBERS_PER_RECORD} per record, got {len(message.members)}; "
                                         "continue the group in further records")
    members = list(message.members)
    for index, member in enumerate(members):
        validation.user_id(f"members[{index}]", member)
    return GroupRecord(group_id, group_type, owner, members, message.max_members)


async def import_groups(store: RedisStore, messages: AsyncIterator[limit_pb2.ImportGroupsRequest],
                        cut: Callable[[], bool] = lambda: False) -> ImportReport:
    """Apply the stream; once it is received whole, the server applies it whole whatever the caller does.

    A stream cut before its end (cancelled, past its deadline, a refused or
    malformed record) replaces nothing: the records the server began to apply
    are applied whole and stay, and its state is dropped. `cut` tells whether
    the call was cancelled or is past its deadline.
    """
    stream: GroupImport | None = None
    app_id, replace, position = 0, False, 0
    try:
        async for number, message in _numbered(messages):
            if stream is None:
                app_id, replace = validation.app_id(message.app_id), message.replace
                stream = GroupImport(store, app_id, replace)
            elif message.app_id != app_id:
                await stream.settle()  # a refusal of an earlier record comes first
                raise InvalidArgument("app_id", f"message {number} (from record {position + 1}) names app "
                                                f"{message.app_id}, the stream's first message {app_id}: "
                                                "every message of a stream names the same app")
            elif message.replace != replace:
                await stream.settle()
                raise InvalidArgument("replace", f"message {number} (from record {position + 1}) says "
                                                 f"{str(message.replace).lower()}, the stream's first message "
                                                 f"{str(replace).lower()}: every message says the same")
            records, refusal = _valid_prefix(message.groups, position)
            await stream.apply(records, position + 1)
            if refusal is not None:
                await stream.settle()  # a refusal of an earlier record comes first
                raise refusal
            position += len(records)
        if replace:
            # gRPC ends a cancelled call's messages as if the stream had ended, and tells of the cancellation
            # a moment later (by cancelling this task): a replace waits for that moment before it starts.
            await asyncio.sleep(CUT_SIGNAL_SECONDS)
        if cut():
            raise asyncio.CancelledError("the caller cancelled the stream before its end")
    except RecordRefused as refused:
        await _discard(stream)
        raise at_record(refused.position, refused.group_id, refused.error) from None
    except BaseException:
        await _discard(stream)
        raise
    if stream is None:
        return ImportReport()
    # The stream is received whole: from here the server finishes it, in a task the caller cannot cancel.
    try:
        return await asyncio.shield(in_background(stream.finish()))
    except RecordRefused as refused:
        raise at_record(refused.position, refused.group_id, refused.error) from None


async def _discard(stream: GroupImport | None) -> None:
    if stream is None:
        return
    # The stream's state expires on its own; the refusal is what the caller needs to see.
    with contextlib.suppress(Exception):
        await asyncio.shield(in_background(stream.discard()))


async def _numbered(messages: AsyncIterator[limit_pb2.ImportGroupsRequest],
                    ) -> AsyncIterator[tuple[int, limit_pb2.ImportGroupsRequest]]:
    number = 0
    async for message in messages:
        number += 1
        yield number, message


def _valid_prefix(messages: Sequence[limit_pb2.GroupRecord], position: int,
                  ) -> tuple[list[GroupRecord], PlanError | None]:
    """The records up to the first malformed one, and its refusal: those before it are still applied."""
    records: list[GroupRecord] = []
    for message in messages:
        try:
            records.append(record(message))
        except InvalidArgument as error:
            return records, at_record(position + len(records) + 1, message.group_id, error)
    return records, None


def import_response(report: ImportReport) -> limit_pb2.ImportGroupsResponse:
    return limit_pb2.ImportGroupsResponse(
        groups_created=report.groups_created, groups_updated=report.groups_updated,
        memberships_added=report.memberships_added, memberships_removed=report.memberships_removed,
        over_limit=[limit_pb2.OverLimit(kind=entry.kind, subject=entry.subject, limit=entry.limit,
                                        current=entry.current) for entry in report.over_limit],
        over_limit_total=report.over_limit_total)


async def exported(store: RedisStore, app_id: int) -> AsyncIterator[limit_pb2.GroupRecord]:
    async for group in export_groups(store, app_id):
        yield limit_pb2.GroupRecord(group_id=group.group_id, type=convert.group_type_number(group.group_type),
                                    owner=group.owner, members=group.members, max_members=group.max_members)
