"""How many calls a process answers at once, and how many streams one caller may hold, health checks apart.

gRPC's own `maximum_concurrent_rpcs` counts every call, health checks
included: a client holding thousands of long-lived Streams (a documented way
to call the service) made load balancers' health probes answer
RESOURCE_EXHAUSTED, so they would pull a healthy replica. This interceptor
keeps the bound for everything but health, which stays answerable whatever
the checks do, and bounds the streams of one caller so that no caller holds
the whole budget. A refusal is RESOURCE_EXHAUSTED, at once and before the
request is read.
"""

from __future__ import annotations

import collections
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

# Answered whatever the load: what load balancers and orchestrators probe.
_EXEMPT_PREFIX = "/grpc.health.v1.Health/"

Identify = Callable[[grpc.aio.ServicerContext], str]


def peer_host(context: grpc.aio.ServicerContext) -> str:
    """The caller as its address without the port ("ipv4:10.0.0.7"): who calls when there are no tokens."""
    return str(context.peer()).rpartition(":")[0]


class CallLimits(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """At most `max_calls` calls at once (health checks not counted), at most `max_streams_per_caller`
    streaming calls (Stream, ImportGroups, ExportGroups, reflection) of one caller, as `identify` names it."""

    def __init__(self, max_calls: int, max_streams_per_caller: int, identify: Identify = peer_host) -> None:
        self.max_calls = max_calls
        self.max_streams_per_caller = max_streams_per_caller
        self._identify = identify
        self.calls = 0
        self.streams: collections.Counter[str] = collections.Counter()
        # Method -> (the handler grpc gave, its counted form): built once, as the decoding guard's are.
        self._counted_handlers: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    async def intercept_service(
        self, continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None or handler_call_details.method.startswith(_EXEMPT_PREFIX):
            return handler
        if self.calls >= self.max_calls:
            return _refusal(f"this server answers {self.max_calls} calls at once and has that many; retry "
                            "shortly or call another replica")
        cached = self._counted_handlers.get(handler_call_details.method)
        if cached is None or cached[0] is not handler:
            cached = self._counted_handlers[handler_call_details.method] = (handler, self._counted(handler))
        return cached[1]

    def _counted(self, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        kind = ("stream" if handler.request_streaming else "unary") + "_" + \
            ("stream" if handler.response_streaming else "unary")
        behaviour = getattr(handler, kind)
        streaming = handler.request_streaming or handler.response_streaming
        limits = self

        if inspect.isasyncgenfunction(behaviour):
            async def generating(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
                caller = await limits._enter(context)
                try:
                    async for response in behaviour(request, context):
                        yield response
                finally:
                    limits._leave(caller)

            return handler._replace(**{kind: generating})
        if not inspect.iscoroutinefunction(behaviour):
            return handler  # a synchronous handler runs in grpc's thread pool, which bounds it itself

        if not streaming:
            # Every check goes this way: counted inline, without _enter's coroutine (no caller to name).
            async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
                limits.calls += 1
                try:
                    return await behaviour(request, context)
                finally:
                    limits.calls -= 1

            return handler._replace(**{kind: unary})

        async def single(request: Any, context: grpc.aio.ServicerContext) -> Any:
            caller = await limits._enter(context)
            try:
                return await behaviour(request, context)
            finally:
                limits._leave(caller)

        return handler._replace(**{kind: single})

    async def _enter(self, context: grpc.aio.ServicerContext) -> str:
        """Count a streaming call and its caller's stream, or abort it with RESOURCE_EXHAUSTED."""
        caller = self._identify(context)
        if self.streams[caller] >= self.max_streams_per_caller:
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED,
                                f"caller {caller!r} already holds {self.max_streams_per_caller} streams on this "
                                "server, its bound: close one, or reuse a stream for more checks")
        self.calls += 1
        self.streams[caller] += 1
        return caller

    def _leave(self, caller: str) -> None:
        self.calls -= 1
        self.streams[caller] -= 1
        if not self.streams[caller]:
            del self.streams[caller]


def _refusal(message: str) -> grpc.RpcMethodHandler:
    async def refuse(requests: Any, context: grpc.aio.ServicerContext) -> None:
        await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, message)

    # As a client-streaming handler the refusal never reads the request.
    return grpc.stream_unary_rpc_method_handler(refuse)
