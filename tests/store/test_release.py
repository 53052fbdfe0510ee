"""Releasing destroyed groups' memberships (release_worker.py) on a real Redis: the queue, the seal, the lease.

Another test's server may run a release worker on the same Redis at the same
time: assertions are on outcomes (counts, queue, tombstones), never on which
worker released what.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from harness import ClusterProcess, RedisProcess
from imlimits_server.core import plans
from imlimits_server.core.checks import CreateGroup, GroupType, JoinGroup
from imlimits_server.release_worker import ReleaseWorker
from imlimits_server.store.connections import connect
from imlimits_server.store.keys import RELEASE_QUEUE_KEY, AppKeys
from imlimits_server.store.redis_store import RedisStore

_app_ids = itertools.count(9_100_000_001)
# Small batches make thousands of memberships take many batches, as 100,000 do with the production batch.
BATCH = 50


async def _new_app(store: RedisStore) -> int:
    app_id = next(_app_ids)
    state = plans.create_app(app_id, datetime.now(UTC))
    await store.commit_app("", state)
    await store.redis.execute("HSET", AppKeys(app_id).limits, "ug", 100, "cm", 1)  # room for every membership below
    return app_id


async def _group(store: RedisStore, app_id: int, group_id: str, users: list[str]) -> None:
    users = list(dict.fromkeys(users))  # as the service passes them: repeats count once
    assert (await store.decide(CreateGroup(app_id, group_id, GroupType.COMMUNITY, "", (), 0, False))).allowed
    for start in range(0, len(users), 500):
        assert (await store.decide(JoinGroup(app_id, group_id, tuple(users[start:start + 500]), False))).allowed


async def _counts(store: RedisStore, app_id: int) -> dict[str, int]:
    flat = await store.redis.execute("HGETALL", AppKeys(app_id).user_counts)
    return {flat[i]: int(flat[i + 1]) for i in range(0, len(flat), 2)}


async def _until(condition: Callable[[], Awaitable[bool]], step: Callable[[], Awaitable[object]]) -> None:
    deadline = time.monotonic() + 30
    while not await condition():
        assert time.monotonic() < deadline, "the release never finished"
        await step()
        await asyncio.sleep(0.01)


def _run(redis_server: RedisProcess | ClusterProcess,
         test: Callable[[RedisStore, ReleaseWorker], Awaitable[None]]) -> None:
    async def main() -> None:
        store = RedisStore(connect(redis_server.url, timeout=5), destroy_batch=BATCH)
        try:
            await test(store, ReleaseWorker(store))
        finally:
            await store.redis.close()

    asyncio.run(main())


def test_a_dead_holders_release_is_taken_over_when_its_lease_lapses(
        redis_server: RedisProcess | ClusterProcess) -> None:
    async def test(store: RedisStore, worker: ReleaseWorker) -> None:
        app_id = await _new_app(store)
        keys = AppKeys(app_id)
        await _group(store, app_id, "big", [f"u{i}" for i in range(1200)])
        await _group(store, app_id, "kept", ["u0", "u1"])
        # A replica that accepted the destroy and died holding the lease, before its first batch.
        await store.redis.execute("SET", keys.release_lease, "a-dead-replica")
        assert (await store.destroy_group(app_id, "big")).released == 1200
        await worker.release_pending()  # nobody releases under a live lease
        assert len(await _counts(store, app_id)) == 1200
        await store.redis.execute("PEXPIRE", keys.release_lease, 1)  # the lease lapses
        await _until(lambda: _released(store, app_id), worker.release_pending)
        assert await _counts(store, app_id) == {"u0": 1, "u1": 1}
        verification = await store.verify(app_id, repair=False)
        assert (verification.drifts, verification.pending_groups, verification.pending_releases) == ((), 0, 0)

    _run(redis_server, test)


async def _released(store: RedisStore, app_id: int) -> bool:
    queued = await store.redis.execute("HEXISTS", RELEASE_QUEUE_KEY, str(app_id))
    return not queued and not await store.redis.execute("EXISTS", AppKeys(app_id).draining)


def test_a_tombstone_is_never_made_under_a_sealed_queue_number(redis_server: RedisProcess | ClusterProcess) -> None:
    """The race the seal closes: a worker found the app empty under number Q and may take it off the queue."""

    async def test(store: RedisStore, worker: ReleaseWorker) -> None:
        app_id = await _new_app(store)
        keys = AppKeys(app_id)
        await _group(store, app_id, "big", [f"u{i}" for i in range(BATCH + 1)])
        queued = await store.queue_release(app_id)
        assert (await store.release_batch(app_id, "a-worker", 500, queued)).state == "sealed"  # nothing left
        await store.release_done(app_id, queued)  # (or another test's server did it first)
        refused = await store._run(
            "destroy_group", [keys.limits, keys.counts, keys.user_counts, keys.group("big"), keys.members("big"),
                              keys.group_index, keys.draining, keys.tombstone("t"), keys.release_sealed,
                              keys.held_members("big"), keys.release_schedule],
            [BATCH, "big", queued])
        assert refused == [0, BATCH + 1, -1]  # "queue first": nothing changed
        assert (await store.usage(app_id, None, "big")).group_members == BATCH + 1
        # The store queues under a fresh number and destroys; the app stays queued until released.
        assert (await store.destroy_group(app_id, "big")).released == BATCH + 1
        await _until(lambda: _released(store, app_id), worker.release_pending)
        assert await _counts(store, app_id) == {}

    _run(redis_server, test)


def test_tombstones_nobody_queued_are_reported_then_released_by_repair(
        redis_server: RedisProcess | ClusterProcess) -> None:
    """What a server older than the release workers left behind: a tombstone, listed, counted, never queued."""

    async def test(store: RedisStore, worker: ReleaseWorker) -> None:
        app_id = await _new_app(store)
        keys = AppKeys(app_id)
        await _group(store, app_id, "kept", ["alice", "bob"])
        await store.redis.execute("SADD", keys.tombstone("old"), "alice", "carol")
        await store.redis.execute("SADD", keys.draining, keys.tombstone("old"))
        await store.redis.execute("HINCRBY", keys.user_counts, "alice", 1)
        await store.redis.execute("HINCRBY", keys.user_counts, "carol", 1)
        report = await store.verify(app_id, repair=False)
        assert (report.users, report.drifts, report.pending_groups, report.pending_releases) == (2, (), 1, 2)
        await worker.release_pending()
        assert (await store.verify(app_id, repair=False)).pending_releases == 2  # not queued: nobody found it
        repaired = await store.verify(app_id, repair=True)
        assert (repaired.drifts, repaired.pending_releases) == ((), 2)
        await _until(lambda: _released(store, app_id), worker.release_pending)
        assert await _counts(store, app_id) == {"alice": 1, "bob": 1}

    _run(redis_server, test)


@settings(max_examples=8, deadline=None)
@given(sizes=st.lists(st.integers(0, 3 * BATCH), min_size=1, max_size=5), workers=st.integers(1, 3))
def test_concurrent_destroys_and_workers_release_each_membership_once(
        redis_server: RedisProcess | ClusterProcess, sizes: list[int], workers: int) -> None:
    """Destroys of overlapping groups race several workers that poll without pause: every answer is the
    group's own size, and every count ends at exactly the user's remaining groups."""

    async def test(store: RedisStore, _: ReleaseWorker) -> None:
        app_id = await _new_app(store)
        for index, size in enumerate(sizes):
            await _group(store, app_id, f"g{index}", [f"u{(index * 37 + k) % (2 * BATCH)}" for k in range(size)])
        await _group(store, app_id, "kept", ["u0", "u1", "u2"])
        done = asyncio.Event()
        racing = [ReleaseWorker(store) for _ in range(workers)]

        async def poll(worker: ReleaseWorker) -> None:
            while not done.is_set():
                await worker.release_pending()

        pollers = [asyncio.create_task(poll(worker)) for worker in racing]
        answers = await asyncio.gather(*(store.destroy_group(app_id, f"g{i}") for i in range(len(sizes))))
        done.set()
        await asyncio.gather(*pollers)
        assert [answer.released for answer in answers] == [min(size, 2 * BATCH) for size in sizes]
        await _until(lambda: _released(store, app_id), racing[0].release_pending)
        assert await _counts(store, app_id) == {"u0": 1, "u1": 1, "u2": 1}

    _run(redis_server, test)


def test_an_app_queued_again_stays_queued_when_the_worker_finishes_its_older_number(
        redis_server: RedisProcess | ClusterProcess) -> None:
    """A worker read the app under Q and found it done; a destroy queued it again meanwhile: the entry stays."""

    async def test(store: RedisStore, worker: ReleaseWorker) -> None:
        app_id = await _new_app(store)
        read = await store.queue_release(app_id)
        again = await store.queue_release(app_id)
        assert not await store.release_done(app_id, read)
        assert await store.redis.execute("HGET", RELEASE_QUEUE_KEY, str(app_id)) == str(again)
        assert await store.release_done(app_id, again)
        assert not await store.redis.execute("HEXISTS", RELEASE_QUEUE_KEY, str(app_id))

    _run(redis_server, test)


def test_the_worker_seals_the_number_it_read(own_redis: RedisProcess) -> None:
    """Through the worker itself: once it has taken the app off the queue under Q, a destroy presenting Q
    (queued before the worker read it, its script run after) must be refused, or its tombstone is orphaned."""

    async def test(store: RedisStore, worker: ReleaseWorker) -> None:
        app_id = await _new_app(store)
        keys = AppKeys(app_id)
        await _group(store, app_id, "big", [f"u{i}" for i in range(BATCH + 1)])
        queued = await store.queue_release(app_id)
        await worker.release_pending()  # reads (app, queued), finds nothing, seals, takes the app off the queue
        assert not await store.redis.execute("HEXISTS", RELEASE_QUEUE_KEY, str(app_id))
        refused = await store._run(
            "destroy_group", [keys.limits, keys.counts, keys.user_counts, keys.group("big"), keys.members("big"),
                              keys.group_index, keys.draining, keys.tombstone("t"), keys.release_sealed,
                              keys.held_members("big"), keys.release_schedule],
            [BATCH, "big", queued])
        assert refused == [0, BATCH + 1, -1]

    _run(own_redis, test)
