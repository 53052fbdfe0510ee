"""Plan commits against a real redis-server: optimistic versions and remembered request ids.

Two writers that read the same version are driven directly against the
commit script, so the interleaving a lost update needs happens on every run
instead of only when a race happens to line up.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from harness import RedisProcess
from imlimits_server.core import plans
from imlimits_server.core.editions import Edition
from imlimits_server.core.plans import PlanRequest
from imlimits_server.store.keys import AppKeys
from imlimits_server.store.pipelined import PipelinedConnection
from imlimits_server.store.redis_store import RedisStore

TZ = ZoneInfo("Asia/Shanghai")
DAY_SECONDS = 86_400


@pytest.fixture(scope="module")
def single_redis() -> Iterator[RedisProcess]:
    server = RedisProcess().start()
    yield server
    server.stop()


def at(month: int, day: int) -> datetime:
    return datetime(2019, month, day, tzinfo=TZ)


async def _two_writers_from_one_read(url: str, app_id: int) -> tuple[bool, bool, int]:
    store = RedisStore(PipelinedConnection(url, timeout=5))
    try:
        created = plans.create_app(app_id, at(1, 2))
        assert await store.commit_app("", created)
        pro = plans.upgrade(created, PlanRequest(edition=Edition.PRO), at(2, 10), TZ)
        assert await store.commit_app((await store.load_app(app_id)).version, pro)
        read = await store.load_app(app_id)
        assert read.state is not None
        # Both writers saw the same version and each makes a different change of the same item.
        first = plans.change_plan(read.state, PlanRequest(user_group_limit=600), at(3, 1), TZ)
        second = plans.change_plan(read.state, PlanRequest(user_group_limit=700), at(3, 1), TZ)
        first_written = await store.commit_app(read.version, first)
        second_written = await store.commit_app(read.version, second)
        stored = (await store.load_app(app_id)).state
        assert stored is not None
        return first_written, second_written, stored.plan.user_group_limit
    finally:
        await store.redis.close()


def test_a_commit_from_a_stale_version_is_refused(single_redis: RedisProcess) -> None:
    """The second writer read before the first wrote: it must not land, or the month's change is used twice."""
    first, second, user_group_limit = asyncio.run(_two_writers_from_one_read(single_redis.url, 3_000_000_001))
    assert (first, second) == (True, False)
    assert user_group_limit == 600  # the first change stands; the second did not overwrite it


def test_a_failed_commit_writes_nothing(single_redis: RedisProcess) -> None:
    """A refused commit leaves the limits the checks read exactly as the winning commit wrote them."""
    app_id = 3_000_000_002
    asyncio.run(_two_writers_from_one_read(single_redis.url, app_id))
    limits = single_redis.client().hgetall(AppKeys(app_id).limits)
    assert (limits["ug"], limits["ver"]) == ("600", "3")


async def _commit_with_request_id(url: str, app_id: int, request_id: str) -> None:
    store = RedisStore(PipelinedConnection(url, timeout=5))
    try:
        assert await store.commit_app("", plans.create_app(app_id, at(1, 2)), request_id, "fingerprint:answer")
    finally:
        await store.redis.close()


def test_a_request_id_is_remembered_at_least_24_hours(single_redis: RedisProcess) -> None:
    """SPEC section 3: request ids are remembered for at least 24 h, so a next-day retry is still a replay."""
    app_id = 3_000_000_003
    asyncio.run(_commit_with_request_id(single_redis.url, app_id, "retry-me"))
    key = AppKeys(app_id).request("retry-me")
    redis_client = single_redis.client()
    assert redis_client.get(key) == "fingerprint:answer"
    ttl = redis_client.ttl(key)
    assert ttl >= DAY_SECONDS, f"the stored answer expires after {ttl} s"
    assert ttl <= 7 * DAY_SECONDS  # remembered, not kept forever: ids must not pile up in Redis
