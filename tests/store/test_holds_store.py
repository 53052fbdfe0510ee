"""Holds in the store (docs/holds.md) on a real Redis: what costs a round trip, what the release queue
must never miss, and the end of a hold judged before any worker has run.

Tests that must see no release worker at all use a private redis-server (`own_redis`); the others
share the session's Redis, where another test's server may run a worker too, so they assert outcomes.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from harness import ClusterProcess, RedisProcess
from imlimits_server.core import plans
from imlimits_server.core.checks import CancelHold, ConfirmHold, CreateGroup, GroupType, JoinGroup, LeaveGroup
from imlimits_server.core.holds import HOLD_OUTCOME_KEEP_SECONDS
from imlimits_server.release_worker import ReleaseWorker
from imlimits_server.store.connections import Connection, connect
from imlimits_server.store.keys import RELEASE_DUE_KEY, AppKeys
from imlimits_server.store.redis_store import RedisStore

_app_ids = itertools.count(9_300_000_001)
BATCH = 50


class CountingConnection:
    """A real connection that counts the commands sent through it: round trips, not a stand-in for Redis."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.sent: list[str] = []

    async def execute(self, *args: Any) -> Any:
        self.sent.append(str(args[0]))
        return await self.connection.execute(*args)

    async def close(self) -> None:
        await self.connection.close()


def _run(url: str, test: Callable[[RedisStore, CountingConnection], Awaitable[None]]) -> None:
    async def main() -> None:
        counting = CountingConnection(connect(url, timeout=5))
        store = RedisStore(counting, destroy_batch=BATCH)
        try:
            await test(store, counting)
        finally:
            await counting.close()

    asyncio.run(main())


async def _new_app(store: RedisStore) -> int:
    app_id = next(_app_ids)
    await store.commit_app("", plans.create_app(app_id, datetime.now(UTC)))
    await store.redis.execute("HSET", AppKeys(app_id).limits, "ug", 100, "cm", 1)
    return app_id


def _join(app_id: int, group_id: str, users: list[str], hold: int = 30) -> JoinGroup:
    return JoinGroup(app_id, group_id, tuple(users), False, hold)


def _create(app_id: int, group_id: str, members: list[str] = (), hold: int = 0) -> CreateGroup:  # type: ignore[assignment]
    return CreateGroup(app_id, group_id, GroupType.COMMUNITY, "owner", tuple(members), 0, False, hold)


async def _nonce(store: RedisStore, app_id: int, hold_id: str) -> str:
    return (await store.hold_ids()).read(app_id, hold_id)


async def _until(condition: Callable[[], Awaitable[bool]], step: Callable[[], Awaitable[object]],
                 seconds: float = 30) -> float:
    started = time.monotonic()
    while not await condition():
        assert time.monotonic() < started + seconds, "never happened"
        await step()
        await asyncio.sleep(0.01)
    return time.monotonic() - started


async def _members(store: RedisStore, app_id: int, group_id: str) -> int:
    return int(await store.redis.execute("SCARD", AppKeys(app_id).members(group_id)))


def test_a_held_check_confirm_and_cancel_cost_one_round_trip_each(redis_server: RedisProcess | ClusterProcess) -> None:
    """SPEC: "A held check costs one Redis round trip like any check; ConfirmHold and CancelHold one each."
    The first hold of an app in a process queues the app first (once, not per check)."""

    async def test(store: RedisStore, counting: CountingConnection) -> None:
        for app_id in (await _new_app(store), await _new_app(store)):
            await store.decide(_create(app_id, "g"))
            await store.decide(_join(app_id, "g", ["warm"]))  # the first app loads every script into Redis
            warm = await store.decide(_join(app_id, "g", ["warm-2"]))
            await store.decide(ConfirmHold(app_id, await _nonce(store, app_id, warm.hold_id)))
            await store.decide(CancelHold(app_id, await _nonce(store, app_id, warm.hold_id)))
        app_id = await _new_app(store)
        await store.decide(_create(app_id, "g"))
        counting.sent.clear()
        first = await store.decide(_join(app_id, "g", ["a"]))
        assert counting.sent == ["EVALSHA", "EVALSHA"]  # queue the app, then the check
        for user in ("b", "c"):
            counting.sent.clear()
            answer = await store.decide(_join(app_id, "g", [user]))
            assert answer.allowed and counting.sent == ["EVALSHA"]
        counting.sent.clear()
        assert (await store.decide(ConfirmHold(app_id, await _nonce(store, app_id, first.hold_id)))).confirmed
        assert counting.sent == ["EVALSHA"]
        counting.sent.clear()
        assert (await store.decide(CancelHold(app_id, await _nonce(store, app_id, answer.hold_id)))).released == 1
        assert counting.sent == ["EVALSHA"]

    _run(redis_server.url, test)


def test_confirm_after_the_end_answers_false_before_any_release(own_redis: RedisProcess) -> None:
    """SPEC: "A ConfirmHold after that moment answers false even if the release has not run yet." No worker
    runs on this Redis, so the hold's items are still counted when confirm answers."""

    async def test(store: RedisStore, counting: CountingConnection) -> None:
        app_id = await _new_app(store)
        await store.decide(_create(app_id, "g"))
        answer = await store.decide(_join(app_id, "g", ["a"], hold=1))
        nonce = await _nonce(store, app_id, answer.hold_id)
        await asyncio.sleep(1.05)
        assert await _members(store, app_id, "g") == 2  # not released: no worker has run
        confirmed = await store.decide(ConfirmHold(app_id, nonce))
        assert not confirmed.confirmed and confirmed.known
        assert (await store.decide(CancelHold(app_id, nonce))).released == 0  # the workers' to release
        assert await _members(store, app_id, "g") == 2
        worker = ReleaseWorker(store)
        await _until(lambda: _members_are(store, app_id, "g", 1), worker.release_pending)
        assert not (await store.decide(ConfirmHold(app_id, nonce))).confirmed

    _run(own_redis.url, test)


async def _members_are(store: RedisStore, app_id: int, group_id: str, count: int) -> bool:
    return await _members(store, app_id, group_id) == count


def test_an_outcome_is_kept_ten_minutes_then_forgotten(own_redis: RedisProcess) -> None:
    """Decision (docs/holds.md): a hold's outcome is kept 10 minutes after it ends; then ConfirmHold answers
    false, saying the outcome is no longer known."""

    async def test(store: RedisStore, counting: CountingConnection) -> None:
        app_id = await _new_app(store)
        await store.decide(_create(app_id, "g"))
        answer = await store.decide(_join(app_id, "g", ["a"]))
        nonce = await _nonce(store, app_id, answer.hold_id)
        key = AppKeys(app_id).hold(nonce)
        assert int(await store.redis.execute("PTTL", key)) == -1  # an open hold never expires by itself
        assert (await store.decide(ConfirmHold(app_id, nonce))).confirmed
        kept = int(await store.redis.execute("PTTL", key))
        assert HOLD_OUTCOME_KEEP_SECONDS * 1000 - 60_000 < kept <= HOLD_OUTCOME_KEEP_SECONDS * 1000
        await store.redis.execute("PEXPIRE", key, 1)  # ten minutes later
        await asyncio.sleep(0.01)
        forgotten = await store.decide(ConfirmHold(app_id, nonce))
        assert (forgotten.confirmed, forgotten.known) == (False, False)
        assert "no longer kept" in forgotten.info()
        assert await _members(store, app_id, "g") == 2  # what was confirmed stays confirmed

    _run(own_redis.url, test)


def test_a_short_hold_after_a_long_one_is_released_on_time(own_redis: RedisProcess) -> None:
    """A worker that found only a 1-hour hold puts the app off until that hold ends; a 1-second hold taken
    afterwards must make the app due again, or it would stay counted for an hour."""

    async def test(store: RedisStore, counting: CountingConnection) -> None:
        app_id = await _new_app(store)
        await store.decide(_create(app_id, "g"))
        await store.decide(_join(app_id, "g", ["long"], hold=3600))
        worker = ReleaseWorker(store)
        await worker.release_pending()
        due = await store.redis.execute("ZSCORE", RELEASE_DUE_KEY, str(app_id))
        assert float(due) > time.time() * 1000 + 3_000_000  # put off for about an hour
        counting.sent.clear()
        await store.decide(_join(app_id, "g", ["short"], hold=1))
        assert counting.sent == ["EVALSHA", "EVALSHA", "EVALSHA"]  # refused, queued at once, held
        await _until(lambda: _members_are(store, app_id, "g", 2), worker.release_pending, seconds=10)
        assert await store.redis.execute("HGET", AppKeys(app_id).user_counts, "long") == "1"

    _run(own_redis.url, test)


def test_work_left_behind_a_schedule_is_released_at_once(own_redis: RedisProcess) -> None:
    """A destroy of a big group, and the cancel of a big held group, leave tombstones while the app is put off
    until a long hold ends: each must make the app due at once."""

    async def test(store: RedisStore, counting: CountingConnection) -> None:
        app_id = await _new_app(store)
        worker = ReleaseWorker(store)
        await store.decide(_create(app_id, "plain", [f"p{i}" for i in range(BATCH + 10)]))
        held = await store.decide(_create(app_id, "held", [f"h{i}" for i in range(BATCH + 10)], hold=3600))
        await store.decide(_create(app_id, "long"))
        await store.decide(_join(app_id, "long", ["x"], hold=3600))
        await worker.release_pending()  # nothing due: the app is put off for an hour
        assert (await store.destroy_group(app_id, "plain")).released == BATCH + 11
        cancelled = await store.decide(CancelHold(app_id, await _nonce(store, app_id, held.hold_id)))
        assert cancelled.released == BATCH + 11
        # One pass of the due list finds both tombstones now.
        await worker.release_pending()
        counts = await store.redis.execute("HGETALL", AppKeys(app_id).user_counts)
        assert dict(zip(counts[::2], counts[1::2], strict=True)) == {"owner": "1", "x": "1"}

    _run(own_redis.url, test)


def test_a_held_check_retried_with_its_request_id_answers_its_first_hold(
        redis_server: RedisProcess | ClusterProcess) -> None:
    """Decision (docs/holds.md): with a request_id, a retry after a lost answer holds nothing twice."""

    async def test(store: RedisStore, counting: CountingConnection) -> None:
        app_id = await _new_app(store)
        await store.decide(_create(app_id, "g"))
        join = JoinGroup(app_id, "g", ("a", "b"), False, 30, "retry-1")
        first = await store.decide(join)
        again = await store.decide(join)
        assert first.hold_opened and not again.hold_opened and first.hold_id == again.hold_id
        assert await _members(store, app_id, "g") == 3
        nonce = await _nonce(store, app_id, first.hold_id)
        assert (await store.decide(CancelHold(app_id, nonce))).released == 2
        assert (await store.decide(join)).hold_id == first.hold_id  # still the same, now cancelled, hold
        assert await _members(store, app_id, "g") == 1
        assert not (await store.decide(ConfirmHold(app_id, nonce))).confirmed

    _run(redis_server.url, test)


def test_a_leave_then_a_rejoin_under_a_new_hold_is_not_the_old_holds(
        redis_server: RedisProcess | ClusterProcess) -> None:
    async def test(store: RedisStore, counting: CountingConnection) -> None:
        app_id = await _new_app(store)
        await store.decide(_create(app_id, "g"))
        old = await store.decide(_join(app_id, "g", ["a"]))
        await store.decide(LeaveGroup(app_id, "g", ("a",)))
        new = await store.decide(_join(app_id, "g", ["a"]))
        assert (await store.decide(CancelHold(app_id, await _nonce(store, app_id, old.hold_id)))).released == 0
        assert (await store.decide(ConfirmHold(app_id, await _nonce(store, app_id, new.hold_id)))).confirmed
        assert await _members(store, app_id, "g") == 2
        usage = await store.usage(app_id, "a", "g")
        assert (usage.user_groups, usage.held_group_members, usage.held.memberships) == (1, 0, 0)

    _run(redis_server.url, test)
