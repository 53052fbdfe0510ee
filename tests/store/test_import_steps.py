"""import_groups.lua's steps on a real Redis: each applied once and in order, whatever order attempts arrive in.

After a lost reply the server sends a step again, and the first attempt may
still run (it was in Redis's socket buffer) after the new one, or after steps
behind it: a step that arrives before the one ahead of it applies nothing.
"""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime
from typing import Any

from harness import ClusterProcess, RedisProcess
from imlimits_server.core import plans
from imlimits_server.store.connections import connect
from imlimits_server.store.keys import AppKeys
from imlimits_server.store.redis_store import RedisStore

_app_ids = itertools.count(9_200_000_001)


def _step(keys: AppKeys, stream: str, step: int, group_id: str, members: list[str]) -> tuple[list[str], list[Any]]:
    return ([keys.limits, keys.counts, keys.user_counts, keys.group_index, keys.import_seen(stream),
             keys.group(group_id), keys.members(group_id)],
            ["0", 3600, step, 1, "w", group_id, "work", "", 0, "", len(members), *members])


def test_a_step_that_overtakes_the_one_before_it_applies_nothing(redis_server: RedisProcess | ClusterProcess) -> None:
    async def main() -> None:
        store = RedisStore(connect(redis_server.url, timeout=5))
        try:
            app_id = next(_app_ids)
            await store.commit_app("", plans.create_app(app_id, datetime.now(UTC)))
            keys = AppKeys(app_id)
            first, second = _step(keys, "s", 1, "g1", ["a"]), _step(keys, "s", 2, "g2", ["a", "b"])
            assert await store.run_script("import_groups", *second) == [0, -4, ""]
            assert not await store.redis.execute("EXISTS", keys.group("g2"))
            assert await store.run_script("import_groups", *first) == [1, 0, ""]
            assert await store.run_script("import_groups", *second) == [1, 0, ""]
            # Sent again, each is known as applied and changes nothing.
            assert await store.run_script("import_groups", *first) == [1, 0, ""]
            assert await store.run_script("import_groups", *second) == [1, 0, ""]
            assert await store.redis.execute("HGET", keys.user_counts, "a") == "2"
            assert await store.redis.execute("HGET", keys.import_seen("s"), "\0added") == "3"
        finally:
            await store.redis.close()

    asyncio.run(main())
