"""PlanService: create, upgrade, reconfigure (变配) and deactivate (停用) an app's plan."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import random
import weakref
from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

import grpc
from google.protobuf.message import Message

from imlimits.v1 import plan_pb2, plan_pb2_grpc
from imlimits_server.core import billing, plans
from imlimits_server.core.billing import Prices
from imlimits_server.core.editions import Edition
from imlimits_server.core.errors import AlreadyExists, InvalidArgument, app_not_found
from imlimits_server.core.months import Month
from imlimits_server.core.plans import AppState, PlanRequest
from imlimits_server.service import convert, validation
from imlimits_server.service.errors import Contention, NotReady, grpc_errors
from imlimits_server.store.redis_store import RedisStore

audit_log = logging.getLogger("imlimits.audit")

# Plan calls of one app are serialised without a visible failure (SPEC: never
# ABORTED). One process queues them on a per-app lock; replicas race on the
# stored version and the loser retries after a jittered, growing pause until
# the call's deadline, and only then answers UNAVAILABLE.
_RETRY_FIRST_PAUSE_SECONDS = 0.002
_RETRY_MAX_PAUSE_SECONDS = 0.1
# A call without a deadline waits at most this long for its turn.
_NO_DEADLINE_WAIT_SECONDS = 10.0

# Applies an operation at a time to the stored state (None for an unknown app).
_Operation = Callable[[AppState | None, datetime], AppState]


class PlanService(plan_pb2_grpc.PlanServiceServicer):
    def __init__(self, store: RedisStore, tz: ZoneInfo, clock: Callable[[], datetime],
                 trust_client_time: bool, prices: Prices, ready: asyncio.Event,
                 identify: Callable[[grpc.aio.ServicerContext], str] = lambda context: "anonymous",
                 no_deadline_wait: float = _NO_DEADLINE_WAIT_SECONDS) -> None:
        self._store = store
        self._tz = tz
        self._prices = prices
        # Set once the deployment's time zone is confirmed against Redis: months depend on it.
        self._ready = ready
        self._identify = identify
        self._clock = clock
        self._trust_client_time = trust_client_time
        self._no_deadline_wait = no_deadline_wait
        # One lock per app with calls in flight; an app's lock goes away with its last caller.
        self._app_locks: weakref.WeakValueDictionary[int, asyncio.Lock] = weakref.WeakValueDictionary()

    @grpc_errors
    async def CreateApp(self, request: plan_pb2.CreateAppRequest, context: grpc.aio.ServicerContext) -> plan_pb2.App:
        app_id = validation.app_id(request.app_id)

        def create(state: AppState | None, at: datetime) -> AppState:
            if state is not None:
                raise AlreadyExists(f"app {app_id} already exists")
            return plans.create_app(app_id, at, request.request_id)

        return await self._mutate(request, context, app_id, create, dry_run=False, creates=True)

    @grpc_errors
    async def GetApp(self, request: plan_pb2.GetAppRequest, context: grpc.aio.ServicerContext) -> plan_pb2.App:
        state = await self._load(validation.app_id(request.app_id))
        return self._answer(state, self._now(state))

    @grpc_errors
    async def Upgrade(self, request: plan_pb2.UpgradeRequest, context: grpc.aio.ServicerContext) -> plan_pb2.App:
        app_id = validation.app_id(request.app_id)
        target = convert.edition("edition", request.edition)
        if target not in plans.UPGRADE_TARGETS:
            raise InvalidArgument("edition", "Upgrade goes to EDITION_PRO or EDITION_ULTIMATE")
        change = self._plan_request(request, target)
        return await self._mutate(
            request, context, app_id,
            lambda state, at: plans.upgrade(_existing(app_id, state), change, at, self._tz, request.request_id),
            dry_run=request.dry_run)

    @grpc_errors
    async def ChangePlan(self, request: plan_pb2.ChangePlanRequest,
                         context: grpc.aio.ServicerContext) -> plan_pb2.App:
        app_id = validation.app_id(request.app_id)
        target = convert.edition("edition", request.edition) if request.HasField("edition") else None
        change = self._plan_request(request, target)
        return await self._mutate(
            request, context, app_id,
            lambda state, at: plans.change_plan(_existing(app_id, state), change, at, self._tz, request.request_id),
            dry_run=request.dry_run)

    @grpc_errors
    async def Deactivate(self, request: plan_pb2.DeactivateRequest,
                         context: grpc.aio.ServicerContext) -> plan_pb2.App:
        app_id = validation.app_id(request.app_id)
        validation.confirm(request.confirm)
        return await self._mutate(
            request, context, app_id,
            lambda state, at: plans.deactivate(_existing(app_id, state), at, request.request_id),
            dry_run=False)

    @grpc_errors
    async def ListPlanChanges(self, request: plan_pb2.ListPlanChangesRequest,
                              context: grpc.aio.ServicerContext) -> plan_pb2.ListPlanChangesResponse:
        state = await self._load(validation.app_id(request.app_id))
        return plan_pb2.ListPlanChangesResponse(changes=[convert.plan_change(c) for c in plans.plan_changes(state)])

    @grpc_errors
    async def GetBill(self, request: plan_pb2.GetBillRequest, context: grpc.aio.ServicerContext) -> plan_pb2.Bill:
        app_id = validation.app_id(request.app_id)
        month = validation.month(request.month)
        state = await self._load(app_id)
        current = Month.of(self._now(state), self._tz)
        return convert.bill(billing.bill(state, month, self._tz, self._prices, current))

    # Shared steps

    def _now(self, state: AppState) -> datetime:
        """The app's present: never before its last change, which a trusted client may have stamped ahead."""
        return max(self._clock(), state.last_at)

    def _plan_request(self, request: plan_pb2.UpgradeRequest | plan_pb2.ChangePlanRequest,
                      edition: Edition | None) -> PlanRequest:
        return PlanRequest(
            edition=edition,
            av_room_unlimited=request.av_room_unlimited if request.HasField("av_room_unlimited") else None,
            user_group_limit=request.user_group_limit if request.HasField("user_group_limit") else None,
            group_member_limit=request.group_member_limit if request.HasField("group_member_limit") else None,
        )

    async def _load(self, app_id: int) -> AppState:
        self._require_ready()
        return _existing(app_id, (await self._store.load_app(app_id)).state)

    def _require_ready(self) -> None:
        if not self._ready.is_set():
            raise NotReady("the server has not yet reached Redis to confirm its time zone; retry shortly")

    def _answer(self, state: AppState, at: datetime) -> plan_pb2.App:
        return convert.app(state, [item.value for item in plans.locked_items(state, at, self._tz)])

    def _requested_time(self, request: Message) -> datetime | None:
        if not request.HasField("at"):
            return None
        if not self._trust_client_time:
            raise InvalidArgument("at", "is honoured only by a server started with --trust-client-time")
        return validation.at(request.at)  # type: ignore[attr-defined]

    async def _mutate(self, request: Message, context: grpc.aio.ServicerContext, app_id: int, operation: _Operation,
                      *, dry_run: bool, creates: bool = False) -> plan_pb2.App:
        """Read, apply, and commit if nobody wrote meanwhile; refusal order is SPEC section 1's."""
        request_id = validation.request_id(request.request_id)  # type: ignore[attr-defined]
        requested_at = self._requested_time(request)
        fingerprint = _fingerprint(request)
        self._require_ready()
        loop = asyncio.get_running_loop()
        remaining = context.time_remaining()
        # The last tenth of the caller's time is left for UNAVAILABLE to reach it before its deadline.
        deadline = loop.time() + (self._no_deadline_wait if remaining is None else remaining * 0.9)
        lock = self._app_locks.get(app_id)
        if lock is None:
            lock = self._app_locks[app_id] = asyncio.Lock()
        try:
            async with asyncio.timeout_at(deadline):
                await lock.acquire()
        except TimeoutError:
            raise Contention(f"app {app_id}: other plan calls held it until this call's deadline; retry") from None
        try:
            pause = _RETRY_FIRST_PAUSE_SECONDS
            while True:
                stored = await self._store.load_app(app_id, request_id)
                if stored.state is None and not creates:
                    raise app_not_found(app_id)
                if stored.stored_request:
                    return _replay(stored.stored_request, fingerprint)
                # Without a trusted `at`, a replica whose clock lags the app's last
                # change stamps the change at that moment rather than refusing it.
                at = requested_at or (self._now(stored.state) if stored.state else self._clock())
                state = operation(stored.state, at)
                answer = self._answer(state, at)
                if dry_run or (state is stored.state and not request_id):
                    return answer
                remembered = f"{fingerprint}:{base64.b64encode(answer.SerializeToString()).decode()}" \
                    if request_id else ""
                if state is stored.state:
                    # A request that changes nothing leaves the plan and its version alone, so it
                    # never makes a concurrent change retry; only its answer is remembered.
                    if await self._store.remember_request(app_id, request_id, remembered):
                        return answer
                elif await self._store.commit_app(stored.version, state, request_id, remembered):
                    _audit(self._identify(context), state)
                    return answer
                # Another replica wrote first (or answered this request id): read again after a pause.
                delay = random.uniform(0, pause)
                if loop.time() + delay >= deadline:
                    raise Contention(f"app {app_id}: concurrent plan changes on other replicas kept this call "
                                     "from committing before its deadline; retry")
                await asyncio.sleep(delay)
                pause = min(pause * 2, _RETRY_MAX_PAUSE_SECONDS)
        finally:
            lock.release()

    # Placeholders until issues 12 and 15 land; each is replaced by its implementation.
    async def ListApps(self, request: plan_pb2.ListAppsRequest,
                       context: grpc.aio.ServicerContext) -> plan_pb2.ListAppsResponse:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "ListApps is not served yet")
        raise AssertionError

    async def PreviewPlanChange(self, request: plan_pb2.PreviewPlanChangeRequest,
                                context: grpc.aio.ServicerContext) -> plan_pb2.PlanPreview:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "PreviewPlanChange is not served yet")
        raise AssertionError


def _audit(who: str, state: AppState) -> None:
    """One structured line per accepted plan change (the event a change appended): the audit trail."""
    event = state.events[-1]
    changes = plans.plan_changes(AppState(state.app_id, (event,)))
    audit_log.info("%s", json.dumps({
        "event": "plan_change", "app_id": state.app_id, "who": who, "operation": event.operation.value,
        "request_id": event.request_id, "at": event.at.isoformat(),
        "changes": [{"item": c.item, "from": c.old_value, "to": c.new_value, "implicit": c.implicit} for c in changes],
    }, ensure_ascii=False))


def _existing(app_id: int, state: AppState | None) -> AppState:
    if state is None:
        raise app_not_found(app_id)
    return state


def _fingerprint(request: Message) -> str:
    """What a retry must repeat exactly; dry_run is left out so a dry run may ask about a done request."""
    copy = type(request)()
    copy.CopyFrom(request)
    if copy.DESCRIPTOR.fields_by_name.get("dry_run") is not None:
        copy.ClearField("dry_run")
    digest = hashlib.sha256(copy.DESCRIPTOR.full_name.encode() + copy.SerializeToString(deterministic=True))
    return digest.hexdigest()


def _replay(stored: str, fingerprint: str) -> plan_pb2.App:
    stored_fingerprint, _, answer = stored.partition(":")
    if stored_fingerprint != fingerprint:
        raise InvalidArgument("request_id", "was already used for a different request to this app")
    return plan_pb2.App.FromString(base64.b64decode(answer))

