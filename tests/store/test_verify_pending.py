"""VerifyUsage's repair counts the memberships of destroyed groups that wait for the release workers.

Issue 22, item 8: recount_user.lua without its loop over the tombstones
survived. A repair of a user with real drift and a pending release then
ends one too low, and the release later takes the count below the truth.
"""

from __future__ import annotations

import asyncio

from harness import ClusterProcess, RedisProcess
from imlimits_server.store.connections import connect
from imlimits_server.store.keys import AppKeys
from imlimits_server.store.redis_store import RedisStore
from store.test_release import BATCH, _counts, _group, _new_app


def test_a_repair_with_real_drift_counts_a_pending_release(redis_server: RedisProcess | ClusterProcess) -> None:
    async def main() -> None:
        store = RedisStore(connect(redis_server.url, timeout=5), destroy_batch=BATCH)
        try:
            app_id = await _new_app(store)
            keys = AppKeys(app_id)
            await _group(store, app_id, "big", ["drifted", *(f"u{i}" for i in range(BATCH + 10))])
            await _group(store, app_id, "kept", ["drifted"])
            # No worker may release "big" during the test: its lease is held by a replica that never comes.
            await store.redis.execute("SET", keys.release_lease, "a-stalled-replica", "PX", 60_000)
            assert (await store.destroy_group(app_id, "big")).released == BATCH + 11
            await store.redis.execute("HINCRBY", keys.user_counts, "drifted", 5)  # real drift: 2 recorded as 7
            verification = await store.verify(app_id, repair=True)
            drifts = [(drift.subject, drift.recorded, drift.actual) for drift in verification.drifts]
            assert drifts == [("user_groups of drifted", 7, 2)]
            assert verification.pending_releases == BATCH + 11
            # Counted until released: "kept", and "big" whose release is pending.
            assert (await _counts(store, app_id))["drifted"] == 2
        finally:
            await store.redis.close()

    asyncio.run(main())
