"""The coalescing client gives each caller its own answer, a waiting check leaves within its window, each
check keeps its own deadline in a shared call, and a confirm waits for company.

Issue 22, item 8: answers matched to callers in reverse (or the stream's
answers taken from the wrong end) survived, since the tests compared only a
Counter of codes; so did a window of 3600 s, since no test had a check in
flight long enough for a second one to wait out its window.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import pytest

from harness import ServerProcess
from imlimits.v1 import limit_pb2_grpc
from imlimits_client import AsyncClient, CheckResult, Edition, GroupType, HoldResult, ImCode, Unavailable
from imlimits_client import calls as client_calls
from imlimits_client.batching import (
    CALLS_BEFORE_WAITING,
    DEFAULT_COALESCE_MAX,
    DEFAULT_COALESCE_WINDOW,
    Coalescer,
    CoalesceVia,
)


@pytest.mark.parametrize("via", ["batch", "stream"])
def test_each_coalesced_caller_gets_its_own_answer(server: ServerProcess, app_id: int, via: CoalesceVia) -> None:
    """Callers ask of a group that exists and one that does not, in an order that reads differently backwards:
    any mix-up shows as a wrong code."""

    async def run() -> None:
        async with AsyncClient(server.target, check_timeout=10, admin_timeout=10, coalesce=True,
                               coalesce_via=via) as client:
            await client.admin.create_app(app_id)
            await client.admin.upgrade(app_id, Edition.ULTIMATE)
            assert (await client.check.create_group(app_id, "here", GroupType.PUBLIC, owner="o")).allowed
            for _ in range(3):
                groups = ["gone" if i % 3 == 1 else "here" for i in range(40)]
                results = await asyncio.gather(*(client.check.join_group(app_id, group_id, [f"u{i}"])
                                                 for i, group_id in enumerate(groups)))
                assert [result.code for result in results] == [
                    ImCode.OK if group_id == "here" else ImCode.GROUP_NOT_FOUND for group_id in groups]

    asyncio.run(run())


def _group(server: ServerProcess, app_id: int) -> None:
    async def run() -> None:
        async with AsyncClient(server.target, check_timeout=10, admin_timeout=10) as client:
            await client.admin.create_app(app_id)
            assert (await client.check.create_group(app_id, "g", owner="o")).allowed

    asyncio.run(run())


class _HoldFirstCalls(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    """Keeps the channel's first `count` unary calls from leaving until released: checks in flight that long."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.held = 0
        self.release = asyncio.Event()

    async def intercept_unary_unary(self, continuation: Callable[[Any, Any], Awaitable[Any]],
                                    client_call_details: Any, request: Any) -> Any:
        if self.held < self.count:
            self.held += 1
            await self.release.wait()
        return await continuation(client_call_details, request)


def test_a_waiting_check_leaves_within_its_window_while_calls_are_in_flight(server: ServerProcess,
                                                                            app_id: int) -> None:
    _group(server, app_id)

    async def run() -> None:
        hold = _HoldFirstCalls(CALLS_BEFORE_WAITING)
        async with grpc.aio.insecure_channel(server.target, interceptors=[hold]) as channel:
            coalescer = Coalescer(limit_pb2_grpc.LimitServiceStub(channel), (), DEFAULT_COALESCE_WINDOW,
                                  DEFAULT_COALESCE_MAX, "batch")
            first = []
            for user in range(CALLS_BEFORE_WAITING):  # each on its way before the next: a call of its own
                first.append(asyncio.ensure_future(coalescer.send(
                    client_calls.join_group(app_id, "g", [f"u{user}"], False), 30)))
                while hold.held <= user:
                    await asyncio.sleep(0.001)
            # That many calls are on their way and unanswered: the next check waits for company at most its
            # window, then goes by itself (the 10 s bound only keeps a broken client from hanging the test).
            last = CheckResult.from_proto(await coalescer.send(client_calls.join_group(app_id, "g", ["b"], False),
                                                               10))
            assert last.code == ImCode.OK and not any(call.done() for call in first)
            hold.release.set()
            assert [CheckResult.from_proto(await call).code for call in first] == [ImCode.OK] * CALLS_BEFORE_WAITING
            await coalescer.close()

    asyncio.run(run())


class _HoldBatches(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    """Records each call's method and request; keeps Batch calls from leaving until `release` is set."""

    def __init__(self, hold: bool) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.release = asyncio.Event()
        if not hold:
            self.release.set()

    async def intercept_unary_unary(self, continuation: Callable[[Any, Any], Awaitable[Any]],
                                    client_call_details: Any, request: Any) -> Any:
        method = client_call_details.method
        self.calls.append((method.decode() if isinstance(method, bytes) else method, request))
        if self.calls[-1][0].endswith("/Batch"):
            await self.release.wait()
        return await continuation(client_call_details, request)


def test_each_coalesced_check_keeps_its_own_deadline(server: ServerProcess, app_id: int) -> None:
    """Two checks share one Batch call that the service is slow to answer: the one with the shorter deadline is
    answered DEADLINE_EXCEEDED when its deadline passes, the other keeps waiting and gets its answer."""
    _group(server, app_id)

    async def run() -> None:
        batches = _HoldBatches(hold=True)
        async with grpc.aio.insecure_channel(server.target, interceptors=[batches]) as channel:
            coalescer = Coalescer(limit_pb2_grpc.LimitServiceStub(channel), (), DEFAULT_COALESCE_WINDOW,
                                  DEFAULT_COALESCE_MAX, "batch")
            short = asyncio.ensure_future(coalescer.send(client_calls.join_group(app_id, "g", ["a"], False), 0.2))
            long = asyncio.ensure_future(coalescer.send(client_calls.join_group(app_id, "g", ["b"], False), 5))
            with pytest.raises(Unavailable) as raised:
                await asyncio.wait_for(short, 10)  # the bound only keeps a broken client from hanging the test
            assert raised.value.status == grpc.StatusCode.DEADLINE_EXCEEDED
            assert not long.done() and [method for method, _ in batches.calls] == ["/imlimits.v1.LimitService/Batch"]
            batches.release.set()
            assert CheckResult.from_proto(await long).code == ImCode.OK
            await coalescer.close()

    asyncio.run(run())


def test_a_confirm_waits_for_company_and_leaves_with_the_next_check(server: ServerProcess, app_id: int) -> None:
    """A confirm alone waits its confirm window (here far longer than the test) for others; a check that
    follows it takes it along at once, in one Batch call."""
    _group(server, app_id)

    async def run() -> None:
        async with AsyncClient(server.target, check_timeout=10, admin_timeout=10) as client:
            held = await client.check.join_group(app_id, "g", ["ann"], hold_seconds=60)
        calls = _HoldBatches(hold=False)
        async with grpc.aio.insecure_channel(server.target, interceptors=[calls]) as channel:
            coalescer = Coalescer(limit_pb2_grpc.LimitServiceStub(channel), (), DEFAULT_COALESCE_WINDOW,
                                  DEFAULT_COALESCE_MAX, "batch", confirm_window=60)
            confirm = asyncio.ensure_future(coalescer.send(client_calls.confirm_hold(app_id, held.hold_id), 60))
            await asyncio.sleep(0.2)  # the confirm waits: nothing is on its way, and no other check came
            assert not confirm.done() and calls.calls == []
            join = CheckResult.from_proto(await coalescer.send(client_calls.join_group(app_id, "g", ["bob"], False),
                                                               10))
            assert join.code == ImCode.OK and HoldResult.from_proto(await confirm).confirmed
            [(method, request)] = calls.calls
            assert method == "/imlimits.v1.LimitService/Batch"
            assert [check.WhichOneof("kind") for check in request.checks] == ["confirm_hold", "join_group"]
            await coalescer.close()

    asyncio.run(run())


def test_a_check_waiting_for_company_leaves_by_its_deadline(server: ServerProcess, app_id: int) -> None:
    """A confirm whose window outlasts its deadline is answered DEADLINE_EXCEEDED at its deadline, not kept."""
    _group(server, app_id)

    async def run() -> None:
        async with AsyncClient(server.target, check_timeout=10, admin_timeout=10) as client:
            held = await client.check.join_group(app_id, "g", ["ann"], hold_seconds=60)
        async with grpc.aio.insecure_channel(server.target) as channel:
            coalescer = Coalescer(limit_pb2_grpc.LimitServiceStub(channel), (), DEFAULT_COALESCE_WINDOW,
                                  DEFAULT_COALESCE_MAX, "batch", confirm_window=3600)
            with pytest.raises(Unavailable) as raised:
                # The 10 s bound only keeps a broken client from hanging the test.
                await asyncio.wait_for(coalescer.send(client_calls.confirm_hold(app_id, held.hold_id), 0.3), 10)
            assert raised.value.status == grpc.StatusCode.DEADLINE_EXCEEDED
            await coalescer.close()

    asyncio.run(run())
