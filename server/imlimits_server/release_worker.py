"""The release worker: every server process releases what others left to release, whoever left it.

Two kinds of work, found the same way:
- destroyed groups: every membership of a destroyed group is released
  within 2 seconds of the destroy being accepted (SPEC section 2);
- holds (SPEC section 6, docs/holds.md): a hold neither confirmed nor
  cancelled when it ends is released within 2 seconds of its end.
Both whatever the caller does and even if the replica that accepted the call
dies, as long as one replica runs. So the release is not the call's job: the
call only leaves a tombstone or an open hold in the app's keys (one script),
and a worker in every process finds the work in Redis.

Finding the work. An app's keys share the slot of `{im:APP}`, so the script
that makes a tombstone or a hold cannot also write a deployment-wide key on
Redis Cluster. The release queue (`{imlimits}:release`, app -> number) and
its due list (`{imlimits}:release-due`, app -> when to look, Redis ms) are
written beside it, under numbers from one ever-growing sequence:

1. A destroy queues its app under a fresh number N, due at once, *before* its
   script makes the tombstone, and presents N to that script. A held check
   presents the number its process last queued the app under (queueing it
   first only when it has none), so a busy app's holds cost one round trip.
2. A worker reads (app, Q) for each app due now and works on the app in
   bounded batches. When only holds that have not ended are left, the same
   script records the app's schedule (Q, the first end) in the app's slot,
   and the worker makes the app due again at that end, if it is still queued
   under Q. When nothing is left, the script seals the app with Q, and the
   worker takes the app off the queue, again only if it is still queued under Q.
3. A script that would leave work under a presented number N refuses (nothing
   changes; the caller queues again and retries) unless a worker is bound to
   look in time: N is above the app's seal, and N is newer than its schedule
   (then the app is due at once) or the schedule comes no later than the
   work is due (`release_covered` in common.lua).

So work made under N is always found in time: a worker could only have
taken the app off the queue, or put off looking at it, under a Q it read
from the queue, after finding the app empty (sealed) or with nothing due
before the schedule, and the script then refuses N unless N is newer than
that Q (so queued after the worker read it, which made the app due at once)
or the work is due no sooner. A replica that dies between queueing and its
script leaves only a queue entry, which the next worker pass removes.
Queue, due list, seal and schedule are ordinary keys: this works the same on
one Redis and on a cluster (the queue's slot is on one master; each app's
batch goes to its own). Ends are judged by the app's master's clock; the due
list by the queue's master's, so on a cluster the workers look as late as
the two clocks differ (NTP keeps that to milliseconds).

Who releases. A worker holds a short lease on the app while it releases,
renewed with every batch, so replicas do not all drain the same app; when its
holder dies, the lease lapses and the next pass of another replica takes over.
Two workers on one tombstone or hold would still be right (each batch takes
its members atomically, and a hold is released once), so the lease is only
about wasted work. The destroying process wakes its own worker at once; the
others poll the due list.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid

import redis.exceptions

from imlimits_server.metrics import HOLDS_BY_EVENT
from imlimits_server.store.redis_store import RedisStore

log = logging.getLogger("imlimits.release")

# A pass over the due list at least this often (one small script): work that falls due, or a dead
# replica's work, is found within one interval (after its lease lapses).
POLL_SECONDS = 0.1
# Renewed by every batch (about a millisecond each), so only a holder stalled
# this long loses it (another worker then joins in, which is harmless); short,
# so that a takeover after a crash leaves most of the 2 s to the release.
LEASE_MS = 300
# After a failed pass. Short at most: a worker asleep longer than a lease while work is due would
# miss the 2 s bound (a burst of slow Redis replies must not leave it sleeping).
_BACKOFF_SECONDS = (0.05, 0.5)
# Apps taken from the due list per pass, earliest first; the rest wait for the next pass.
_APPS_PER_PASS = 100
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
        """One pass: work on every app due now that this worker can lease; the memberships released."""
        released = 0
        for app_id, queued in (await self._store.due_releases(_APPS_PER_PASS)).items():
            while True:
                steps = await asyncio.gather(*(
                    self._store.release_batch(app_id, self._holder, LEASE_MS, queued)
                    for _ in range(_BATCHES_IN_FLIGHT)))
                released += sum(step.released for step in steps)
                HOLDS_BY_EVENT["expired"].inc(sum(step.expired for step in steps))
                states = {step.state for step in steps}
                if "busy" in states:
                    break  # another replica's worker holds the app
                if "sealed" in states:
                    await self._store.release_done(app_id, queued)
                    break
                if "more" not in states:  # only holds that have not ended are left
                    await self._store.release_later(app_id, queued, min(step.next_due for step in steps))
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
