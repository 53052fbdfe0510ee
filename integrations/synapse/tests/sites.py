"""The module's test fixtures (conftest.py imports them): Redis, imlimits, a homeserver per module config.

Homeservers start once per session (each takes a few seconds): `deny` runs
on Synapse's default reactor with on_unavailable deny and a TRIAL app;
`allow` runs on the asyncio reactor with on_unavailable allow and an
ULTIMATE app. Each test uses users and rooms of its own.
"""

from __future__ import annotations

import itertools
import os
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness import RedisProcess, ServerProcess, free_port, temp_dir, temp_dirs_removed
from homeserver import HomeserverProcess, Matrix
from imlimits_client import Client, Edition, GroupType
from imlimits_synapse.ids import group_key, user_key

HOLD_SECONDS = 3
# Longer than a hold and its release (SPEC: within hold_seconds + 2 s), so that a room can fill meanwhile.
SLOW_NEIGHBOUR_SECONDS = HOLD_SECONDS + 5
# Long enough for the user to join again before the module hears of the leave.
SLOW_LEAVE_SECONDS = 1.5
HERE = Path(__file__).parent
_names = itertools.count(1)


__all__ = ["allow", "deny", "redis_url", "session_temp_dirs"]


@pytest.fixture(scope="session", autouse=True)
def session_temp_dirs() -> Iterator[None]:
    with temp_dirs_removed():
        yield


class Limits:
    """An imlimits server on a fixed loopback port, so that it can be stopped and started under a homeserver."""

    def __init__(self, redis_url: str) -> None:
        self.redis_url = redis_url
        self.port = free_port()
        self.process: ServerProcess | None = None

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        self.process = ServerProcess("--redis-url", self.redis_url, "--listen", self.target,
                                     "--redis-timeout", "1").start()

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
        self.process = None

    def pause(self) -> None:
        """SIGSTOP: the port still accepts connections, nothing answers (a hung server or a black hole)."""
        assert self.process is not None
        self.process.process.send_signal(signal.SIGSTOP)  # type: ignore[union-attr]

    def resume(self) -> None:
        assert self.process is not None
        self.process.process.send_signal(signal.SIGCONT)  # type: ignore[union-attr]


@dataclass
class Site:
    """A homeserver with the module in front of an imlimits app."""

    homeserver: HomeserverProcess
    limits: Limits
    app_id: int
    client: Client

    def user(self, prefix: str = "user", admin: bool = False) -> Matrix:
        return self.homeserver.register(f"{prefix}-{next(_names)}", admin=admin)

    def users(self, count: int, prefix: str = "user") -> list[Matrix]:
        return [self.user(prefix) for _ in range(count)]


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    server = RedisProcess().start()
    yield server.url
    server.stop()


def _site(redis_url: str, app_id: int, edition: Edition | None, asyncio_reactor: bool,
          **module: object) -> Iterator[Site]:
    limits = Limits(redis_url)
    limits.start()
    client = Client(limits.target, check_timeout=5)
    client.admin.create_app(app_id)
    if edition is not None:
        client.admin.upgrade(app_id, edition)
    config = {"target": limits.target, "app_id": app_id, "hold_seconds": HOLD_SECONDS,
              "admin_contact": "mailto:ops@example.com", **module}
    # A slow module ahead of ours delays the confirmation of some joins past their hold (test_exactness.py).
    slow = {"module": "slow_neighbour.SlowNeighbour",
            "config": {"seconds": SLOW_NEIGHBOUR_SECONDS, "leave_seconds": SLOW_LEAVE_SECONDS}}
    homeserver = HomeserverProcess(temp_dir("imlimits-test-synapse-"), config, asyncio_reactor=asyncio_reactor,
                                   env={"PYTHONPATH": str(HERE / "neighbour")}, modules_before=[slow])
    homeserver.start()
    try:
        yield Site(homeserver, limits, app_id, client)
        assert not errors_logged(homeserver), "".join(errors_logged(homeserver))
    finally:
        homeserver.stop()
        if "IMLIMITS_SHOW_SYNAPSE_LOG" in os.environ:
            print(homeserver.log())
        client.close()
        limits.stop()


@pytest.fixture(scope="session")
def deny(redis_url: str) -> Iterator[Site]:
    """on_unavailable deny, a TRIAL app, Synapse's default reactor."""
    yield from _site(redis_url, 1_400_000_001, None, False, on_unavailable="deny")


@pytest.fixture(scope="session")
def allow(redis_url: str) -> Iterator[Site]:
    """on_unavailable allow, an ULTIMATE app, the asyncio reactor (SYNAPSE_ASYNC_IO_REACTOR=1)."""
    yield from _site(redis_url, 1_400_000_002, Edition.ULTIMATE, True, on_unavailable="allow")


def eventually(condition: Callable[[], bool], timeout: float, what: str) -> float:
    """Polls `condition` until true; returns the seconds it took. Fails after `timeout`."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.05)
    return time.monotonic() - started


def errors_logged(homeserver: HomeserverProcess) -> list[str]:
    """What the module logged as an error, and any traceback: nothing, in a session where nothing is broken."""
    return [line for line in homeserver.output if "Traceback" in line or ("imlimits" in line and " ERROR " in line)]


def members(site: Site, room_id: str) -> int | None:
    return site.client.check.usage(site.app_id, group_id=group_key(room_id)).group_members


def confirmed(site: Site, room_id: str) -> bool:
    """Whether none of the room's memberships is still held (each was confirmed, or released)."""
    return site.client.check.usage(site.app_id, group_id=group_key(room_id)).held_group_members == 0


def rooms_of(site: Site, user: Matrix) -> int | None:
    return site.client.check.usage(site.app_id, user=user_key(user.user_id)).user_groups


def group_type(site: Site, room_id: str) -> GroupType:
    for record in site.client.admin.export_groups(site.app_id):
        if record.group_id == group_key(room_id):
            return record.type
    raise AssertionError(f"{room_id} is not a group of app {site.app_id}")


def fill(site: Site, room_id: str, count: int) -> list[Matrix]:
    joined = site.users(count, "member")
    for user in joined:
        user.join(room_id).expect(200)
    return joined


@contextmanager
def imlimits_down(site: Site, how: str) -> Iterator[None]:
    """imlimits stopped (connections refused) or paused (connections accepted, nothing answered)."""
    if how == "stopped":
        site.limits.stop()
    else:
        site.limits.pause()
    try:
        yield
    finally:
        if how == "stopped":
            site.limits.start()
        else:
            site.limits.resume()
