"""The auto-pipelining Redis connection against a real redis-server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from harness import RedisProcess, free_port
from imlimits_server.core import plans
from imlimits_server.store.pipelined import ConnectionLost, PipelinedConnection, ReplyError, Timeout
from imlimits_server.store.redis_store import RedisStore


@pytest.fixture(scope="module")
def single_redis() -> Iterator[RedisProcess]:
    """These test the single-node transport, whatever IMLIMITS_TEST_REDIS says."""
    server = RedisProcess().start()
    yield server
    server.stop()




def test_replies_match_their_commands_under_concurrency(single_redis: RedisProcess) -> None:
    async def run() -> None:
        connection = PipelinedConnection(single_redis.url, timeout=5)
        keys = [f"pipelined:{i}" for i in range(2000)]
        await asyncio.gather(*(connection.execute("SET", key, f"value-{i}") for i, key in enumerate(keys)))
        values = await asyncio.gather(*(connection.execute("GET", key) for key in keys))
        assert values == [f"value-{i}" for i in range(2000)]
        await connection.close()

    asyncio.run(run())


def test_error_replies_raise_and_do_not_disturb_others(single_redis: RedisProcess) -> None:
    async def run() -> None:
        connection = PipelinedConnection(single_redis.url, timeout=5)
        await connection.execute("SET", "pipelined:text", "x")
        results = await asyncio.gather(connection.execute("INCR", "pipelined:text"), connection.execute("PING"),
                                       return_exceptions=True)
        assert isinstance(results[0], ReplyError) and results[1] == "PONG"
        await connection.close()

    asyncio.run(run())


def test_a_stalled_redis_times_out_then_recovers(own_redis: RedisProcess) -> None:
    async def run() -> None:
        connection = PipelinedConnection(own_redis.url, timeout=0.2)
        stalled_connection = await connection.execute("CLIENT", "ID")
        admin = own_redis.client()
        admin.client_pause(1500)
        started = time.monotonic()
        results = await asyncio.gather(*(connection.execute("PING") for _ in range(50)), return_exceptions=True)
        assert all(isinstance(result, Timeout) for result in results)
        assert time.monotonic() - started < 1.0  # the watchdog, not the pause, ended the wait
        await asyncio.sleep(1.5)  # the pause ends: Redis itself is fine again
        assert await connection.execute("PING") == "PONG"
        # A timed-out connection may hold replies out of step with its commands: it was dropped, and a new
        # one was opened by itself.
        assert await connection.execute("CLIENT", "ID") != stalled_connection
        assert str(stalled_connection) not in [client["id"] for client in admin.client_list()]
        await connection.close()

    asyncio.run(run())


def test_nothing_listening_fails_fast() -> None:
    async def run() -> None:
        connection = PipelinedConnection(f"redis://127.0.0.1:{free_port()}/0", timeout=0.5)
        started = time.monotonic()
        with pytest.raises(ConnectionLost):
            await connection.execute("PING")
        assert time.monotonic() - started < 0.5

    asyncio.run(run())


def test_password_and_database_from_the_url(tmp_path: Path) -> None:
    server = RedisProcess(data_dir=tmp_path)
    server.start()
    try:
        server.client().config_set("requirepass", "s3cret")

        async def run() -> None:
            wrong = PipelinedConnection(f"redis://:nope@127.0.0.1:{server.port}/0", timeout=1)
            with pytest.raises(ConnectionLost, match="AUTH"):
                await wrong.execute("PING")
            right = PipelinedConnection(f"redis://:s3cret@127.0.0.1:{server.port}/3", timeout=1)
            await right.execute("SET", "where", "db3")
            assert " db=3 " in await right.execute("CLIENT", "INFO")
            await right.close()
            other = PipelinedConnection(f"redis://default:s3cret@127.0.0.1:{server.port}/0", timeout=1)
            assert await other.execute("GET", "where") is None
            await other.close()

        asyncio.run(run())
    finally:
        server.stop()


def test_scripts_are_loaded_again_after_a_flush(single_redis: RedisProcess) -> None:
    async def run() -> None:
        store = RedisStore(PipelinedConnection(single_redis.url, timeout=5))
        await store.commit_app("", plans.create_app(8_000_000_001, datetime.now(UTC)))
        await store.redis.execute("SCRIPT", "FLUSH")
        assert (await store.load_app(8_000_000_001)).state is not None
        await store.redis.close()

    asyncio.run(run())


def test_a_slow_redis_cannot_pile_up_commands(own_redis: RedisProcess) -> None:
    async def run() -> None:
        connection = PipelinedConnection(own_redis.url, timeout=2, max_pending=50)
        await connection.execute("PING")
        own_redis.client().client_pause(500)
        results = await asyncio.gather(*(connection.execute("PING") for _ in range(80)), return_exceptions=True)
        refused = [r for r in results if isinstance(r, ConnectionLost)]
        assert len(refused) == 30 and "refusing more" in str(refused[0])
        assert results.count("PONG") == 50  # those already waiting were answered after the pause
        await connection.close()

    asyncio.run(run())
