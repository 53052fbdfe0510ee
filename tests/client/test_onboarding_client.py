"""The client library's import_groups and export_groups, sync and asyncio, against the real server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest

from harness import RedisProcess, ServerProcess
from imlimits_client import (
    AsyncClient,
    Client,
    GroupRecord,
    GroupType,
    ImportResult,
    InvalidArgument,
    NotFound,
    OverLimit,
    PermissionDenied,
    Unavailable,
)


def test_import_then_export(server: ServerProcess, app_id: int) -> None:
    with Client(server.target, admin_timeout=10) as client:
        client.admin.create_app(app_id)
        records = [GroupRecord("big", GroupType.WORK, "boss", tuple(f"u{i}" for i in range(25))),
                   GroupRecord("room", GroupType.AVCHATROOM, "host", ("u1",))]
        result = client.admin.import_groups(app_id, records)
        assert result == ImportResult(2, 0, 27, 0, (OverLimit("group_members", "big", 20, 26),), 1)
        exported = {r.group_id: (r.type, r.owner, set(r.members)) for r in client.admin.export_groups(app_id)}
        assert exported == {"big": (GroupType.WORK, "boss", {"boss", *records[0].members}),
                            "room": (GroupType.AVCHATROOM, "host", {"u1"})}
        with pytest.raises(NotFound):
            list(client.admin.export_groups(app_id + 10**9))
        with pytest.raises(InvalidArgument, match=r"record 1 .*members\[0\]"):
            client.admin.import_groups(app_id, [GroupRecord("g", members=("x" * 33,))])


def test_a_failing_record_source_cancels_the_stream_and_replaces_nothing(server: ServerProcess,
                                                                         app_id: int) -> None:
    with Client(server.target, admin_timeout=10) as client:
        client.admin.create_app(app_id)
        client.check.create_group(app_id, "g", owner="o", members=["a", "b"])

        def source() -> Iterator[GroupRecord]:
            yield GroupRecord("g", GroupType.WORK, "o", ("a",))
            raise ValueError("line 2: not JSON")

        with pytest.raises(ValueError, match="line 2"):
            client.admin.import_groups(app_id, source(), replace=True)
        assert client.check.usage(app_id, group_id="g").group_members == 3  # b was not released
        assert client.check.verify_usage(app_id).drifts == ()


def test_async_import_and_export(server: ServerProcess, app_id: int) -> None:
    async def records() -> AsyncIterator[GroupRecord]:
        for i in range(3):
            yield GroupRecord(f"g{i}", GroupType.PUBLIC, "", (f"u{i}", "shared"))

    async def scenario() -> tuple[ImportResult, list[GroupRecord]]:
        async with AsyncClient(server.target, admin_timeout=10) as client:
            await client.admin.create_app(app_id)
            result = await client.admin.import_groups(app_id, records())
            return result, [record async for record in client.admin.export_groups(app_id)]

    result, exported = asyncio.run(scenario())
    assert (result.groups_created, result.memberships_added, result.over_limit_total) == (3, 6, 0)
    assert sorted(record.group_id for record in exported) == ["g0", "g1", "g2"]


def test_import_and_export_need_an_admin_token(own_redis: RedisProcess, app_id: int) -> None:
    admin, check = "admin-token-000000000001", "check-token-000000000001"
    process = ServerProcess("--redis-url", own_redis.url, "--redis-timeout", "1",
                            env={"IMLIMITS_ADMIN_TOKENS": admin, "IMLIMITS_CHECK_TOKENS": check}).start()
    try:
        with Client(process.target, token=admin, admin_timeout=10) as client:
            client.admin.create_app(app_id)
            client.admin.import_groups(app_id, [GroupRecord("g")])
            assert [record.group_id for record in client.admin.export_groups(app_id)] == ["g"]
        with Client(process.target, token=check, admin_timeout=10) as client:
            with pytest.raises(PermissionDenied):
                client.admin.import_groups(app_id, [GroupRecord("h")])
            with pytest.raises(PermissionDenied):
                list(client.admin.export_groups(app_id))
    finally:
        process.stop()


def test_an_import_or_export_without_redis_is_unavailable(own_redis: RedisProcess, app_id: int) -> None:
    process = ServerProcess("--redis-url", own_redis.url, "--redis-timeout", "1").start()
    try:
        with Client(process.target, admin_timeout=10) as client:
            client.admin.create_app(app_id)
            own_redis.stop()
            with pytest.raises(Unavailable):
                client.admin.import_groups(app_id, [GroupRecord("g", members=("a",))], timeout=30)
            with pytest.raises(Unavailable):
                list(client.admin.export_groups(app_id, timeout=30))
    finally:
        process.stop()
