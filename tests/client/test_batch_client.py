"""The client's batch and its coalescing of concurrent single checks, against the real server."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator

import pytest

from harness import RedisProcess, ServerProcess
from imlimits_client import (
    AsyncClient,
    CheckResult,
    Client,
    GroupType,
    ImCode,
    InvalidArgument,
    NotFound,
    Released,
    Unavailable,
    checks,
)
from imlimits_client import calls as client_calls
from imlimits_client.batching import BatchAnswer, CoalesceVia

UNKNOWN_APP = 1_399_999_997


@pytest.fixture
def client(server: ServerProcess) -> Iterator[Client]:
    with Client(server.target, check_timeout=10, admin_timeout=10) as connected:
        yield connected


def test_batch_answers_each_check_as_its_own_call(client: Client, app_id: int) -> None:
    client.admin.create_app(app_id)
    results = client.check.batch([
        checks.create_group(app_id, "team", owner="alice", members=["bob"]),
        checks.join_group(app_id, "team", ["carol", "dave"]),
        checks.join_group(UNKNOWN_APP, "team", ["erin"]),
        checks.join_group(app_id, "", ["erin"]),
        checks.leave_group(app_id, "team", ["bob"]),
        checks.create_room(app_id, "live", owner="alice"),
        checks.destroy_group(app_id, "team"),
    ])
    assert [type(result) for result in results] == [CheckResult, CheckResult, NotFound, InvalidArgument, Released,
                                                    CheckResult, Released]
    assert results[0].allowed and results[1].allowed and results[5].allowed  # type: ignore[union-attr]
    assert str(results[3]) == "group_id: must not be empty"
    assert results[4].released == 1 and results[6].released == 3  # type: ignore[union-attr]


def test_batch_refuses_what_is_no_batch(client: Client, app_id: int) -> None:
    with pytest.raises(ValueError, match="1 to 1000 checks"):
        client.check.batch([])
    with pytest.raises(ValueError, match="GetUsage is not a check"):
        client.check.batch([client_calls.usage(app_id, None, None)])


@pytest.mark.parametrize(("via", "coalesce_max"), [("batch", 100), ("batch", 7), ("stream", 100), ("stream", 7)])
def test_coalesced_checks_from_many_tasks_are_exact(server: ServerProcess, app_id: int, via: CoalesceVia,
                                                    coalesce_max: int) -> None:
    """60 tasks join a TRIAL group (20 members, the owner included) through one coalescing client."""

    async def run() -> Counter[int]:
        async with AsyncClient(server.target, check_timeout=10, admin_timeout=10, coalesce=True,
                               coalesce_max=coalesce_max, coalesce_via=via) as client:
            await client.admin.create_app(app_id)
            assert (await client.check.create_group(app_id, "g", GroupType.PUBLIC, owner="owner")).allowed
            results = await asyncio.gather(*(client.check.join_group(app_id, "g", [f"user-{i}"]) for i in range(60)))
            with pytest.raises(NotFound):
                await client.check.join_group(UNKNOWN_APP, "g", ["x"])
            with pytest.raises(InvalidArgument, match="users: must name at least one user"):
                await client.check.join_group(app_id, "g", [])
            assert (await client.check.leave_group(app_id, "g", ["user-0", "nobody"])).released <= 1
            batched = await client.check.batch([checks.join_group(app_id, "g", ["late"])])
            assert isinstance(batched[0], CheckResult)
            return Counter(result.code for result in results)

    assert asyncio.run(run()) == Counter({ImCode.OK: 19, ImCode.GROUP_MEMBER_LIMIT: 41})


class TestOutage:
    @pytest.fixture
    def outage(self, own_redis: RedisProcess, app_id: int) -> Iterator[ServerProcess]:
        process = ServerProcess("--redis-url", own_redis.url, "--redis-timeout", "0.2").start()
        with Client(process.target) as client:
            client.admin.create_app(app_id)
            client.check.create_group(app_id, "g", owner="alice")
        own_redis.stop()
        yield process
        process.stop()

    def test_batch_keeps_the_policy_per_check(self, outage: ServerProcess, app_id: int) -> None:
        with Client(outage.target, check_timeout=2, on_unavailable="allow") as client:
            results = client.check.batch([checks.join_group(app_id, "g", ["bob"]),
                                          checks.leave_group(app_id, "g", ["alice"]),
                                          checks.join_group(app_id, "", ["bob"])])
        assert isinstance(results[0], CheckResult) and results[0].degraded and results[0].allowed
        assert isinstance(results[1], Unavailable)  # a release is no check: the policy does not answer it
        assert isinstance(results[2], InvalidArgument)  # known without Redis

    @pytest.mark.parametrize(("policy", "via"), [("deny", "stream"), ("allow", "batch"), ("raise", "stream")])
    def test_coalesced_checks_keep_the_policy(self, outage: ServerProcess, app_id: int, policy: str,
                                              via: CoalesceVia) -> None:
        async def run() -> None:
            async with AsyncClient(outage.target, check_timeout=2, on_unavailable=policy,  # type: ignore[arg-type]
                                   coalesce=True, coalesce_via=via) as client:
                if policy == "raise":
                    with pytest.raises(Unavailable):
                        await client.check.join_group(app_id, "g", ["bob"])
                    return
                results = await asyncio.gather(*(client.check.join_group(app_id, "g", [f"u{i}"]) for i in range(5)))
                assert {(r.allowed, r.degraded) for r in results} == {(policy == "allow", True)}

        asyncio.run(run())

    @pytest.mark.parametrize("via", ["batch", "stream"])
    def test_no_server_at_all(self, app_id: int, via: CoalesceVia) -> None:
        async def run() -> tuple[CheckResult, list[BatchAnswer]]:
            async with AsyncClient("127.0.0.1:1", check_timeout=1, coalesce=True, coalesce_via=via) as client:
                single = await client.check.create_room(app_id, "r")
                return single, await client.check.batch([checks.create_room(app_id, "r")])

        single, batched = asyncio.run(run())
        assert single.code == ImCode.SERVICE_UNAVAILABLE
        assert isinstance(batched[0], CheckResult) and batched[0].code == ImCode.SERVICE_UNAVAILABLE


def test_coalesced_batches_stay_inside_the_servers_message_limit(server: ServerProcess, app_id: int) -> None:
    """100 concurrent joins of 500 32-byte users each (1.6 MB as one Batch) all reach the server and are admitted."""

    async def run() -> list[CheckResult]:
        async with AsyncClient(server.target, check_timeout=30, admin_timeout=10, coalesce=True,
                               coalesce_max=100, coalesce_via="batch") as client:
            await client.admin.create_app(app_id)
            assert (await client.check.create_room(app_id, "live", owner="host")).allowed
            return list(await asyncio.gather(*(
                client.check.join_group(app_id, "live", [f"{task:04d}-{user:027d}" for user in range(500)])
                for task in range(100))))

    results = asyncio.run(run())
    assert [result.code for result in results] == [ImCode.OK] * 100
