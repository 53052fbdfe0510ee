"""The asyncio client: one channel shared by `check` (LimitService) and `admin` (PlanService)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, cast

import grpc

from imlimits.v1 import limit_pb2, limit_pb2_grpc, plan_pb2_grpc
from imlimits_client import calls, onboarding
from imlimits_client.batching import (
    DEFAULT_COALESCE_CONFIRM_WINDOW,
    DEFAULT_COALESCE_MAX,
    DEFAULT_COALESCE_WINDOW,
    BatchAnswer,
    BatchRun,
    Coalescer,
    CoalesceVia,
)
from imlimits_client.calls import Call, R
from imlimits_client.errors import ImlimitsError, from_rpc_error
from imlimits_client.holds import AsyncHoldBlock
from imlimits_client.policy import Attempts, OnUnavailable, RetryPolicy, unavailable_answer
from imlimits_client.transport import check_token_transport
from imlimits_client.types import (
    App,
    AppPage,
    Bill,
    CheckResult,
    Edition,
    GroupRecord,
    GroupType,
    HoldResult,
    ImportResult,
    PlanChange,
    PlanPreview,
    Released,
    Usage,
    Verification,
)

DEFAULT_CHECK_TIMEOUT = 0.2
DEFAULT_ADMIN_TIMEOUT = 5.0


class AsyncClient:
    """Connects to imlimits at `target` ("host:port").

    `check_timeout` bounds each check, retries included; `on_unavailable`
    decides a check's answer when the service cannot be reached: "deny"
    (fail closed), "allow" (fail open, so an outage need not stop chat) or
    "raise" (imlimits_client.Unavailable). A `token` without `credentials` (TLS)
    is refused for a target beyond this host unless `insecure` is true.

    `coalesce=True` sends the single checks of concurrent tasks together:
    a check waits at most `coalesce_window` seconds for others (a confirm
    or a cancel `coalesce_confirm_window`), and
    `coalesce_max` waiting checks go at once, in one Batch call
    (`coalesce_via="batch"`, the default) or over one long-lived Stream
    (`"stream"`). Callers keep their code; each check keeps its deadline,
    policy and retries. Batch is the default because gRPC's per-message
    cost in Python makes a Stream message nearly as dear as a unary call
    (docs/batching.md has the figures).
    """

    def __init__(self, target: str, *, check_timeout: float = DEFAULT_CHECK_TIMEOUT,
                 admin_timeout: float = DEFAULT_ADMIN_TIMEOUT, on_unavailable: OnUnavailable = "deny",
                 retry: RetryPolicy | None = None, token: str | None = None,
                 credentials: grpc.ChannelCredentials | None = None, insecure: bool = False,
                 coalesce: bool = False, coalesce_window: float = DEFAULT_COALESCE_WINDOW,
                 coalesce_max: int = DEFAULT_COALESCE_MAX, coalesce_via: CoalesceVia = "batch",
                 coalesce_confirm_window: float = DEFAULT_COALESCE_CONFIRM_WINDOW) -> None:
        check_token_transport(target, token, credentials, insecure)
        self._channel = grpc.aio.secure_channel(target, credentials) if credentials \
            else grpc.aio.insecure_channel(target)
        self._stubs: dict[str, Any] = {"check": limit_pb2_grpc.LimitServiceStub(self._channel),
                                       "admin": plan_pb2_grpc.PlanServiceStub(self._channel)}
        self._timeouts = {"check": check_timeout, "admin": admin_timeout}
        self._on_unavailable = on_unavailable
        self._retry = retry or RetryPolicy()
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self._coalescer = Coalescer(self._stubs["check"], self._metadata, coalesce_window, coalesce_max,
                                    coalesce_via, coalesce_confirm_window) if coalesce else None
        self.check = CheckClient(self)
        self.admin = AdminClient(self)

    async def run(self, call: Call[R]) -> R:
        attempts = Attempts(self._retry, self._timeouts[call.service], call.retry_safe)
        while True:
            try:
                if self._coalescer is not None and call.check_field:
                    return call.convert(await self._coalescer.send(call, attempts.remaining()))
                return call.convert(await self._unary(call, attempts.remaining()))
            except ImlimitsError as error:
                delay = attempts.retry_delay(error)
                if delay is None:
                    return cast(R, unavailable_answer(call, error, self._on_unavailable))
                await asyncio.sleep(delay)

    async def _unary(self, call: Call[Any], timeout: float) -> Any:
        try:
            return await getattr(self._stubs[call.service], call.method)(call.request, timeout=timeout,
                                                                         metadata=self._metadata)
        except grpc.RpcError as rpc_error:
            raise from_rpc_error(rpc_error) from None

    async def batch(self, checks: Sequence[Call[Any]]) -> list[BatchAnswer]:
        run = BatchRun(checks, self._retry, self._timeouts["check"], self._on_unavailable)
        while True:
            try:
                run.answered(await self._stubs["check"].Batch(run.request(), timeout=run.attempts.remaining(),
                                                              metadata=self._metadata))
            except grpc.RpcError as rpc_error:
                run.failed(rpc_error)
            delay = run.retry_delay()
            if delay is None:
                return run.results()
            await asyncio.sleep(delay)

    async def close(self) -> None:
        if self._coalescer is not None:
            await self._coalescer.close()
        await self._channel.close()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        await self.close()


class CheckClient:
    """LimitService: what IM backends call before creating groups, adding members and opening rooms."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def create_group(self, app_id: int, group_id: str, type: GroupType = GroupType.WORK, owner: str = "",
                     members: Sequence[str] = (), max_members: int = 0, dry_run: bool = False, *,
                     hold_seconds: int = 0, request_id: str | None = None) -> CheckResult:
        """`hold_seconds` > 0 holds what is admitted until confirm_hold (docs/holds.md): see `held`."""
        return await self._client.run(calls.create_group(app_id, group_id, type, owner, members, max_members, dry_run,
                                                   hold_seconds, request_id))

    async def create_room(self, app_id: int, room_id: str, owner: str = "", dry_run: bool = False, *,
                    hold_seconds: int = 0, request_id: str | None = None) -> CheckResult:
        return await self._client.run(calls.create_room(app_id, room_id, owner, dry_run, hold_seconds, request_id))

    async def join_group(self, app_id: int, group_id: str, users: Sequence[str], dry_run: bool = False, *,
                   hold_seconds: int = 0, request_id: str | None = None) -> CheckResult:
        return await self._client.run(calls.join_group(app_id, group_id, users, dry_run, hold_seconds, request_id))

    async def confirm_hold(self, app_id: int, hold_id: str) -> HoldResult:
        """Make what a held check admitted permanent; `confirmed` false: it had been cancelled or had expired."""
        return await self._client.run(calls.confirm_hold(app_id, hold_id))

    async def cancel_hold(self, app_id: int, hold_id: str) -> Released:
        """Release at once what a held check admitted (the act did not happen)."""
        return await self._client.run(calls.cancel_hold(app_id, hold_id))

    def held(self, app_id: int, result: CheckResult) -> AsyncHoldBlock:
        """`async with client.check.held(app_id, result):` around the act: confirms the hold when the block
        succeeds (HoldLost if it had ended), cancels it when the block raises (imlimits_client.holds)."""
        return AsyncHoldBlock(lambda hold_id: self.confirm_hold(app_id, hold_id),
                         lambda hold_id: self.cancel_hold(app_id, hold_id), result)

    async def leave_group(self, app_id: int, group_id: str, users: Sequence[str]) -> Released:
        return await self._client.run(calls.leave_group(app_id, group_id, users))

    async def destroy_group(self, app_id: int, group_id: str) -> Released:
        return await self._client.run(calls.destroy_group(app_id, group_id))

    async def batch(self, checks: Sequence[Call[Any]]) -> list[BatchAnswer]:
        """Up to 1000 checks (built with imlimits_client.checks) in one call; one answer per check, in order.

        Each answer is what the single call would return (CheckResult,
        Released) or the error it would raise, as a value: one bad check
        never fails the others. Checks on one app take effect in order.
        """
        return await self._client.batch(checks)

    async def usage(self, app_id: int, user: str | None = None, group_id: str | None = None) -> Usage:
        return await self._client.run(calls.usage(app_id, user, group_id))

    async def verify_usage(self, app_id: int, repair: bool = False) -> Verification:
        """Recount usage from the membership sets; `repair` fixes each count that drifted."""
        return await self._client.run(calls.verify_usage(app_id, repair))


class AdminClient:
    """PlanService: create, upgrade, reconfigure (变配), deactivate (停用), history and bills.

    Every change carries a request_id (one is generated when none is given),
    so retrying after a lost answer never applies it twice.
    """

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def create_app(self, app_id: int, request_id: str | None = None, at: datetime | None = None) -> App:
        return await self._client.run(calls.create_app(app_id, request_id, at))

    async def get_app(self, app_id: int) -> App:
        return await self._client.run(calls.get_app(app_id))

    async def upgrade(self, app_id: int, edition: Edition, *, av_room_unlimited: bool | None = None,
                user_group_limit: int | None = None, group_member_limit: int | None = None,
                request_id: str | None = None, at: datetime | None = None, dry_run: bool = False) -> App:
        return await self._client.run(calls.upgrade(app_id, edition, av_room_unlimited, user_group_limit,
                                              group_member_limit, request_id, at, dry_run))

    async def change_plan(self, app_id: int, *, edition: Edition | None = None, av_room_unlimited: bool | None = None,
                    user_group_limit: int | None = None, group_member_limit: int | None = None,
                    request_id: str | None = None, at: datetime | None = None, dry_run: bool = False) -> App:
        return await self._client.run(calls.change_plan(app_id, edition, av_room_unlimited, user_group_limit,
                                                  group_member_limit, request_id, at, dry_run))

    async def preview_upgrade(self, app_id: int, edition: Edition, *, av_room_unlimited: bool | None = None,
                        user_group_limit: int | None = None, group_member_limit: int | None = None,
                        request_id: str | None = None, at: datetime | None = None) -> PlanPreview:
        """What `upgrade` with the same arguments would do and cost (PreviewPlanChange); changes nothing."""
        return await self._client.run(calls.preview_upgrade(app_id, edition, av_room_unlimited, user_group_limit,
                                                      group_member_limit, request_id, at))

    async def preview_change_plan(self, app_id: int, *, edition: Edition | None = None,
                            av_room_unlimited: bool | None = None, user_group_limit: int | None = None,
                            group_member_limit: int | None = None, request_id: str | None = None,
                            at: datetime | None = None) -> PlanPreview:
        """What `change_plan` with the same arguments would do and cost (PreviewPlanChange); changes nothing."""
        return await self._client.run(calls.preview_change_plan(app_id, edition, av_room_unlimited, user_group_limit,
                                                          group_member_limit, request_id, at))

    async def deactivate(self, app_id: int, request_id: str | None = None, at: datetime | None = None) -> App:
        """Immediate and irreversible."""
        return await self._client.run(calls.deactivate(app_id, request_id, at))

    async def list_plan_changes(self, app_id: int) -> list[PlanChange]:
        return await self._client.run(calls.list_plan_changes(app_id))

    async def get_bill(self, app_id: int, month: str) -> Bill:
        return await self._client.run(calls.get_bill(app_id, month))

    async def list_apps(self, page_size: int = 0, page_token: str = "") -> AppPage:
        """One page of apps by ascending app_id; `page_size` 0 means the server's default (100)."""
        return await self._client.run(calls.list_apps(page_size, page_token))

    async def import_groups(self, app_id: int, records: Iterable[GroupRecord] | AsyncIterable[GroupRecord],
                            replace: bool = False, timeout: float | None = None) -> ImportResult:
        """Record the platform's existing groups (no limit checked); see docs/onboarding.md.

        If `records` raises, the stream is cancelled (what was sent stays
        applied, nothing is replaced) and that exception is raised here.
        """
        guarded = onboarding.AsyncGuarded(records)
        stub = self._client._stubs["check"]
        call = stub.ImportGroups(onboarding.async_requests(app_id, guarded, replace), timeout=timeout,
                                 metadata=self._client._metadata)
        guarded.start(call.cancel)
        try:
            return ImportResult.from_proto(await call)
        except (grpc.RpcError, asyncio.CancelledError) as rpc_error:
            if guarded.failure is not None:
                raise guarded.failure from None
            if isinstance(rpc_error, asyncio.CancelledError):
                raise
            raise from_rpc_error(rpc_error) from None

    async def export_groups(self, app_id: int, timeout: float | None = None) -> AsyncIterator[GroupRecord]:
        """Every group of the app, in records of at most 10,000 members."""
        stub = self._client._stubs["check"]
        try:
            async for message in stub.ExportGroups(limit_pb2.ExportGroupsRequest(app_id=app_id), timeout=timeout,
                                                   metadata=self._client._metadata):
                yield GroupRecord.from_proto(message)
        except grpc.RpcError as rpc_error:
            raise from_rpc_error(rpc_error) from None
