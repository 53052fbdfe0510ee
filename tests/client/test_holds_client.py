"""Holds through the client library (sync, asyncio, coalescing), against the real server (docs/holds.md)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from e2e.helpers import wait_until
from harness import RedisProcess, ServerProcess, stall_redis
from imlimits_client import (
    AsyncClient,
    CheckResult,
    Client,
    GroupType,
    HoldLost,
    HoldResult,
    ImCode,
    InvalidArgument,
    Released,
    checks,
)
from imlimits_client import calls as client_calls
from imlimits_client.policy import RetryPolicy


@pytest.fixture
def client(server: ServerProcess) -> Iterator[Client]:
    with Client(server.target, check_timeout=10, admin_timeout=10) as connected:
        yield connected


def _app(client: Client, app_id: int) -> int:
    client.admin.create_app(app_id)
    assert client.check.create_group(app_id, "room", owner="host").allowed
    return app_id


def test_a_held_join_answers_a_hold_id_and_confirm_makes_it_permanent(client: Client, app_id: int) -> None:
    _app(client, app_id)
    result = client.check.join_group(app_id, "room", ["ann"], hold_seconds=30)
    assert result.allowed and result.hold_id
    assert client.check.usage(app_id, group_id="room").held_group_members == 1
    confirmed = client.check.confirm_hold(app_id, result.hold_id)
    assert confirmed == HoldResult(ImCode.OK, confirmed.info, True)
    usage = client.check.usage(app_id, group_id="room")
    assert (usage.group_members, usage.held_group_members, usage.held.holds) == (2, 0, 0)


def test_cancel_releases_and_a_later_confirm_says_false(client: Client, app_id: int) -> None:
    _app(client, app_id)
    result = client.check.create_group(app_id, "team", owner="ann", members=["bob"], hold_seconds=30)
    assert client.check.cancel_hold(app_id, result.hold_id) == Released(ImCode.OK, "released 2 memberships", 2)
    assert not client.check.confirm_hold(app_id, result.hold_id).confirmed
    assert client.check.usage(app_id, user="bob").user_groups == 0


def test_held_confirms_when_the_block_succeeds(client: Client, app_id: int) -> None:
    _app(client, app_id)
    result = client.check.join_group(app_id, "room", ["ann"], hold_seconds=30)
    with client.check.held(app_id, result) as admitted:
        assert admitted is result
    assert client.check.usage(app_id, group_id="room").held_group_members == 0
    assert client.check.usage(app_id, user="ann").user_groups == 1


def test_held_cancels_when_the_block_raises(client: Client, app_id: int) -> None:
    _app(client, app_id)
    result = client.check.join_group(app_id, "room", ["ann"], hold_seconds=30)
    with pytest.raises(RuntimeError, match="the database refused"), client.check.held(app_id, result):
        raise RuntimeError("the database refused")
    assert client.check.usage(app_id, user="ann").user_groups == 0
    assert not client.check.confirm_hold(app_id, result.hold_id).confirmed


def test_held_raises_hold_lost_when_the_hold_ended_during_the_act(client: Client, app_id: int) -> None:
    _app(client, app_id)
    result = client.check.join_group(app_id, "room", ["ann"], hold_seconds=1)
    with pytest.raises(HoldLost) as lost, client.check.held(app_id, result):
        wait_until(lambda: client.check.usage(app_id, user="ann").user_groups == 0)  # a slow act
    assert lost.value.hold_id == result.hold_id and "expired" in lost.value.info


def test_held_refuses_a_refused_check_and_passes_a_check_without_hold(client: Client, app_id: int) -> None:
    _app(client, app_id)
    refused = client.check.join_group(app_id, "nowhere", ["ann"], hold_seconds=30)
    with pytest.raises(ValueError, match="refused"):
        client.check.held(app_id, refused)
    plain = client.check.join_group(app_id, "room", ["ann"])
    with client.check.held(app_id, plain):
        pass  # nothing to confirm
    assert client.check.usage(app_id, user="ann").user_groups == 1


def test_request_id_without_hold_is_refused_and_a_held_check_carries_one(client: Client, app_id: int) -> None:
    _app(client, app_id)
    with pytest.raises(InvalidArgument, match="request_id"):
        client.check.join_group(app_id, "room", ["ann"], request_id="r1")
    call = client_calls.join_group(app_id, "room", ["ann"], False, 30)
    assert call.request.request_id and call.retry_safe  # type: ignore[attr-defined]
    assert client_calls.create_group(app_id, "g", GroupType.WORK, "", (), 0, False, 30).retry_safe
    assert not client_calls.create_group(app_id, "g", GroupType.WORK, "", (), 0, False).retry_safe


def test_a_held_check_with_the_same_request_id_answers_the_same_hold(client: Client, app_id: int) -> None:
    _app(client, app_id)
    first = client.check.join_group(app_id, "room", ["ann"], hold_seconds=30, request_id="join-ann-1")
    again = client.check.join_group(app_id, "room", ["ann"], hold_seconds=30, request_id="join-ann-1")
    assert first.hold_id == again.hold_id
    assert client.check.usage(app_id).held == client.check.usage(app_id).held  # stable
    assert client.check.usage(app_id).held.holds == 1
    with pytest.raises(InvalidArgument, match="request_id"):
        client.check.join_group(app_id, "room", ["bob"], hold_seconds=30, request_id="join-ann-1")


def test_a_retry_after_a_lost_answer_does_not_hold_twice(own_redis: RedisProcess, app_id: int) -> None:
    """Redis stalls past the server's timeout while the held check waits in it: the server answers
    UNAVAILABLE, the client retries with the same request_id, and one hold (one membership) results."""
    server = ServerProcess("--redis-url", own_redis.url, "--redis-timeout", "0.1").start()
    try:
        with Client(server.target, check_timeout=10, admin_timeout=10,
                    retry=RetryPolicy(attempts=20, base_delay=0.05, max_delay=0.2)) as client:
            _app(client, app_id)
            stall = stall_redis(own_redis.client(), 0.6)
            time.sleep(0.05)  # the stall has begun: the check below waits behind it
            started = time.monotonic()
            result = client.check.join_group(app_id, "room", ["ann"], hold_seconds=30)
            stall.join()
            assert time.monotonic() - started > 0.3  # it waited behind the stall
            assert any("redis unavailable in JoinGroup" in line for line in server.output)  # and was retried
            assert result.allowed and result.hold_id
            usage = client.check.usage(app_id, user="ann")
            assert (usage.user_groups, usage.held.holds, usage.held.memberships) == (1, 1, 1)
            assert client.check.confirm_hold(app_id, result.hold_id).confirmed
    finally:
        server.stop()


def test_batches_carry_confirms_and_cancels(client: Client, app_id: int) -> None:
    _app(client, app_id)
    held = client.check.batch([checks.join_group(app_id, "room", [name], hold_seconds=30) for name in "abc"])
    hold_ids = [answer.hold_id for answer in held]  # type: ignore[union-attr]
    answers = client.check.batch([checks.confirm_hold(app_id, hold_ids[0]), checks.cancel_hold(app_id, hold_ids[1]),
                                  checks.confirm_hold(app_id, hold_ids[1]), checks.confirm_hold(app_id, "forged")])
    assert [type(answer) for answer in answers] == [HoldResult, Released, HoldResult, InvalidArgument]
    assert answers[0].confirmed and answers[1].released == 1 and not answers[2].confirmed  # type: ignore[union-attr]
    assert client.check.usage(app_id, group_id="room").held_group_members == 1


def test_asyncio_and_coalescing_clients_hold_confirm_and_cancel(server: ServerProcess, app_id: int) -> None:
    with Client(server.target) as sync:
        _app(sync, app_id)

    async def run(coalesce: bool) -> None:
        async with AsyncClient(server.target, check_timeout=10, coalesce=coalesce) as client:
            prefix = "co" if coalesce else "as"
            results = await asyncio.gather(*(client.check.join_group(app_id, "room", [f"{prefix}{i}"],
                                                                     hold_seconds=30) for i in range(10)))
            assert all(isinstance(result, CheckResult) and result.hold_id for result in results)
            async with client.check.held(app_id, results[0]):
                pass
            with pytest.raises(KeyError):
                async with client.check.held(app_id, results[1]):
                    raise KeyError("failed")
            answers = await asyncio.gather(*(client.check.confirm_hold(app_id, result.hold_id)
                                             for result in results[2:]))
            assert all(answer.confirmed for answer in answers)
            usage = await client.check.usage(app_id, user=f"{prefix}1")
            assert usage.user_groups == 0

    asyncio.run(run(False))
    asyncio.run(run(True))
    with Client(server.target) as sync:
        usage = sync.check.usage(app_id, group_id="room")
        assert (usage.group_members, usage.held_group_members) == (1 + 2 * 9, 0)
