"""The client library against the real server: typed results and errors, retries, the on_unavailable policy."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from harness import RedisProcess, ServerProcess
from imlimits_client import (
    AlreadyExists,
    AppStatus,
    AsyncClient,
    Client,
    Edition,
    GroupType,
    ImCode,
    InvalidArgument,
    NotFound,
    PlanRuleViolation,
    Unavailable,
)
from imlimits_client.policy import RetryPolicy
from imlimits_server.core.checks import ImCode as ServerImCode

TZ = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def client(server: ServerProcess) -> Iterator[Client]:
    with Client(server.target, check_timeout=10, admin_timeout=10) as connected:
        yield connected




def test_client_codes_are_the_servers(client: Client) -> None:
    assert {code.name: code.value for code in ImCode if code.value >= 0} == \
        {code.name: code.value for code in ServerImCode}


def test_typed_results(client: Client, app_id: int) -> None:
    app = client.admin.create_app(app_id)
    assert (app.edition, app.status, app.limits.av_rooms) == (Edition.TRIAL, AppStatus.ACTIVE, 10)
    app = client.admin.upgrade(app_id, Edition.PRO, av_room_unlimited=True)
    assert app.limits.av_rooms is None and app.locked_items == ("edition", "av_room_unlimited")
    assert client.check.create_group(app_id, "g", GroupType.PUBLIC, owner="alice", members=["bob"]).allowed
    result = client.check.join_group(app_id, "nope", ["carol"])
    assert (result.code, result.allowed, result.degraded) == (ImCode.GROUP_NOT_FOUND, False, False)
    usage = client.check.usage(app_id, user="bob", group_id="g")
    assert (usage.groups, usage.user_groups, usage.group_members) == (1, 1, 2)
    assert client.check.leave_group(app_id, "g", ["bob", "bob"]).released == 1
    assert client.check.destroy_group(app_id, "g").released == 1
    assert [change.item for change in client.admin.list_plan_changes(app_id)][:2] == ["status", "edition"]


def test_typed_errors(client: Client, app_id: int) -> None:
    with pytest.raises(NotFound):
        client.admin.get_app(app_id)
    client.admin.create_app(app_id, at=datetime(2019, 1, 2, tzinfo=TZ))
    with pytest.raises(AlreadyExists):
        client.admin.create_app(app_id)
    with pytest.raises(InvalidArgument, match="users"):
        client.check.join_group(app_id, "g", [])
    client.admin.upgrade(app_id, Edition.PRO, at=datetime(2019, 2, 10, tzinfo=TZ))
    with pytest.raises(PlanRuleViolation) as refused:
        client.admin.change_plan(app_id, edition=Edition.ULTIMATE, at=datetime(2019, 2, 11, tzinfo=TZ))
    assert [(v.type, v.subject) for v in refused.value.violations] == [("MONTHLY_CHANGE_USED", "edition")]


def test_plan_calls_carry_a_request_id(client: Client, app_id: int) -> None:
    client.admin.create_app(app_id)
    client.admin.upgrade(app_id, Edition.PRO, request_id="mine")
    ids = [change.request_id for change in client.admin.list_plan_changes(app_id)]
    assert ids[0] and ids[0] != "mine" and ids[1] == "mine"
    again = client.admin.upgrade(app_id, Edition.PRO, request_id="mine")  # a retry, not a second upgrade
    assert again.edition is Edition.PRO


def test_bills(client: Client, app_id: int) -> None:
    client.admin.create_app(app_id, at=datetime(2019, 1, 2, tzinfo=TZ))
    client.admin.upgrade(app_id, Edition.PRO, at=datetime(2019, 2, 10, tzinfo=TZ))
    bill = client.admin.get_bill(app_id, "2019-03")
    assert (bill.total, bill.issued_on, bill.lines[0].item) == (99_900, "2019-04-01", "edition")


def test_async_client(server: ServerProcess, app_id: int) -> None:
    async def run() -> None:
        async with AsyncClient(server.target, check_timeout=10, admin_timeout=10) as client:
            await client.admin.create_app(app_id)
            results = await asyncio.gather(*(client.check.create_room(app_id, f"r{i}") for i in range(12)))
            assert sorted(r.code for r in results) == [ImCode.OK] * 10 + [ImCode.AV_ROOM_LIMIT] * 2
            with pytest.raises(NotFound):
                await client.admin.get_app(app_id + 10_000_000)

    asyncio.run(run())


class TestOutage:
    """A real server whose Redis is stopped, then started again."""

    @pytest.fixture
    def outage(self, own_redis: RedisProcess, app_id: int) -> Iterator[ServerProcess]:
        process = ServerProcess("--redis-url", own_redis.url, "--redis-timeout", "0.2").start()
        with Client(process.target) as client:
            client.admin.create_app(app_id)
            client.check.create_group(app_id, "g", owner="alice")
        own_redis.stop()
        yield process
        process.stop()

    def test_deny_is_the_default(self, outage: ServerProcess, app_id: int) -> None:
        with Client(outage.target, check_timeout=2) as client:
            result = client.check.join_group(app_id, "g", ["bob"])
        assert (result.code, result.allowed, result.degraded) == (ImCode.SERVICE_UNAVAILABLE, False, True)

    def test_allow_fails_open(self, outage: ServerProcess, app_id: int) -> None:
        with Client(outage.target, check_timeout=2, on_unavailable="allow") as client:
            result = client.check.join_group(app_id, "g", ["bob"])
        assert (result.code, result.allowed, result.degraded) == (ImCode.OK, True, True)

    def test_raise_and_admin_calls_raise_unavailable(self, outage: ServerProcess, app_id: int) -> None:
        with Client(outage.target, check_timeout=2, admin_timeout=2, on_unavailable="raise") as client:
            with pytest.raises(Unavailable):
                client.check.join_group(app_id, "g", ["bob"])
            with pytest.raises(Unavailable):
                client.admin.get_app(app_id)

    def test_no_server_at_all(self, app_id: int) -> None:
        with Client("127.0.0.1:1", check_timeout=1) as client:
            assert client.check.create_room(app_id, "r").code == ImCode.SERVICE_UNAVAILABLE

    def test_retries_carry_a_join_across_a_restart(self, outage: ServerProcess, own_redis: RedisProcess,
                                                   app_id: int) -> None:
        """Redis comes back while the client is still retrying within its deadline."""
        restart = threading.Timer(0.5, own_redis.start)
        retry = RetryPolicy(attempts=1000, base_delay=0.05, max_delay=0.1)
        with Client(outage.target, check_timeout=30, on_unavailable="raise", retry=retry) as client:
            started = time.monotonic()
            restart.start()
            # The restarted Redis is empty: the app is gone, so the service answers NOT_FOUND, not UNAVAILABLE.
            with pytest.raises(NotFound):
                client.check.join_group(app_id, "g", ["bob"])
            restart.join()
            assert time.monotonic() - started >= 0.5

    @staticmethod
    def unavailable_calls(server: ServerProcess, client: Client, app_id: int) -> dict[str, int]:
        """How many calls the server answered UNAVAILABLE, by RPC, read from its log.

        A GetUsage marker is logged after every earlier call, so once it shows the log is complete.
        """
        with pytest.raises(Unavailable):
            client.check.usage(app_id)
        deadline = time.monotonic() + 10
        while not any("unavailable in GetUsage" in line for line in server.output) and time.monotonic() < deadline:
            time.sleep(0.05)
        lines = [line for line in server.output if "redis unavailable in " in line]
        return {rpc: sum(f"unavailable in {rpc}:" in line for line in lines) for rpc in ("JoinGroup", "CreateRoom")}

    def test_safe_calls_are_retried_and_creates_are_not(self, outage: ServerProcess, app_id: int) -> None:
        retry = RetryPolicy(attempts=4, base_delay=0.001, max_delay=0.002)
        with Client(outage.target, check_timeout=10, on_unavailable="raise", retry=retry) as client:
            with pytest.raises(Unavailable):
                client.check.join_group(app_id, "g", ["bob"])
            with pytest.raises(Unavailable):
                client.check.create_room(app_id, "r")
            assert self.unavailable_calls(outage, client, app_id) == {"JoinGroup": 4, "CreateRoom": 1}
