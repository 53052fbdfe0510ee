"""The release worker: every server process releases the memberships of destroyed groups, whoever destroyed them.

SPEC: every membership of a destroyed group is released within 2 seconds of
the destroy being accepted, whatever its caller does and even if the replica
that accepted it dies, as long as one replica runs. So the release is not the
DestroyGroup call's job: the call only tombstones the group (one script), and
a worker in every process finds the work in Redis.

Finding the work. An app's keys share the slot of `{im:APP}`, so the script
that makes a tombstone cannot also write a deployment-wide key on Redis
Cluster. The release queue (`{imlimits}:release`, app -> number) is written
beside it, under numbers from one ever-growing sequence:

1. The destroy queues its app under a fresh number N *before* its script
   makes the tombstone, and presents N to that script.
2. A worker reads (app, Q) from the queue and releases the app's tombstones
   in batches. When it finds none left, the same script seals the app with Q
   (in the app's slot), and the worker then takes the app off the queue only
   if it is still queued under Q.
3. The destroy script refuses to make a tombstone under an N that is not above
   the app's seal (nothing changes; the destroy queues again and retries).

So a tombstone made under N is always covered: a worker that could remove the
queue entry N had read Q >= N and sealed Q before the tombstone existed, and
then the script would have refused N. A replica that dies between queueing and
its script leaves only a queue entry, which the next worker pass removes.
Queue and seal are ordinary keys: this works the same on one Redis and on a
cluster (the queue's slot is on one master; each app's batch goes to its own).

Who releases. A worker holds a short lease on the app while it releases,
renewed with every batch, so replicas do not all drain the same app; when its
holder dies, the lease lapses and the next pass of another replica takes over.
Two workers on one tombstone would still be right (each batch pops its members
atomically), so the lease is only about wasted work. The destroying process
wakes its own worker at once; the others poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid

import redis.exceptions

from imlimits_server.store.redis_store import RedisStore

log = logging.getLogger("imlimits.release")

# A pass over the queue at least this often (one HGETALL of a small hash): a
# dead replica's work is found within one interval after its lease lapses.
POLL_SECONDS = 0.1
# Renewed by every batch (about a millisecond each), so only a holder stalled
# this long loses it (another worker then joins in, which is harmless); short,
# so that a takeover after a crash leaves most of the 2 s to the release.
LEASE_MS = 300
_BACKOFF_SECONDS = (0.1, 2.0)
# Two batches sent at once: Redis starts the next while this process handles the last reply. Each is still
# one bounded script; two on one tombstone pop different members.
_BATCHES_IN_FLIGHT = 2


class ReleaseWorker:
    def __init__(self, store: RedisStore, wanted: asyncio.Event | None = None) -> None:
        """`store` may have a connection of its own (a batch then never waits behind the replies to the
        process's checks); `wanted` is the serving store's `release_wanted`, set by its destroys."""
        self._store = store
        self._wanted = store.release_wanted if wanted is None else wanted
        self._holder = uuid.uuid4().hex
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self, timeout: float) -> None:
        """Make one more whole pass (this may be the last replica), for at most `timeout` seconds."""
        if self._task is None:
            return
        self._stopping = True
        self._wanted.set()
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout)
        except TimeoutError:
            log.warning("stopping with releases unfinished: another replica takes them over")
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def release_pending(self) -> int:
        """One pass: release every queued app this worker can lease; the memberships released."""
        released = 0
        for app_id, queued in (await self._store.queued_releases()).items():
            while True:
                batches = await asyncio.gather(*(
                    self._store.release_batch(app_id, self._holder, LEASE_MS, queued)
                    for _ in range(_BATCHES_IN_FLIGHT)))
                released += sum(max(0, batch or 0) for batch in batches)
                if None in batches:
                    break  # another replica's worker holds the app
                if -1 in batches:
                    await self._store.release_done(app_id, queued)
                    break
        return released

    async def _run(self) -> None:
        backoff, failing = _BACKOFF_SECONDS[0], False
        while True:
            self._wanted.clear()
            final = self._stopping  # a whole pass begun after stop() was asked for
            try:
                await self.release_pending()
            except Exception as error:  # the worker must outlive any one failure, a bug included
                if self._stopping:
                    return
                if not isinstance(error, redis.exceptions.ConnectionError | redis.exceptions.TimeoutError):
                    log.exception("release pass failed; retrying")
                elif not failing:
                    # Quietly: the health watcher already reports an outage; one line per outage here.
                    log.warning("releases wait for redis: %s", error)
                failing = True
                await self._pause(backoff)  # stop() cuts it short
                backoff = min(backoff * 2, _BACKOFF_SECONDS[1])
                continue
            if failing:
                log.info("releases resumed")
            backoff, failing = _BACKOFF_SECONDS[0], False
            if final:
                return
            await self._pause(POLL_SECONDS)

    async def _pause(self, seconds: float) -> None:
        """Sleep until the next pass is due or someone wants one sooner (a destroy, stop())."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wanted.wait(), seconds)
