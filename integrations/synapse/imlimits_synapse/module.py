"""LimitsModule: what Synapse loads. It registers the callbacks and runs what translate.py decides.

The pre-checks hold what they admit (SPEC section 6); on_new_event, once
Synapse has persisted the event, confirms the hold. What Synapse refuses after
the pre-check admitted it is never persisted, never confirmed, and released by
imlimits when the hold expires. Releases and confirmations run in the
background so that no room's /sync waits on imlimits.
"""

from __future__ import annotations

import contextvars
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, LiteralString

from synapse.module_api import EventBase, ModuleApi, Requester, StateMap
from synapse.module_api.errors import ConfigError, SynapseError
from twisted.internet import reactor
from twisted.internet.defer import CancelledError

from imlimits_client import CheckResult, ImCode, ImlimitsError, NotFound, Unavailable
from imlimits_synapse import refusals, translate
from imlimits_synapse.config import ConfigProblem, ModuleConfig, parse
from imlimits_synapse.ids import group_key, user_key
from imlimits_synapse.limits import CHECK_TIMEOUT, Limits
from imlimits_synapse.translate import RoomKind

logger = logging.getLogger(__name__)

# A release or confirmation that imlimits cannot take now is retried this long, with backoff up to RETRY_MAX.
RELEASE_GIVE_UP_SECONDS = 900.0
RETRY_FIRST, RETRY_MAX = 0.2, 30.0


@dataclass(frozen=True)
class _Creation:
    """A createRoom in progress, from on_create_room to its create event (see translate.py)."""

    creator: str
    kind: RoomKind


_creation: contextvars.ContextVar[_Creation | None] = contextvars.ContextVar("imlimits_creation", default=None)


@dataclass(frozen=True)
class _Hold:
    """A held check waiting for its event to be persisted (confirmed from on_new_event)."""

    hold_id: str
    checked: float  # time.monotonic() of the check
    hold_seconds: int

    @property
    def lapses(self) -> float:
        return self.checked + self.hold_seconds


@dataclass(frozen=True)
class _HeldRoom:
    hold: _Hold
    kind: RoomKind
    creator: str


@dataclass
class _Departure:
    """A local member's leave or ban, admitted and soon persisted, whose release has not been made yet.

    on_new_event releases it; a rejoin that comes first (the leave's 200 can
    reach the client before on_new_event runs) releases it itself, before its
    JoinGroup, so that the late release cannot take the new membership.
    """

    since: float = field(default_factory=time.monotonic)
    released: bool = False
    in_flight: bool = False


class LimitsModule:
    """modules: [{module: imlimits_synapse.LimitsModule, config: {target: ..., app_id: ...}}]"""

    def __init__(self, config: ModuleConfig, api: ModuleApi) -> None:
        if not hasattr(api, "defer_to_threadpool"):
            raise ConfigError("imlimits_synapse needs Synapse 1.140 or later (ModuleApi.defer_to_threadpool)")
        self._api = api
        self._config = config
        self._limits = Limits(api, config)
        self._departures: dict[tuple[str, str], _Departure] = {}
        self._held_rooms: dict[str, _HeldRoom] = {}
        self._held_joins: dict[tuple[str, str], list[_Hold]] = {}
        api.register_third_party_rules_callbacks(
            on_create_room=self.on_create_room, check_event_allowed=self.check_event_allowed,
            on_new_event=self.on_new_event, check_can_shutdown_room=self.check_can_shutdown_room)
        api.run_as_background_process("imlimits_probe_app", self._probe_app)
        logger.info("imlimits: app %d at %s, hold_seconds %d, on_unavailable %s, on %s", config.app_id,
                    config.target, config.hold_seconds, config.on_unavailable, type(reactor).__name__)

    @staticmethod
    def parse_config(raw: dict[str, Any]) -> ModuleConfig:
        try:
            return parse(raw)
        except ConfigProblem as problem:
            raise ConfigError(str(problem), path=(problem.key,)) from None

    # -- callbacks ---------------------------------------------------------------------------------------------

    async def on_create_room(self, requester: Requester, body: dict[str, Any], is_requester_admin: bool) -> None:
        creator = requester.user.to_string()
        kind = translate.room_kind(body)
        _creation.set(_Creation(creator, kind))
        if kind.group_type is None:
            return
        # Refused here, before Synapse writes anything: room versions before 12 store the room and its alias
        # before the create event, where the real (held) check is made.
        probe = f"dry-run:{time.monotonic_ns()}"
        try:
            result = await self._limits.create_group(probe, kind.group_type, user_key(creator), dry_run=True)
        except CancelledError:
            raise
        except ImlimitsError as error:
            logger.error("imlimits: checking a new room of %s: %s", creator, error)
            self._unavailable(creator)
            return
        except Exception:
            logger.exception("imlimits: checking a new room of %s failed", creator)
            self._unavailable(creator)
            return
        self._answer(result, creator)

    async def check_event_allowed(self, event: EventBase, state: StateMap[EventBase]) -> tuple[bool, None]:
        create = state.get(("m.room.create", ""))
        decision = translate.before(_event(event), _membership(state, event.get_state_key()),
                                    create.sender if create is not None else None, self._api.is_mine)
        if decision is None:
            return True, None  # messages and most state events: nothing to count, no call
        try:
            await self._before(event, state, decision)
        except (SynapseError, CancelledError):
            raise
        except ImlimitsError as error:
            # Not a quota answer (an unknown app, say): logged, and decided as if imlimits could not be reached.
            logger.error("imlimits: checking %s in %s: %s", event.type, event.room_id, error)
            self._unavailable(event.sender)
        except Exception:
            # Anything else would make Synapse answer 500 M_UNKNOWN; it names no limit either.
            logger.exception("imlimits: checking %s in %s failed", event.type, event.room_id)
            self._unavailable(event.sender)
        return True, None

    async def on_new_event(self, event: EventBase, state: StateMap[EventBase]) -> None:
        after = translate.after(_event(event), self._api.is_mine)
        if isinstance(after, translate.RoomPersisted):
            room = self._held_rooms.pop(after.room_id, None)
            if room is not None:
                self._background("imlimits_confirm_room", self._settle_room, after.room_id, room)
        elif isinstance(after, translate.JoinPersisted):
            holds = self._held_joins.pop((after.room_id, after.user), [])
            if holds:
                self._background("imlimits_confirm_join", self._settle_join, after.room_id, after.user, holds)
        elif isinstance(after, translate.Release):
            if _membership(state, after.user) == "join":
                return  # joined again since: see _Departure
            self._background("imlimits_release", self._release, after.room_id, after.user)

    async def check_can_shutdown_room(self, user_id: str | None, room_id: str) -> bool:
        # Never refused: an admin removing a room must not depend on the limits service. Called twice per
        # delete (translate.py); the second DestroyGroup answers 10010, which changes nothing.
        self._background("imlimits_destroy", self._destroy, room_id)
        return True

    # -- before an event ---------------------------------------------------------------------------------------

    async def _before(self, event: EventBase, state: StateMap[EventBase], decision: translate.Before) -> None:
        if isinstance(decision, translate.CountRoom):
            await self._count_room(event, decision)
        elif isinstance(decision, translate.CountJoin):
            if _membership(state, decision.user) in ("leave", "ban"):
                await self._release_before_rejoin(decision.room_id, decision.user)
            checked = time.monotonic()
            result = await self._limits.join_group(group_key(decision.room_id), user_key(decision.user))
            logger.debug("imlimits: checked a join in %.1f ms", (time.monotonic() - checked) * 1000)
            if result.code == ImCode.GROUP_NOT_FOUND:
                return  # a room imlimits does not count: a direct chat, a room from before the module
            self._answer(result, decision.user)
            if result.hold_id:
                self._prune()
                self._held_joins.setdefault((decision.room_id, decision.user), []).append(
                    _Hold(result.hold_id, checked, self._config.hold_seconds))
        elif isinstance(decision, translate.Departing):
            self._note_departure(decision.room_id, decision.user)

    async def _count_room(self, event: EventBase, decision: translate.CountRoom) -> None:
        creation = _creation.get()
        if creation is not None and creation.creator == decision.creator:
            kind = creation.kind
        else:
            kind = await self._upgraded_kind(event)
        if kind.group_type is None:
            return
        checked = time.monotonic()
        result = await self._limits.create_group(group_key(decision.room_id), kind.group_type,
                                                 user_key(decision.creator))
        # 10025: this creator's group of this id exists: room version 12 retries a create event whose id was taken.
        if result.code == ImCode.GROUP_ID_OWNED_BY_CALLER:
            return
        self._answer(result, decision.creator)
        if result.hold_id:
            self._prune()
            self._held_rooms[decision.room_id] = _HeldRoom(_Hold(result.hold_id, checked, self._config.hold_seconds),
                                                           kind, decision.creator)

    async def _upgraded_kind(self, event: EventBase) -> RoomKind:
        """A create event without on_create_room before it: /upgrade (handlers/room.py, clone_existing_room)."""
        predecessor = event.content.get("predecessor")
        join_rule = None
        if isinstance(predecessor, dict) and isinstance(predecessor.get("room_id"), str):
            old = await self._api.get_room_state(predecessor["room_id"], [("m.room.join_rules", "")])
            rules = old.get(("m.room.join_rules", ""))
            join_rule = rules.content.get("join_rule") if rules is not None else None
        return translate.kind_of(event.content.get("type"), join_rule)

    def _answer(self, result: CheckResult, user_id: str) -> None:
        """Raises the client's refusal; an admitted check returns."""
        if result.allowed:
            if result.degraded:
                logger.warning("imlimits unreachable; admitted uncounted (on_unavailable: allow): %s", result.info)
            return
        refusal = refusals.refusal(result, app_id=self._config.app_id, user_id=user_id,
                                   admin_contact=self._config.admin_contact)
        raise SynapseError(refusals.HTTP_STATUS, refusal.message, errcode=refusals.ERRCODE,
                           additional_fields=refusal.fields)

    def _unavailable(self, user_id: str) -> None:
        if self._config.on_unavailable == "deny":
            self._answer(CheckResult(ImCode.SERVICE_UNAVAILABLE, "the module could not ask imlimits", False,
                                     degraded=True), user_id)

    # -- confirmations -----------------------------------------------------------------------------------------

    def _prune(self) -> None:
        """Forgets holds whose events Synapse refused (never persisted): imlimits has released them by now."""
        if len(self._held_rooms) + len(self._held_joins) < 1000:
            return
        stale = time.monotonic() - 60
        self._held_rooms = {room: held for room, held in self._held_rooms.items() if held.hold.lapses > stale}
        self._held_joins = {key: kept for key, holds in self._held_joins.items()
                            if (kept := [hold for hold in holds if hold.lapses > stale])}

    async def _confirm(self, hold: _Hold) -> bool:
        """ConfirmHold, retried while imlimits is unreachable and the hold may still be confirmed; False: lapsed."""
        delay = RETRY_FIRST
        while True:
            try:
                answer = await self._limits.confirm_hold(hold.hold_id)
            except Unavailable:
                if time.monotonic() + delay > hold.lapses:
                    return False
                await self._api.sleep(delay)
                delay = min(RETRY_MAX, delay * 2)
                continue
            # 60016: the app is deactivated, and nothing it holds counts for anything any more.
            return answer.confirmed or answer.code == ImCode.APP_DISABLED

    async def _settle_join(self, room_id: str, user: str, holds: list[_Hold]) -> None:
        # Every hold of this user in this room: a refused attempt just before may hold the membership that
        # this join's own hold then found already taken (and so covers nothing).
        confirmed = [await self._confirm(hold) for hold in holds]
        if all(confirmed):
            logger.debug("imlimits: confirmed the hold of a join %.1f ms after its check",
                         (time.monotonic() - holds[-1].checked) * 1000)
            return
        result = await self._limits.join_group_again(group_key(room_id), user_key(user))
        if result.allowed or result.code == ImCode.GROUP_NOT_FOUND:
            logger.warning("imlimits: the hold of %s's join of %s lapsed before it was confirmed; counted again%s",
                           user, room_id, " (not counted: imlimits unreachable)" if result.degraded else "")
            return
        reason = refusals.refusal(result, app_id=self._config.app_id, user_id=user,
                                  admin_contact=self._config.admin_contact).message
        logger.warning("imlimits: the hold of %s's join of %s lapsed before it was confirmed, and a new check "
                       "refuses it: %s; the user leaves the room again", user, room_id, reason)
        await self._api.update_room_membership(user, user, room_id, "leave", {"reason": reason})

    async def _settle_room(self, room_id: str, room: _HeldRoom) -> None:
        if await self._confirm(room.hold):
            return
        # imlimits destroyed the held group, and with it whatever joined meanwhile: create it again as it is now.
        group_type = room.kind.group_type
        assert group_type is not None
        state = await self._api.get_room_state(room_id, [("m.room.member", None)])
        joined = sorted(key[1] for key, member in state.items()
                        if member.membership == "join" and self._api.is_mine(key[1]))
        owner = room.creator if room.creator in joined else ""
        result = await self._limits.create_group_again(group_key(room_id), group_type, user_key(owner) if owner else "",
                                                       [user_key(user) for user in joined if user != owner])
        if result.allowed and not result.degraded:
            logger.warning("imlimits: the hold of room %s lapsed before it was confirmed; counted again", room_id)
        else:
            logger.error("imlimits: the hold of room %s lapsed before it was confirmed and it cannot be counted "
                         "again (%s); the room stays. `imlimits-synapse import` counts it", room_id, result.info)

    # -- departures and releases -------------------------------------------------------------------------------

    def _note_departure(self, room_id: str, user: str) -> None:
        if len(self._departures) > 10_000:
            # A leave Synapse refused leaves its note behind; notes older than any release retry are dropped.
            oldest = time.monotonic() - RELEASE_GIVE_UP_SECONDS
            self._departures = {key: note for key, note in self._departures.items() if note.since > oldest}
        self._departures[(room_id, user)] = _Departure()

    async def _release_before_rejoin(self, room_id: str, user: str) -> None:
        note = self._departures.get((room_id, user))
        if note is None or note.released:
            return
        deadline = time.monotonic() + CHECK_TIMEOUT + 0.1
        while note.in_flight and time.monotonic() < deadline:
            await self._api.sleep(0.01)
        if note.released or note.in_flight:
            return
        await self._release_once(room_id, user, note)

    async def _release_once(self, room_id: str, user: str, note: _Departure) -> bool:
        note.in_flight = True
        try:
            await self._limits.leave_group(group_key(room_id), user_key(user))
        except Unavailable:
            return False
        finally:
            note.in_flight = False
        note.released = True
        return True

    async def _release(self, room_id: str, user: str) -> None:
        note = self._departures.setdefault((room_id, user), _Departure())
        try:
            await self._retrying(f"release {user} from {room_id}", lambda: self._release_step(room_id, user, note))
        finally:
            if self._departures.get((room_id, user)) is note:
                del self._departures[(room_id, user)]

    async def _release_step(self, room_id: str, user: str, note: _Departure) -> bool:
        if note.released:
            return True
        if note.in_flight:
            return False
        return await self._release_once(room_id, user, note)

    async def _destroy(self, room_id: str) -> None:
        async def step() -> bool:
            try:
                await self._limits.destroy_group(group_key(room_id))
            except Unavailable:
                return False
            return True

        await self._retrying(f"destroy {room_id}", step)

    async def _retrying(self, what: str, step: Callable[[], Awaitable[bool]]) -> None:
        """Runs `step` until it says done, with backoff, for RELEASE_GIVE_UP_SECONDS at most."""
        give_up = time.monotonic() + RELEASE_GIVE_UP_SECONDS
        delay = RETRY_FIRST
        while True:
            try:
                if await step():
                    return
            except ImlimitsError as error:
                logger.error("imlimits: %s: %s", what, error)
                return
            if time.monotonic() + delay > give_up:
                logger.error("imlimits unreachable for %.0f s: gave up trying to %s; `imlimits-synapse import` "
                             "makes the counts exact again", RELEASE_GIVE_UP_SECONDS, what)
                return
            await self._api.sleep(delay)
            delay = min(RETRY_MAX, delay * 2)

    # -- plumbing ----------------------------------------------------------------------------------------------

    def _background(self, desc: LiteralString, func: Callable[..., Awaitable[None]], *args: Any) -> None:
        self._api.run_as_background_process(desc, func, *args)

    async def _probe_app(self) -> None:
        """Says at start-up, in the log, when the configured app does not exist (every check would fail)."""
        try:
            await self._limits.usage()
        except NotFound:
            logger.error("imlimits has no app %d: create it (`imlimits app create %d`) or fix app_id",
                         self._config.app_id, self._config.app_id)
        except ImlimitsError as error:
            logger.warning("imlimits: could not look app %d up at start-up: %s", self._config.app_id, error)


def _event(event: EventBase) -> translate.Event:
    return translate.Event(event.type, event.room_id, event.sender, event.get_state_key(),
                           event.content.get("membership"))


def _membership(state: StateMap[EventBase], user: str | None) -> str | None:
    member = state.get(("m.room.member", user)) if user is not None else None
    return member.membership if member is not None else None
