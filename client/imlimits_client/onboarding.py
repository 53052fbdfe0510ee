"""ImportGroups and ExportGroups for the sync and asyncio clients: batching records into stream messages.

Streams carry no deadline by default (an import of millions of memberships
takes minutes) and are never retried: a re-run is safe, but only the caller
can replay its records.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator

from imlimits.v1 import limit_pb2
from imlimits_client.types import GroupRecord

# Memberships per stream message: well under gRPC's default 4 MiB message bound
# even with 32-byte user ids, and large enough that per-message costs vanish.
MESSAGE_MEMBERSHIPS = 5000


def requests(app_id: int, records: Iterable[GroupRecord],
             replace: bool) -> Iterator[limit_pb2.ImportGroupsRequest]:
    batch: list[limit_pb2.GroupRecord] = []
    size = 0
    for record in records:
        batch.append(record.to_proto())
        size += len(record.members) + 1
        if size >= MESSAGE_MEMBERSHIPS:
            yield limit_pb2.ImportGroupsRequest(app_id=app_id, groups=batch, replace=replace)
            batch, size = [], 0
    # Sent even when empty, so that an empty import still learns whether the app exists.
    yield limit_pb2.ImportGroupsRequest(app_id=app_id, groups=batch, replace=replace)


async def async_requests(app_id: int, records: AsyncIterable[GroupRecord],
                         replace: bool) -> AsyncIterator[limit_pb2.ImportGroupsRequest]:
    batch: list[limit_pb2.GroupRecord] = []
    size = 0
    async for record in records:
        batch.append(record.to_proto())
        size += len(record.members) + 1
        if size >= MESSAGE_MEMBERSHIPS:
            yield limit_pb2.ImportGroupsRequest(app_id=app_id, groups=batch, replace=replace)
            batch, size = [], 0
    yield limit_pb2.ImportGroupsRequest(app_id=app_id, groups=batch, replace=replace)


class Guarded:
    """Wraps the caller's records: what they raise cancels the stream and is kept for the caller.

    Ending the stream instead would let the server finish the import (and, with
    replace, release the members of records never sent); cancelling makes it
    keep the records applied so far and replace nothing.
    """

    def __init__(self, records: Iterable[GroupRecord]) -> None:
        self._records = records
        self._started = threading.Event()
        self._cancel: Callable[[], object] = lambda: None
        self.failure: Exception | None = None

    def start(self, cancel: Callable[[], object]) -> None:
        self._cancel = cancel
        self._started.set()

    def __iter__(self) -> Iterator[GroupRecord]:
        try:
            yield from self._records
        except Exception as failure:
            self.failure = failure
            self._started.wait()
            self._cancel()


class AsyncGuarded:
    """Guarded, for the asyncio client (records may be a plain or an async iterable)."""

    def __init__(self, records: Iterable[GroupRecord] | AsyncIterable[GroupRecord]) -> None:
        self._records = records
        self._cancel: Callable[[], object] = lambda: None
        self.failure: Exception | None = None

    def start(self, cancel: Callable[[], object]) -> None:
        self._cancel = cancel

    async def __aiter__(self) -> AsyncIterator[GroupRecord]:
        try:
            if isinstance(self._records, AsyncIterable):
                async for record in self._records:
                    yield record
            else:
                for record in self._records:
                    yield record
        except Exception as failure:
            self.failure = failure
            self._cancel()
