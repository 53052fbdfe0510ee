"""LimitService: the checks IM backends call before creating groups, adding members and opening rooms."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc

from imlimits.v1 import limit_pb2, limit_pb2_grpc
from imlimits_server.metrics import count_hold_event
from imlimits_server.service import batching, convert, onboarding, validation
from imlimits_server.service.errors import grpc_errors, grpc_stream_errors
from imlimits_server.store.redis_store import RedisStore


class LimitService(limit_pb2_grpc.LimitServiceServicer):
    def __init__(self, store: RedisStore) -> None:
        self._store = store

    @grpc_errors
    async def CreateGroup(self, request: limit_pb2.CreateGroupRequest,
                          context: grpc.aio.ServicerContext) -> limit_pb2.CheckResponse:
        return convert.check_response(count_hold_event(await self._store.decide(convert.create_group(request))))

    @grpc_errors
    async def CreateRoom(self, request: limit_pb2.CreateRoomRequest,
                         context: grpc.aio.ServicerContext) -> limit_pb2.CheckResponse:
        return convert.check_response(count_hold_event(await self._store.decide(convert.create_room(request))))

    @grpc_errors
    async def JoinGroup(self, request: limit_pb2.JoinGroupRequest,
                        context: grpc.aio.ServicerContext) -> limit_pb2.CheckResponse:
        return convert.check_response(count_hold_event(await self._store.decide(convert.join_group(request))))

    @grpc_errors
    async def LeaveGroup(self, request: limit_pb2.LeaveGroupRequest,
                         context: grpc.aio.ServicerContext) -> limit_pb2.ReleaseResponse:
        return convert.release_response(await self._store.decide(convert.leave_group(request)))

    @grpc_errors
    async def DestroyGroup(self, request: limit_pb2.DestroyGroupRequest,
                           context: grpc.aio.ServicerContext) -> limit_pb2.ReleaseResponse:
        return convert.release_response(await self._store.decide(convert.destroy_group(request)))

    @grpc_errors
    async def ConfirmHold(self, request: limit_pb2.ConfirmHoldRequest,
                          context: grpc.aio.ServicerContext) -> limit_pb2.HoldResponse:
        check = convert.confirm_hold(request, await self._store.hold_ids())
        return convert.hold_response(count_hold_event(await self._store.decide(check)))

    @grpc_errors
    async def CancelHold(self, request: limit_pb2.CancelHoldRequest,
                         context: grpc.aio.ServicerContext) -> limit_pb2.ReleaseResponse:
        check = convert.cancel_hold(request, await self._store.hold_ids())
        return convert.release_response(count_hold_event(await self._store.decide(check)))

    @grpc_errors
    async def GetUsage(self, request: limit_pb2.GetUsageRequest,
                       context: grpc.aio.ServicerContext) -> limit_pb2.Usage:
        app_id = validation.app_id(request.app_id)
        user = validation.user_id("user", request.user) if request.HasField("user") else None
        group_id = validation.group_id("group_id", request.group_id) if request.HasField("group_id") else None
        return convert.usage(await self._store.usage(app_id, user, group_id))

    @grpc_errors
    async def VerifyUsage(self, request: limit_pb2.VerifyUsageRequest,
                          context: grpc.aio.ServicerContext) -> limit_pb2.VerifyUsageResponse:
        return convert.verification(await self._store.verify(validation.app_id(request.app_id), request.repair))

    @grpc_errors
    async def Batch(self, request: limit_pb2.BatchRequest,
                    context: grpc.aio.ServicerContext) -> limit_pb2.BatchResponse:
        batching.batch_size(len(request.checks))
        return limit_pb2.BatchResponse(results=await batching.decide(self._store, request.checks, "Batch"))

    async def Stream(self, request_iterator: AsyncIterator[limit_pb2.Check],
                     context: grpc.aio.ServicerContext) -> AsyncIterator[limit_pb2.CheckResult]:
        async for results in batching.rounds(self._store, request_iterator):
            for result in results:
                yield result

    @grpc_errors
    async def ImportGroups(self, request_iterator: AsyncIterator[limit_pb2.ImportGroupsRequest],
                           context: grpc.aio.ServicerContext) -> limit_pb2.ImportGroupsResponse:
        def cut() -> bool:
            remaining = context.time_remaining()
            return bool(context.cancelled()) or (remaining is not None and remaining <= 0)

        return onboarding.import_response(await onboarding.import_groups(self._store, request_iterator, cut))

    @grpc_stream_errors
    async def ExportGroups(self, request: limit_pb2.ExportGroupsRequest,
                           context: grpc.aio.ServicerContext) -> AsyncIterator[limit_pb2.GroupRecord]:
        async for record in onboarding.exported(self._store, validation.app_id(request.app_id)):
            yield record
