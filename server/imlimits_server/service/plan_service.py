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
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import grpc
import redis.exceptions
from google.protobuf.message import Message

from imlimits.v1 import plan_pb2, plan_pb2_grpc
from imlimits_server.core import billing, plans, preview
from imlimits_server.core.billing import Prices
from imlimits_server.core.editions import Edition
from imlimits_server.core.errors import AlreadyExists, InvalidArgument, app_not_found
from imlimits_server.core.months import Month
from imlimits_server.core.plans import AppState, PlanRequest
from imlimits_server.service import convert, page_tokens, validation
from imlimits_server.service.errors import Contention, NotReady, grpc_errors
from imlimits_server.store.redis_store import RedisStore, StoredApp

audit_log = logging.getLogger("imlimits.audit")
log = logging.getLogger("imlimits.plans")

# Plan calls of one app are serialised without a visible failure (SPEC: never
# ABORTED). One process queues them on a per-app lock; replicas race on the
# stored version and the loser retries after a jittered, growing pause until
# the call's deadline, and only then answers UNAVAILABLE.
_RETRY_FIRST_PAUSE_SECONDS = 0.002
_RETRY_MAX_PAUSE_SECONDS = 0.1
# Pauses before reading back what a commit whose reply was lost did (about 0.9 s in all).
_READ_BACK_PAUSES_SECONDS = (0.02, 0.08, 0.2, 0.6)
# A call without a deadline waits at most this long for its turn.
_NO_DEADLINE_WAIT_SECONDS = 10.0

# ListApps page sizes (SPEC section 4): 0 asks for the default.
_DEFAULT_PAGE_SIZE = 100
_MAX_PAGE_SIZE = 1000

# Applies an operation at a time to the stored state (None for an unknown app).
_Operation = Callable[[AppState | None, datetime], AppState]


@dataclass(frozen=True)
class _Prelude:
    request_id: str
    requested_at: datetime | None
    fingerprint: str


@dataclass(frozen=True)
class _Attempt:
    """One read of the app with the operation applied; a replayed request_id leaves the state as read."""

    stored: StoredApp
    at: datetime
    state: AppState
    replayed: plan_pb2.App | None


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
        app_id, operation = self._upgrade(request)
        return await self._mutate(request, context, app_id, operation, dry_run=request.dry_run)

    @grpc_errors
    async def ChangePlan(self, request: plan_pb2.ChangePlanRequest,
                         context: grpc.aio.ServicerContext) -> plan_pb2.App:
        app_id, operation = self._change_plan(request)
        return await self._mutate(request, context, app_id, operation, dry_run=request.dry_run)

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
        return plan_pb2.ListPlanChangesResponse(changes=[convert.plan_change(c) for c in plans.plan_changes(state)],
                                                time_zone=self._tz.key)

    @grpc_errors
    async def GetBill(self, request: plan_pb2.GetBillRequest, context: grpc.aio.ServicerContext) -> plan_pb2.Bill:
        app_id = validation.app_id(request.app_id)
        month = validation.month(request.month)
        state = await self._load(app_id)
        current = Month.of(self._now(state), self._tz)
        return convert.bill(billing.bill(state, month, self._tz, self._prices, current))

    @grpc_errors
    async def PreviewPlanChange(self, request: plan_pb2.PreviewPlanChangeRequest,
                                context: grpc.aio.ServicerContext) -> plan_pb2.PlanPreview:
        """The dry run of the named Upgrade or ChangePlan, with what it would lock and charge."""
        change: plan_pb2.UpgradeRequest | plan_pb2.ChangePlanRequest
        kind = request.WhichOneof("change")
        if kind == "upgrade":
            change = request.upgrade
            app_id, operation = self._upgrade(change)
        elif kind == "change_plan":
            change = request.change_plan
            app_id, operation = self._change_plan(change)
        else:
            raise InvalidArgument("change", "must be an upgrade or a change_plan request")
        prelude = self._prelude(change)
        attempt = await self._attempt(app_id, prelude, operation, creates=False)
        # A request already made (its request_id replayed) would change nothing now: state is as read.
        before = _existing(app_id, attempt.stored.state)
        result = preview.preview(before, attempt.state, attempt.at, self._tz, self._prices)
        return plan_pb2.PlanPreview(
            app=convert.app(result.after, [item.value for item in result.locked]),
            newly_locked_items=[item.value for item in result.newly_locked],
            this_month=convert.bill(result.this_month),
            next_month=convert.bill(result.next_month),
        )

    # Shared steps

    def _upgrade(self, request: plan_pb2.UpgradeRequest) -> tuple[int, _Operation]:
        app_id = validation.app_id(request.app_id)
        target = convert.edition("edition", request.edition)
        if target not in plans.UPGRADE_TARGETS:
            raise InvalidArgument("edition", "Upgrade goes to EDITION_PRO or EDITION_ULTIMATE", "UPGRADE_TARGET")
        change = self._plan_request(request, target)
        return app_id, lambda state, at: plans.upgrade(_existing(app_id, state), change, at, self._tz,
                                                       request.request_id)

    def _change_plan(self, request: plan_pb2.ChangePlanRequest) -> tuple[int, _Operation]:
        app_id = validation.app_id(request.app_id)
        target = convert.edition("edition", request.edition) if request.HasField("edition") else None
        change = self._plan_request(request, target)
        return app_id, lambda state, at: plans.change_plan(_existing(app_id, state), change, at, self._tz,
                                                           request.request_id)


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

    def _prelude(self, request: Message) -> _Prelude:
        """What every plan call reads from its request before touching the store, in SPEC's refusal order."""
        request_id = validation.request_id(request.request_id)  # type: ignore[attr-defined]
        requested_at = self._requested_time(request)
        fingerprint = _fingerprint(request)
        self._require_ready()
        return _Prelude(request_id, requested_at, fingerprint)

    async def _attempt(self, app_id: int, prelude: _Prelude, operation: _Operation, *, creates: bool) -> _Attempt:
        """Read the app and apply the operation to what was read; the store is not written."""
        stored = await self._store.load_app(app_id, prelude.request_id)
        if stored.state is None and not creates:
            raise app_not_found(app_id)
        if stored.state is None:
            # Only CreateApp reaches here (it has no dry run): index before the creation commits.
            await self._store.index_app(app_id)
        if stored.stored_request:
            replayed = _replay(stored.stored_request, prelude.fingerprint)
            state = _existing(app_id, stored.state)
            return _Attempt(stored, prelude.requested_at or self._now(state), state, replayed)
        # Without a trusted `at`, a replica whose clock lags the app's last
        # change stamps the change at that moment rather than refusing it.
        at = prelude.requested_at or (self._now(stored.state) if stored.state else self._clock())
        return _Attempt(stored, at, operation(stored.state, at), None)

    async def _mutate(self, request: Message, context: grpc.aio.ServicerContext, app_id: int, operation: _Operation,
                      *, dry_run: bool, creates: bool = False) -> plan_pb2.App:
        """Read, apply, and commit if nobody wrote meanwhile; refusal order is SPEC section 1's."""
        prelude = self._prelude(request)
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
                attempt = await self._attempt(app_id, prelude, operation, creates=creates)
                if attempt.replayed is not None:
                    return attempt.replayed
                state, stored = attempt.state, attempt.stored
                answer = self._answer(state, attempt.at)
                if dry_run or (state is stored.state and not prelude.request_id):
                    return answer
                remembered = f"{prelude.fingerprint}:{base64.b64encode(answer.SerializeToString()).decode()}" \
                    if prelude.request_id else ""
                if state is stored.state:
                    # A request that changes nothing leaves the plan and its version alone, so it
                    # never makes a concurrent change retry; only its answer is remembered.
                    if await self._store.remember_request(app_id, prelude.request_id, remembered):
                        return answer
                elif await self._commit(stored, state, prelude.request_id, remembered):
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

    async def _commit(self, stored: StoredApp, state: AppState, request_id: str, remembered: str) -> bool:
        """Commit; when the reply is lost, learn from Redis what the attempt did instead of answering UNAVAILABLE.

        A lost reply is neither a conflict nor a commit. With a request id the
        stored answer says it: ours (committed: audited and answered), another
        (the loop replays it), none (not committed: the loop tries again; a
        first attempt still on its way then meets the request id or the new
        version, so the change is made once). Without one, only the plan as
        written says it; anything else stays UNAVAILABLE, since trying again
        could make the change twice.
        """
        try:
            return await self._store.commit_app(stored.version, state, request_id, remembered)
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as lost:
            for pause in _READ_BACK_PAUSES_SECONDS:
                await asyncio.sleep(pause)
                try:
                    after = await self._store.load_app(state.app_id, request_id)
                except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
                    continue
                if request_id:
                    return after.stored_request == remembered
                if after.state == state:
                    return True
                raise lost
            log.warning("app %d: the outcome of a plan change (request id %r) is unknown: redis did not answer",
                        state.app_id, request_id)
            raise lost

    @grpc_errors
    async def ListApps(self, request: plan_pb2.ListAppsRequest,
                       context: grpc.aio.ServicerContext) -> plan_pb2.ListAppsResponse:
        if request.page_size > _MAX_PAGE_SIZE:
            raise InvalidArgument("page_size", f"must be at most {_MAX_PAGE_SIZE} (0 means {_DEFAULT_PAGE_SIZE})")
        self._require_ready()
        secret = await self._store.page_token_secret()
        after = page_tokens.read(secret, request.page_token)
        states, more = await self._store.list_apps(after, request.page_size or _DEFAULT_PAGE_SIZE)
        return plan_pb2.ListAppsResponse(
            apps=[self._answer(state, self._now(state)) for state in states],
            next_page_token=page_tokens.issue(secret, states[-1].app_id) if more and states else "")


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

