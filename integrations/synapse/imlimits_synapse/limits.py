"""imlimits as Synapse's reactor reaches it: the blocking client library, called in threads of the module's own.

Why threads and not grpc.aio: grpc.aio needs an asyncio event loop, which a
homeserver has only on Twisted's asyncio reactor (SYNAPSE_ASYNC_IO_REACTOR=1);
on the default reactor a grpc.aio call never completes and the createRoom
that waits on it hangs with nothing in the log. The blocking client in a
thread works the same on either reactor, so there is no setting an operator
can get wrong. The tests run one homeserver on each reactor.

The threads are the module's own (ModuleApi.defer_to_threadpool, Synapse
1.140+), not Synapse's shared pool, which also hashes passwords and resolves
names. Checks that a client waits on have POOL_THREADS threads and are never
queued: when all are busy (imlimits slow or unreachable), a check is answered
at once by on_unavailable, so every answer comes within the client's
CHECK_TIMEOUT per check. Confirms and releases run in the background, in a
smaller pool of their own, and may wait there.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ParamSpec, TypeVar

import grpc
from synapse.module_api import ModuleApi
from twisted.internet import reactor
from twisted.python.threadpool import ThreadPool

from imlimits_client import CheckResult, Client, GroupType, HoldResult, Released, Unavailable, Usage, checks
from imlimits_client.policy import unavailable_answer
from imlimits_client.transport import is_local, system_credentials
from imlimits_synapse.config import ModuleConfig

# Each check is bounded by this deadline, retries included. A createRoom makes two checks (SPEC section 7's
# answer within 2 s under on_unavailable thus holds with room to spare for Synapse's own work).
CHECK_TIMEOUT = 0.5
POOL_THREADS = 32
BACKGROUND_THREADS = 8

P = ParamSpec("P")
T = TypeVar("T")


class Limits:
    """The checks, releases and hold confirmations of one app, each awaited on Synapse's reactor."""

    def __init__(self, api: ModuleApi, config: ModuleConfig) -> None:
        self._api = api
        self.app_id = config.app_id
        self._hold_seconds = config.hold_seconds
        self._on_unavailable = config.on_unavailable
        # Beyond this host, TLS verified by the system's CAs (SSL_CERT_FILE for a private CA): the module has no
        # TLS keys of its own, and a token must not cross the network in plaintext.
        credentials = None if is_local(config.target) else system_credentials()
        self.client = Client(config.target, check_timeout=CHECK_TIMEOUT, on_unavailable=config.on_unavailable,
                             token=config.token, credentials=credentials)
        self._checks = _pool("imlimits-checks", POOL_THREADS)
        self._background = _pool("imlimits-background", BACKGROUND_THREADS)
        self._busy = 0

    async def create_group(self, group_id: str, group_type: GroupType, owner: str, *,
                           dry_run: bool = False) -> CheckResult:
        """Held (a dry run never holds): confirm with confirm_hold once the room exists."""
        return await self._check(self.client.check.create_group, self.app_id, group_id, group_type, owner,
                                 dry_run=dry_run, hold_seconds=0 if dry_run else self._hold_seconds)

    async def join_group(self, group_id: str, user: str) -> CheckResult:
        """Held: confirm with confirm_hold once the join is persisted."""
        return await self._check(self.client.check.join_group, self.app_id, group_id, [user],
                                 hold_seconds=self._hold_seconds)

    async def confirm_hold(self, hold_id: str) -> HoldResult:
        """Raises Unavailable when imlimits cannot be reached (not a check: no policy answers it)."""
        return await self._in_background(self.client.check.confirm_hold, self.app_id, hold_id)

    async def leave_group(self, group_id: str, user: str) -> Released:
        """Raises Unavailable when imlimits cannot be reached."""
        return await self._in_background(self.client.check.leave_group, self.app_id, group_id, [user])

    async def destroy_group(self, group_id: str) -> Released:
        return await self._in_background(self.client.check.destroy_group, self.app_id, group_id)

    async def usage(self) -> Usage:
        return await self._in_background(self.client.check.usage, self.app_id)

    # A hold that lapsed before its confirmation (the act happened, but later than hold_seconds) is counted
    # again by a plain, permanent check, in the background: nobody waits on it.

    async def join_group_again(self, group_id: str, user: str) -> CheckResult:
        return await self._in_background(self.client.check.join_group, self.app_id, group_id, [user])

    async def create_group_again(self, group_id: str, group_type: GroupType, owner: str,
                                 members: Sequence[str]) -> CheckResult:
        return await self._in_background(self.client.check.create_group, self.app_id, group_id, group_type, owner,
                                         members)

    async def _check(self, method: Callable[P, CheckResult], *args: P.args,
                     **kwargs: P.kwargs) -> CheckResult:
        if self._busy >= POOL_THREADS:
            # Every thread waits on imlimits already: answer now rather than queue behind them.
            shed = Unavailable(grpc.StatusCode.UNAVAILABLE, f"all {POOL_THREADS} threads wait on imlimits")
            return unavailable_answer(checks.join_group(self.app_id, "-", ["-"]), shed, self._on_unavailable)
        self._busy += 1
        try:
            return await self._api.defer_to_threadpool(self._checks, method, *args, **kwargs)
        finally:
            self._busy -= 1

    async def _in_background(self, method: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        return await self._api.defer_to_threadpool(self._background, method, *args, **kwargs)

    def close(self) -> None:
        self.client.close()


def _pool(name: str, threads: int) -> ThreadPool:
    pool = ThreadPool(minthreads=0, maxthreads=threads, name=name)
    pool.start()
    # Typed Any: Twisted's reactor interfaces are zope interfaces, whose methods mypy reads right only with the
    # mypy-zope plugin.
    running: Any = reactor
    running.addSystemEventTrigger("during", "shutdown", pool.stop)
    return pool
