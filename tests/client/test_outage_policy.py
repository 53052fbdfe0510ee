"""on_unavailable decides only checks: every other call raises Unavailable during a real outage.

A fake CheckResult from admin.get_app or leave_group would be read as an App
or a release that never happened, so each non-check call of both clients is
tried under each policy against a server whose Redis is stopped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest

from harness import RedisProcess, ServerProcess
from imlimits_client import AsyncClient, Client, Edition, ImCode, Unavailable
from imlimits_client.policy import OnUnavailable

POLICIES: tuple[OnUnavailable, ...] = ("deny", "allow", "raise")
APP = 1_950_000_001

# Every call of the clients that is not a check, by the name a caller knows it.
NON_CHECKS: dict[str, Callable[[Any], Any]] = {
    "check.leave_group": lambda c: c.check.leave_group(APP, "g", ["alice"]),
    "check.destroy_group": lambda c: c.check.destroy_group(APP, "g"),
    "check.usage": lambda c: c.check.usage(APP, user="alice", group_id="g"),
    "check.verify_usage": lambda c: c.check.verify_usage(APP),
    "admin.create_app": lambda c: c.admin.create_app(APP + 1),
    "admin.get_app": lambda c: c.admin.get_app(APP),
    "admin.upgrade": lambda c: c.admin.upgrade(APP, Edition.PRO),
    "admin.change_plan": lambda c: c.admin.change_plan(APP, user_group_limit=600),
    "admin.deactivate": lambda c: c.admin.deactivate(APP),
    "admin.list_plan_changes": lambda c: c.admin.list_plan_changes(APP),
    "admin.get_bill": lambda c: c.admin.get_bill(APP, "2019-03"),
}
CHECKS: dict[str, Callable[[Any], Any]] = {
    "check.create_group": lambda c: c.check.create_group(APP, "g2", owner="bob"),
    "check.create_room": lambda c: c.check.create_room(APP, "r"),
    "check.join_group": lambda c: c.check.join_group(APP, "g", ["bob"]),
}


@pytest.fixture(scope="module")
def outage() -> Iterator[ServerProcess]:
    """A served app whose Redis then stops: every call reaches the server and fails there."""
    redis_server = RedisProcess().start()
    process = ServerProcess("--redis-url", redis_server.url, "--redis-timeout", "0.2").start()
    try:
        with Client(process.target, check_timeout=10, admin_timeout=10) as client:
            client.admin.create_app(APP)
            assert client.check.create_group(APP, "g", owner="alice").allowed
        redis_server.stop()
        yield process
    finally:
        process.stop()
        redis_server.stop()


def _sync_answer(target: str, policy: OnUnavailable, call: Callable[[Any], Any]) -> Any:
    with Client(target, check_timeout=5, admin_timeout=5, on_unavailable=policy) as client:
        return call(client)


def _async_answer(target: str, policy: OnUnavailable, call: Callable[[Any], Awaitable[Any]]) -> Any:
    async def run() -> Any:
        async with AsyncClient(target, check_timeout=5, admin_timeout=5, on_unavailable=policy) as client:
            return await call(client)

    return asyncio.run(run())


ANSWERS = {"sync": _sync_answer, "async": _async_answer}


@pytest.mark.parametrize("flavour", sorted(ANSWERS))
@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("name", sorted(NON_CHECKS))
def test_non_checks_raise_unavailable_whatever_the_policy(outage: ServerProcess, name: str, policy: OnUnavailable,
                                                          flavour: str) -> None:
    with pytest.raises(Unavailable):
        answer = ANSWERS[flavour](outage.target, policy, NON_CHECKS[name])
        pytest.fail(f"{flavour} {name} with on_unavailable={policy!r} answered {answer!r} during an outage")


@pytest.mark.parametrize("flavour", sorted(ANSWERS))
@pytest.mark.parametrize("name", sorted(CHECKS))
def test_checks_follow_the_policy_in_the_same_outage(outage: ServerProcess, name: str, flavour: str) -> None:
    """The same outage does reach the policy for checks, so the refusals above are not for lack of an outage."""
    denied = ANSWERS[flavour](outage.target, "deny", CHECKS[name])
    assert (denied.code, denied.allowed, denied.degraded) == (ImCode.SERVICE_UNAVAILABLE, False, True)
    allowed = ANSWERS[flavour](outage.target, "allow", CHECKS[name])
    assert (allowed.code, allowed.allowed, allowed.degraded) == (ImCode.OK, True, True)
    with pytest.raises(Unavailable):
        ANSWERS[flavour](outage.target, "raise", CHECKS[name])
