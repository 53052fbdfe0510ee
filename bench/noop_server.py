"""The benchmark's baseline: imlimits' own gRPC server and options, with servicers that answer at once.

With --redis-url, each unary check first waits for one Redis PING through the
service's own Redis connection: the floor of a service that makes one Redis
round trip per check on this stack, before any work of its own (make bench
prints the service against both).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from collections.abc import AsyncIterator
from typing import Any

from imlimits.v1 import limit_pb2, limit_pb2_grpc
from imlimits_server import event_loop
from imlimits_server.main import create_grpc_server
from imlimits_server.store import connections
from imlimits_server.store.connections import Connection

ADMITTED = limit_pb2.CheckResponse(code=0, info="admitted", allowed=True)
ADMITTED_RESULT = limit_pb2.CheckResult(check=ADMITTED)
RELEASED = limit_pb2.ReleaseResponse(code=0, info="released 1 memberships", released=1)
CONFIRMED = limit_pb2.HoldResponse(code=0, info="confirmed", confirmed=True)


class NoopLimits(limit_pb2_grpc.LimitServiceServicer):
    def __init__(self, redis: Connection | None = None) -> None:
        self._redis = redis

    async def _round_trip(self) -> None:
        if self._redis is not None:
            await self._redis.execute("PING")

    async def CreateGroup(self, request: Any, context: Any) -> limit_pb2.CheckResponse:
        await self._round_trip()
        return ADMITTED

    async def CreateRoom(self, request: Any, context: Any) -> limit_pb2.CheckResponse:
        await self._round_trip()
        return ADMITTED

    async def JoinGroup(self, request: Any, context: Any) -> limit_pb2.CheckResponse:
        await self._round_trip()
        return ADMITTED

    async def LeaveGroup(self, request: Any, context: Any) -> limit_pb2.ReleaseResponse:
        await self._round_trip()
        return RELEASED

    async def DestroyGroup(self, request: Any, context: Any) -> limit_pb2.ReleaseResponse:
        await self._round_trip()
        return RELEASED

    async def ConfirmHold(self, request: Any, context: Any) -> limit_pb2.HoldResponse:
        await self._round_trip()
        return CONFIRMED

    async def CancelHold(self, request: Any, context: Any) -> limit_pb2.ReleaseResponse:
        await self._round_trip()
        return RELEASED

    async def GetUsage(self, request: Any, context: Any) -> limit_pb2.Usage:
        return limit_pb2.Usage()

    async def VerifyUsage(self, request: Any, context: Any) -> limit_pb2.VerifyUsageResponse:
        return limit_pb2.VerifyUsageResponse()

    # The baseline of Batch and Stream: one answer per check, decided at once.
    async def Batch(self, request: Any, context: Any) -> limit_pb2.BatchResponse:
        return limit_pb2.BatchResponse(results=[ADMITTED_RESULT] * len(request.checks))

    async def Stream(self, request_iterator: Any, context: Any) -> AsyncIterator[limit_pb2.CheckResult]:
        async for _ in request_iterator:
            yield ADMITTED_RESULT

    # The baseline never measures onboarding: these answer at once, like the checks above.

    async def ImportGroups(self, request_iterator: Any, context: Any) -> limit_pb2.ImportGroupsResponse:
        return limit_pb2.ImportGroupsResponse()

    async def ExportGroups(self, request: Any, context: Any) -> AsyncIterator[limit_pb2.GroupRecord]:
        yield limit_pb2.GroupRecord()


async def serve(listen: str, redis_url: str | None) -> None:
    server = create_grpc_server()
    redis = connections.connect(redis_url, timeout=5.0) if redis_url else None
    limit_pb2_grpc.add_LimitServiceServicer_to_server(NoopLimits(redis), server)
    port = server.add_insecure_port(listen)
    await server.start()
    logging.info("no-op serving on %s:%d ", listen.rsplit(":", 1)[0], port)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    await stop.wait()
    await server.stop(1)
    if redis is not None:
        await redis.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--listen", default="127.0.0.1:0")
    parser.add_argument("--event-loop", default=event_loop.DEFAULT_EVENT_LOOP, choices=event_loop.EVENT_LOOPS,
                        help="the same choice as the service's, so that each is measured on the same loop")
    parser.add_argument("--redis-url", help="make each unary check wait for one Redis PING first")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    event_loop.run(serve(args.listen, args.redis_url), args.event_loop)
