"""LimitService: the checks IM backends call before creating groups, adding members and opening rooms."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc

from imlimits.v1 import limit_pb2, limit_pb2_grpc
from imlimits_server.core.checks import GroupType
from imlimits_server.service import convert, onboarding, validation
from imlimits_server.service.errors import grpc_errors, grpc_stream_errors
from imlimits_server.store.redis_store import RedisStore


class LimitService(limit_pb2_grpc.LimitServiceServicer):
    def __init__(self, store: RedisStore) -> None:
        self._store = store

    @grpc_errors
    async def CreateGroup(self, request: limit_pb2.CreateGroupRequest,
                          context: grpc.aio.ServicerContext) -> limit_pb2.CheckResponse:
        result = await self._store.create_group(
            validation.app_id(request.app_id),
            validation.group_id("group_id", request.group_id),
            convert.group_type(request.type),
            validation.user_id("owner", request.owner, allow_empty=True),
            validation.users("members", request.members, allow_empty=True),
            request.max_members,
            request.dry_run,
        )
        return convert.check_response(result)

    @grpc_errors
    async def CreateRoom(self, request: limit_pb2.CreateRoomRequest,
                         context: grpc.aio.ServicerContext) -> limit_pb2.CheckResponse:
        result = await self._store.create_group(
            validation.app_id(request.app_id),
            validation.group_id("room_id", request.room_id),
            GroupType.AVCHATROOM,
            validation.user_id("owner", request.owner, allow_empty=True),
            [],
            0,
            request.dry_run,
        )
        return convert.check_response(result)

    @grpc_errors
    async def JoinGroup(self, request: limit_pb2.JoinGroupRequest,
                        context: grpc.aio.ServicerContext) -> limit_pb2.CheckResponse:
        result = await self._store.join_group(
            validation.app_id(request.app_id),
            validation.group_id("group_id", request.group_id),
            validation.users("users", request.users),
            request.dry_run,
        )
        return convert.check_response(result)

    @grpc_errors
    async def LeaveGroup(self, request: limit_pb2.LeaveGroupRequest,
                         context: grpc.aio.ServicerContext) -> limit_pb2.ReleaseResponse:
        result = await self._store.leave_group(
            validation.app_id(request.app_id),
            validation.group_id("group_id", request.group_id),
            validation.users("users", request.users),
        )
        return convert.release_response(result)

    @grpc_errors
    async def DestroyGroup(self, request: limit_pb2.DestroyGroupRequest,
                           context: grpc.aio.ServicerContext) -> limit_pb2.ReleaseResponse:
        result = await self._store.destroy_group(
            validation.app_id(request.app_id), validation.group_id("group_id", request.group_id))
        return convert.release_response(result)

    @grpc_errors
    async def GetUsage(self, request: limit_pb2.GetUsageRequest,
                       context: grpc.aio.ServicerContext) -> limit_pb2.Usage:
        app_id = validation.app_id(request.app_id)
        user = validation.user_id("user", request.user) if request.HasField("user") else None
        group_id = validation.group_id("group_id", request.group_id) if request.HasField("group_id") else None
        usage = await self._store.usage(app_id, user, group_id)
        return limit_pb2.Usage(
            av_rooms=usage.av_rooms,
            groups=usage.groups,
            limits=convert.limits(usage.limits),
            user_groups=usage.user_groups,
            group_members=usage.group_members,
        )

    @grpc_errors
    async def VerifyUsage(self, request: limit_pb2.VerifyUsageRequest,
                          context: grpc.aio.ServicerContext) -> limit_pb2.VerifyUsageResponse:
        return convert.verification(await self._store.verify(validation.app_id(request.app_id), request.repair))

    # Placeholders until issues 12 and 13 land; each is replaced by its implementation.
    async def Batch(self, request: limit_pb2.BatchRequest,
                    context: grpc.aio.ServicerContext) -> limit_pb2.BatchResponse:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "Batch is not served yet")
        raise AssertionError

    async def Stream(self, request_iterator: object,
                     context: grpc.aio.ServicerContext) -> AsyncIterator[limit_pb2.CheckResult]:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "Stream is not served yet")
        yield limit_pb2.CheckResult()

    @grpc_errors
    async def ImportGroups(self, request_iterator: AsyncIterator[limit_pb2.ImportGroupsRequest],
                           context: grpc.aio.ServicerContext) -> limit_pb2.ImportGroupsResponse:
        return onboarding.import_response(await onboarding.import_groups(self._store, request_iterator))

    @grpc_stream_errors
    async def ExportGroups(self, request: limit_pb2.ExportGroupsRequest,
                           context: grpc.aio.ServicerContext) -> AsyncIterator[limit_pb2.GroupRecord]:
        async for record in onboarding.exported(self._store, validation.app_id(request.app_id)):
            yield record
