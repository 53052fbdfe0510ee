"""Runs imlimits' Lua scripts: each check and each plan commit is one atomic EVALSHA."""

from __future__ import annotations

import asyncio
import collections
import hashlib
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal, TypeGuard, overload

import redis.exceptions

from imlimits_server.core.checks import (
    ADMITTED,
    CancelHold,
    Check,
    CheckResult,
    ConfirmHold,
    CreateGroup,
    DestroyGroup,
    Drift,
    GroupType,
    Held,
    HoldResult,
    ImCode,
    JoinGroup,
    LeaveGroup,
    ReleaseResult,
    UsageResult,
    Verification,
)
from imlimits_server.core.editions import COMMUNITY_MEMBER_LIMIT, Limits
from imlimits_server.core.errors import InvalidArgument, NotFound, app_not_found
from imlimits_server.core.holds import HOLD_OUTCOME_KEEP_SECONDS, HoldIds, fingerprint
from imlimits_server.core.plans import AppState
from imlimits_server.store.codec import decode_state, encode_state
from imlimits_server.store.connections import Connection
from imlimits_server.store.keys import (
    APP_INDEX_KEY,
    APP_INDEX_WIDTH,
    META_KEY,
    RELEASE_DUE_KEY,
    RELEASE_QUEUE_KEY,
    RELEASE_SEQUENCE_KEY,
    AppKeys,
)
from imlimits_server.store.pipelined import ConnectionLost, ReplyError

# Memberships released per script call when a group is destroyed: about a
# millisecond of Redis time, so other clients never wait long behind it. A
# group up to this size is released by its DestroyGroup script itself.
DESTROY_BATCH = 1000
# Request ids are remembered at least 24 h (SPEC section 3); two days covers a
# retry that spans a day boundary.
REQUEST_ID_TTL_SECONDS = 2 * 86_400

# A destroy or hold that keeps meeting a worker's seal queues again; more than a few means something is wrong.
_QUEUE_ATTEMPTS = 5
# Apps whose queue number this process remembers for its held checks (most recently used kept).
_QUEUED_APPS_KEPT = 10_000
HOLD_OUTCOME_KEEP_MS = HOLD_OUTCOME_KEEP_SECONDS * 1000

# What check scripts answer besides IM codes: the app must be queued for the release workers first
# (nothing changed), a request_id reused for another request, and a held check's retry finding its hold.
_QUEUE_FIRST = -4
_REQUEST_ID_REUSED = -5
_HELD_BEFORE = -6

# Scripts with common.lua prepended (they share its refusal and hold helpers), and scripts without.
_CHECK_SCRIPTS = ("create_group", "join_group", "leave_group", "destroy_group", "confirm_hold", "cancel_hold",
                  "release_batch", "release_queue_due", "import_groups", "replace_members", "over_limit", "usage")
_PLAIN_SCRIPTS = ("load_app", "commit_app", "recount_user", "recount_groups", "release_queue_add",
                  "release_queue_done", "release_queue_later", "export_groups")
# The checks batch.lua decides in one call, by the body of their own script.
_BATCHED_SCRIPTS = {"create_group": "c", "join_group": "j", "leave_group": "l", "confirm_hold": "h",
                    "cancel_hold": "x"}
# Arguments per batch.lua call: about a millisecond of Redis time at most, so
# a batch of big joins never keeps other clients waiting long.
BATCH_SCRIPT_ARGS = 2000

Answer = CheckResult | ReleaseResult | HoldResult


@dataclass(frozen=True)
class ReleaseStep:
    """One release_batch call: memberships released, what is left (`state`), and holds closed as expired."""

    released: int
    state: Literal["more", "sealed", "later", "busy"]
    next_due: int  # with "later": when (Redis ms) the app's first open hold ends
    expired: int


_RELEASE_STATES: dict[int, Literal["more", "sealed", "later", "busy"]] = {
    0: "more", 1: "sealed", 2: "later", -1: "busy"}


@dataclass(frozen=True)
class Script:
    text: str
    sha: str


def _load_scripts() -> dict[str, Script]:
    lua = resources.files("imlimits_server.store") / "lua"
    common = (lua / "common.lua").read_text()
    scripts = {}
    for name in _CHECK_SCRIPTS + _PLAIN_SCRIPTS:
        body = (lua / f"{name}.lua").read_text()
        text = common + body if name in _CHECK_SCRIPTS else body
        scripts[name] = Script(text, hashlib.sha1(text.encode()).hexdigest())
    functions = "".join(f"local function {name}(KEYS, ARGV)\n{(lua / f'{name}.lua').read_text()}end\n"
                        for name in _BATCHED_SCRIPTS)
    text = common + functions + (lua / "batch.lua").read_text()
    scripts["batch"] = Script(text, hashlib.sha1(text.encode()).hexdigest())
    return scripts


@dataclass(frozen=True)
class ScriptCall:
    """One check as its script sees it."""

    script: str
    keys: list[str]
    args: list[Any]


@dataclass(frozen=True)
class Holding:
    """What a held check (or a cancel) needs besides its request: its hold's nonce, the request's
    fingerprint (empty without a request_id), and the queue number this process presents for the app."""

    nonce: str = ""
    fingerprint: str = ""
    queued: int = 0


def _held(check: Check) -> TypeGuard[CreateGroup | JoinGroup]:
    """A check that holds what it admits: hold_seconds set, and not a dry run (which never holds)."""
    return isinstance(check, CreateGroup | JoinGroup) and check.hold_seconds > 0 and not check.dry_run


def _presents_holding(check: Check) -> bool:
    """Whether the check's script call carries hold values (a nonce, a queue number): a held check, a cancel."""
    return _held(check) or isinstance(check, CancelHold)


def _fingerprint(check: Check) -> str:
    """A held check's request with a request_id, as its retry must repeat it; empty otherwise."""
    return fingerprint(check) if _held(check) and check.request_id else ""


def _hold_prefixes(keys: AppKeys) -> list[str]:
    """The key prefixes release_hold (common.lua) builds a hold's and its group's keys from."""
    return [keys.hold(""), keys.group(""), keys.members(""), keys.held_members(""), keys.tombstone("")]


# The checks decided by one script call each (a destroy may take several).
ScriptedCheck = CreateGroup | JoinGroup | LeaveGroup | ConfirmHold | CancelHold


def _script_call(check: ScriptedCheck, holding: Holding = Holding(), destroy_batch: int = DESTROY_BATCH) -> ScriptCall:
    keys = AppKeys(check.app_id)
    if isinstance(check, ConfirmHold):
        return ScriptCall("confirm_hold", [keys.limits, keys.hold(check.nonce), keys.hold_expiries, keys.counts],
                          [check.nonce, HOLD_OUTCOME_KEEP_MS, keys.group(""), keys.held_members("")])
    if isinstance(check, CancelHold):
        return ScriptCall("cancel_hold",
                          [keys.limits, keys.hold(check.nonce), keys.hold_expiries, keys.counts, keys.user_counts,
                           keys.group_index, keys.draining, keys.release_sealed, keys.release_schedule],
                          [check.nonce, holding.queued, destroy_batch, HOLD_OUTCOME_KEEP_MS, *_hold_prefixes(keys)])
    if isinstance(check, LeaveGroup):
        return ScriptCall("leave_group", [keys.limits, keys.user_counts, keys.group(check.group_id),
                                          keys.members(check.group_id), keys.counts,
                                          keys.held_members(check.group_id)], list(check.users))
    hold_ms = check.hold_seconds * 1000 if _held(check) else 0
    hold_args = [hold_ms, holding.nonce, holding.fingerprint, holding.queued]
    # Only a held check names the hold's keys: a plain check costs Redis what it did before holds.
    hold_keys = [keys.hold(holding.nonce), keys.hold_expiries, keys.release_sealed,
                 keys.release_schedule] if hold_ms else []
    if isinstance(check, JoinGroup):
        return ScriptCall(
            "join_group",
            [keys.limits, keys.user_counts, keys.group(check.group_id), keys.members(check.group_id),
             *([keys.counts, keys.held_members(check.group_id), *hold_keys] if hold_ms else [])],
            [_flag(check.dry_run), COMMUNITY_MEMBER_LIMIT, *hold_args, check.group_id, *check.users])
    # The owner counts among the newcomers where the type makes it a member.
    owner_joins = check.owner and check.type.owner_is_member
    newcomers = list(dict.fromkeys(([check.owner] if owner_joins else []) + list(check.members)))
    return ScriptCall(
        "create_group",
        [keys.limits, keys.counts, keys.user_counts, keys.group(check.group_id), keys.members(check.group_id),
         keys.group_index, keys.held_members(check.group_id), *hold_keys],
        [check.type.value, check.owner, check.max_members, _flag(check.dry_run), _flag(bool(check.members)),
         COMMUNITY_MEMBER_LIMIT, check.group_id, *hold_args, *newcomers],
    )


@dataclass(frozen=True)
class StoredApp:
    """An app as read for a plan operation: what to compare on commit, and a remembered answer."""

    version: str
    state: AppState | None
    stored_request: str


def _flag(value: bool) -> str:
    return "1" if value else "0"


def _indexed(app_id: int) -> str:
    return str(app_id).zfill(APP_INDEX_WIDTH)


def _check_result(app_id: int, reply: list[Any]) -> CheckResult:
    code = int(reply[0])
    if code == 0 and len(reply) == 1:
        return ADMITTED
    if code == -1:
        raise app_not_found(app_id)
    if code == _REQUEST_ID_REUSED:
        raise InvalidArgument("request_id", f"was used in app {app_id} for a different held check: a retry must "
                                            "repeat its request exactly, a new check needs a new request_id")
    limit = int(reply[1]) if len(reply) > 1 else 0
    current = int(reply[2]) if len(reply) > 2 else 0
    if code in (ImCode.GROUP_MEMBER_LIMIT, ImCode.GROUP_FULL):  # then the newcomers' count, if any
        return CheckResult(ImCode(code), limit, current, newcomers=int(reply[3]) if len(reply) > 3 else 0)
    return CheckResult(ImCode(code), limit, current, tuple(reply[3:]))


class RedisStore:
    def __init__(self, redis: Connection, destroy_batch: int = DESTROY_BATCH) -> None:
        """`destroy_batch` is DESTROY_BATCH but in tests, which make the release workers' path reachable."""
        self.redis = redis
        self._destroy_batch = destroy_batch
        self._scripts = _load_scripts()
        self._page_token_secret: bytes | None = None
        self._hold_ids: HoldIds | None = None
        # App -> the queue number this process's held checks present (release_covered in common.lua).
        self._queued: collections.OrderedDict[int, int] = collections.OrderedDict()

        # Set when a destroy leaves memberships to release: this process's worker starts at once.
        self.release_wanted = asyncio.Event()

    async def run_script(self, name: str, keys: list[str], args: list[Any]) -> Any:
        """For the store's other modules (onboarding): one script, as every method here runs them."""
        return await self._run(name, keys, args)

    async def _run(self, name: str, keys: list[str], args: list[Any]) -> Any:
        """EVALSHA: one round trip.

        A node that lacks the script (restarted, flushed, or new to the
        cluster) gets it through EVAL, which runs on the node that owns the
        keys and caches the script there.
        """
        script = self._scripts[name]
        try:
            return await self.redis.execute("EVALSHA", script.sha, len(keys), *keys, *args)
        except ReplyError as error:
            if not str(error).startswith("NOSCRIPT"):
                raise
        return await self.redis.execute("EVAL", script.text, len(keys), *keys, *args)

    # Plans

    async def load_app(self, app_id: int, request_id: str = "") -> StoredApp:
        keys = AppKeys(app_id)
        names = [keys.limits, keys.plan] + ([keys.request(request_id)] if request_id else [])
        version, plan, stored = await self._run("load_app", names, [])
        return StoredApp(version, decode_state(plan) if plan else None, stored)

    async def commit_app(self, version: str, state: AppState, request_id: str = "", stored_request: str = "") -> bool:
        """Write `state` if the app is still at `version`; False means someone else wrote first."""
        keys = AppKeys(state.app_id)
        names = [keys.limits, keys.plan] + ([keys.request(request_id)] if request_id else [])
        limits: Limits = state.plan.limits()
        args = [
            version, encode_state(state), _flag(not state.active), limits.user_groups, limits.group_members,
            -1 if limits.av_rooms is None else limits.av_rooms, _flag(limits.community_allowed),
            stored_request, REQUEST_ID_TTL_SECONDS,
        ]
        return bool(await self._run("commit_app", names, args))

    async def remember_request(self, app_id: int, request_id: str, stored_request: str) -> bool:
        """Remember the answer of a request that changed nothing, without touching the plan or its version.

        False when the id was answered meanwhile: the caller replays that answer.
        """
        return bool(await self.redis.execute(
            "SET", AppKeys(app_id).request(request_id), stored_request, "NX", "EX", REQUEST_ID_TTL_SECONDS))

    # Listing

    async def index_app(self, app_id: int) -> None:
        """Name the app in the app index; done before its creation commits, so a listing never misses it."""
        await self.redis.execute("ZADD", APP_INDEX_KEY, 0, _indexed(app_id))

    async def list_apps(self, after: int, count: int) -> tuple[list[AppState], bool]:
        """Up to `count` apps with ids above `after`, ascending, and whether any app may follow them.

        Index entries whose app never committed (a creation that failed after
        indexing) are skipped, so a page is filled from further entries.
        """
        found: list[AppState] = []
        start = f"({_indexed(after)}"
        while len(found) < count:
            indexed = await self.redis.execute("ZRANGEBYLEX", APP_INDEX_KEY, start, "+", "LIMIT", 0,
                                               count - len(found))
            if not indexed:
                return found, False
            stored = await asyncio.gather(*(self.load_app(int(app_id)) for app_id in indexed))
            found += [app.state for app in stored if app.state is not None]
            start = f"({indexed[-1]}"
        more = await self.redis.execute("ZRANGEBYLEX", APP_INDEX_KEY, start, "+", "LIMIT", 0, 1)
        return found, bool(more)

    async def page_token_secret(self) -> bytes:
        """The deployment's key for signing page tokens, shared by every replica through Redis."""
        if self._page_token_secret is None:
            await self.redis.execute("HSETNX", META_KEY, "page_token_secret", secrets.token_hex(32))
            self._page_token_secret = str(await self.redis.execute("HGET", META_KEY, "page_token_secret")).encode()
        return self._page_token_secret

    # Checks

    @overload
    async def decide(self, check: CreateGroup | JoinGroup) -> CheckResult: ...

    @overload
    async def decide(self, check: LeaveGroup | DestroyGroup | CancelHold) -> ReleaseResult: ...

    @overload
    async def decide(self, check: ConfirmHold) -> HoldResult: ...

    async def decide(self, check: Check) -> Answer:
        """One check, one script call (a destroy also drains what it released; a held check or a cancel
        may first queue its app for the release workers, rarely)."""
        if isinstance(check, DestroyGroup):
            return await self.destroy_group(check.app_id, check.group_id)
        if isinstance(check, CreateGroup | JoinGroup | LeaveGroup) and not _held(check):
            # Most calls: nothing to sign and no queue number to present, so none of _decide_run's steps.
            call = _script_call(check)
            return self._answer(check, await self._run(call.script, call.keys, call.args), None, "")
        answers = await self._decide_run(check.app_id, [check])
        if isinstance(answers[0], Exception):
            raise answers[0]
        return answers[0]

    async def decide_all(self, checks: Sequence[Check]) -> list[Answer | Exception]:
        """Each check decided as `decide` would, one answer (or its error) per check, in order.

        The checks of one app run in the order given through batch.lua, one
        script call per run of up to BATCH_SCRIPT_ARGS arguments: one round
        trip and one script start for many checks. Apps run side by side.
        A destroy runs alone (it may take several calls), so later checks see
        the group gone and its id and room slot free, as after the unary call;
        a large group's memberships are released by the workers within 2 s, as
        after the unary call too (docs/batching.md).
        """
        answers: list[Answer | Exception | None] = [None] * len(checks)
        by_app: dict[int, list[int]] = {}
        for index, check in enumerate(checks):
            by_app.setdefault(check.app_id, []).append(index)
        await asyncio.gather(*(self._decide_in_order(checks, indices, answers) for indices in by_app.values()))
        return [answer for answer in answers if answer is not None]

    async def _decide_in_order(self, checks: Sequence[Check], indices: list[int],
                               answers: list[Answer | Exception | None]) -> None:
        position = 0
        while position < len(indices):
            check = checks[indices[position]]
            run: list[ScriptedCheck] = []
            # Built once: a run's calls are sized here and sent as they are, but for those that present hold
            # values (a held check, a cancel), which _decide_run builds again with them.
            calls: list[ScriptCall] = []
            size = 0
            for index in indices[position:] if not isinstance(check, DestroyGroup) else ():
                following = checks[index]
                if isinstance(following, DestroyGroup):
                    break
                call = _script_call(following, destroy_batch=self._destroy_batch)
                size += len(call.args)
                if run and size > BATCH_SCRIPT_ARGS:
                    break
                run.append(following)
                calls.append(call)
            try:
                replies = await self._decide_run(check.app_id, run, calls) if run \
                    else [await self._decide_alone(check)]
            except (redis.exceptions.RedisError, OSError) as error:
                # Unknown whether Redis ran them; what follows stays undecided too, so order holds.
                for index in indices[position:]:
                    answers[index] = error
                return
            for index, reply in zip(indices[position:position + len(replies)], replies, strict=True):
                answers[index] = reply
            position += len(replies)

    async def _decide_alone(self, check: Check) -> Answer | Exception:
        try:
            return await self.decide(check)
        except (NotFound, InvalidArgument) as error:
            return error

    async def _decide_run(self, app_id: int, run: Sequence[ScriptedCheck],
                          built: Sequence[ScriptCall] = ()) -> list[Answer | Exception]:
        """One app's checks in order, in one script call (a lone check by its own script, a run through
        batch.lua). A held check or a cancel that needs the app queued first ends the call there with
        nothing of it done: the app is queued and the rest of the run is sent again, so order holds."""
        hold_ids = await self.hold_ids() if any(_held(check) for check in run) else None
        nonces = [hold_ids.nonce(app_id, check.request_id) if hold_ids and _held(check) else "" for check in run]
        queued = self._queued.get(app_id, 0)
        if queued == 0 and hold_ids is not None:
            queued = await self._queue_for_holds(app_id)
        answers: list[Answer | Exception] = []
        for _ in range(_QUEUE_ATTEMPTS):
            todo = run[len(answers):]
            calls = [built[index] if built and not _presents_holding(run[index])
                     else _script_call(run[index], Holding(nonces[index], _fingerprint(run[index]), queued),
                                       self._destroy_batch)
                     for index in range(len(answers), len(run))]
            if len(calls) == 1:
                replies = [await self._run(calls[0].script, calls[0].keys, calls[0].args)]
            else:
                keys: list[str] = []
                args: list[Any] = []
                for call in calls:
                    keys += call.keys
                    args += [_BATCHED_SCRIPTS[call.script], len(call.keys), len(call.args), *call.args]
                replies = await self._run("batch", keys, args)
            for check, nonce, reply in zip(todo, nonces[len(answers):], replies, strict=False):
                if int(reply[0]) == _QUEUE_FIRST:
                    break
                try:
                    answers.append(self._answer(check, reply, hold_ids, nonce))
                except (NotFound, InvalidArgument) as error:
                    answers.append(error)
            if len(answers) == len(run):
                return answers
            queued = await self._queue_for_holds(app_id)
        # Only a worker sealing or rescheduling this app between each queueing and its check gets here.
        raise ConnectionLost(f"checks of app {app_id} kept racing its release workers; retry")

    def _answer(self, check: Check, reply: list[Any], hold_ids: HoldIds | None, nonce: str) -> Answer:
        held = _held(check)
        if not held and isinstance(check, CreateGroup | JoinGroup):
            return _check_result(check.app_id, reply)  # most answers: nothing of a hold to read
        if isinstance(check, ConfirmHold):
            code = _check_result(check.app_id, reply[:1]).code
            if code is not ImCode.OK:
                return HoldResult(code)
            return HoldResult(code, bool(reply[1]), bool(reply[2]), bool(reply[3]))
        if isinstance(check, LeaveGroup | CancelHold):
            result = _check_result(check.app_id, reply[:1])
            if isinstance(check, CancelHold) and len(reply) > 2 and int(reply[2]):
                self.release_wanted.set()  # a held group's tombstone: this process's worker starts at once
            return ReleaseResult(result.code, int(reply[1]) if len(reply) > 1 else 0,
                                 isinstance(check, CancelHold) and len(reply) > 3 and bool(int(reply[3])))
        assert not isinstance(check, DestroyGroup)
        if int(reply[0]) == _HELD_BEFORE:
            assert hold_ids is not None
            return CheckResult(ImCode.OK, hold_id=hold_ids.issue(check.app_id, nonce))
        result = _check_result(check.app_id, reply)
        if not (result.allowed and held):
            return result
        assert hold_ids is not None
        return CheckResult(ImCode.OK, hold_id=hold_ids.issue(check.app_id, nonce), hold_opened=True)

    async def hold_ids(self) -> HoldIds:
        """Signs and reads hold ids under the deployment's secret (read from Redis once per process)."""
        if self._hold_ids is None:
            self._hold_ids = HoldIds(await self.page_token_secret())
        return self._hold_ids

    async def _queue_for_holds(self, app_id: int) -> int:
        """Queue the app and remember its number: this process's held checks present it until it goes stale."""
        queued = await self.queue_release(app_id)
        self._queued[app_id] = queued
        self._queued.move_to_end(app_id)
        while len(self._queued) > _QUEUED_APPS_KEPT:
            self._queued.popitem(last=False)
        return queued

    async def destroy_group(self, app_id: int, group_id: str) -> ReleaseResult:
        """Destroy at once; a group above one batch is left to the release workers (release_worker.py).

        `released` is what the group held, counted in the same script that
        destroys it, so concurrent destroys never share their counts.
        """
        keys = AppKeys(app_id)
        tombstone = keys.tombstone(uuid.uuid4().hex)
        queued = 0
        for _ in range(_QUEUE_ATTEMPTS):
            reply = await self._run(
                "destroy_group",
                [keys.limits, keys.counts, keys.user_counts, keys.group(group_id), keys.members(group_id),
                 keys.group_index, keys.draining, tombstone, keys.release_sealed, keys.held_members(group_id),
                 keys.release_schedule],
                [self._destroy_batch, group_id, queued],
            )
            result = _check_result(app_id, reply[:1])
            if not result.allowed:
                return ReleaseResult(result.code)
            memberships, step = int(reply[1]), int(reply[2])
            if step >= 0:
                if step:
                    self.release_wanted.set()
                return ReleaseResult(ImCode.OK, memberships)
            queued = await self.queue_release(app_id)
        # Only a worker sealing this app between each queueing and its destroy gets here: nothing changed.
        raise ConnectionLost(f"destroy of {group_id!r} kept racing the release of app {app_id}; retry")

    # The release queue (driven by release_worker.py): destroyed groups and ended holds

    async def queue_release(self, app_id: int) -> int:
        """Put the app on the release queue under a fresh number, due at once; its destroy or hold presents it."""
        return int(await self._run("release_queue_add", [RELEASE_QUEUE_KEY, RELEASE_SEQUENCE_KEY, RELEASE_DUE_KEY],
                                   [app_id]))

    async def due_releases(self, limit: int) -> dict[int, int]:
        """Queued apps due for a worker now (Redis's clock), each with the number it was last queued under."""
        flat = await self._run("release_queue_due", [RELEASE_QUEUE_KEY, RELEASE_DUE_KEY], [limit])
        return {int(flat[i]): int(flat[i + 1]) for i in range(0, len(flat), 2)}

    async def release_batch(self, app_id: int, holder: str, lease_ms: int, queued: int) -> ReleaseStep:
        """One bounded step of releasing the app's ended holds and destroyed memberships (release_batch.lua)."""
        keys = AppKeys(app_id)
        released, state, next_due, expired = await self._run(
            "release_batch",
            [keys.user_counts, keys.draining, keys.release_lease, keys.release_sealed, keys.release_cursors,
             keys.hold_expiries, keys.counts, keys.group_index, keys.release_schedule],
            [holder, lease_ms, self._destroy_batch, queued, HOLD_OUTCOME_KEEP_MS, *_hold_prefixes(keys)])
        return ReleaseStep(int(released), _RELEASE_STATES[int(state)], int(next_due), int(expired))

    async def release_done(self, app_id: int, queued: int) -> bool:
        """Take the app off the queue unless it was queued again after `queued` was read."""
        return bool(await self._run("release_queue_done", [RELEASE_QUEUE_KEY, RELEASE_DUE_KEY], [app_id, queued]))

    async def release_later(self, app_id: int, queued: int, due: int) -> bool:
        """Make the app due at `due` (Redis ms) unless it was queued again after `queued` was read."""
        return bool(await self._run("release_queue_later", [RELEASE_QUEUE_KEY, RELEASE_DUE_KEY],
                                    [app_id, queued, due]))

    async def usage(self, app_id: int, user: str | None, group_id: str | None) -> UsageResult:
        """The app's enforced limits and its counts; a deactivated app still answers."""
        keys = AppKeys(app_id)
        group = group_id or ""
        reply = await self._run(
            "usage",
            [keys.limits, keys.counts, keys.user_counts, keys.group(group), keys.members(group), keys.hold_expiries,
             keys.held_members(group)],
            [user or "", _flag(group_id is not None), COMMUNITY_MEMBER_LIMIT],
        )
        if not reply[0]:
            raise app_not_found(app_id)
        user_groups, group_members, av_rooms, community, rooms, groups = reply[2:8]
        if group_id is not None and not reply[9]:
            raise NotFound(f"group {group_id!r} of app {app_id} not found")
        limits = Limits(int(user_groups), int(group_members), None if av_rooms < 0 else int(av_rooms),
                        bool(community))
        found = group_id is not None
        holds, held_groups, held_rooms, held_memberships, held_group_members = (int(n) for n in reply[14:19])
        return UsageResult(limits, int(rooms), int(groups), int(reply[8]) if user is not None else None,
                           int(reply[10]) if found else None,
                           Held(holds, held_groups, held_rooms, held_memberships),
                           held_group_members if found else None,
                           group_type=GroupType(reply[11]) if found else None,
                           group_max_members=int(reply[12]) if found else 0,
                           group_members_limit=int(reply[13]) if found and reply[13] >= 0 else None)

    # Reconciliation

    async def verify(self, app_id: int, repair: bool) -> Verification:
        """Recount user, group and room counts from the sets; with `repair`, set each count to its recount.

        A first pass reads the sets while checks may run and only nominates
        users whose count looks off; each is then recounted inside a script
        (atomic), so a join in flight is never reported as drift and a repair
        is exact. Members of destroyed groups still waiting for the release
        workers are counted until released: they are reported as pending, not
        as drift. With `repair`, an app with pending releases is queued again,
        so tombstones nobody queued (left by a server older than the release
        workers) are released too.
        """
        keys = AppKeys(app_id)
        if not await self.redis.execute("EXISTS", keys.limits):
            raise app_not_found(app_id)
        live: dict[str, int] = {}
        for group_id in await self._scan("SSCAN", keys.group_index):
            for user in await self._scan("SSCAN", keys.members(group_id)):
                live[user] = live.get(user, 0) + 1
        memberships = dict(live)
        tombstones = list(await self.redis.execute("SMEMBERS", keys.draining))
        pending = 0
        for tombstone in tombstones:
            for user in await self._scan("SSCAN", tombstone):
                memberships[user] = memberships.get(user, 0) + 1
                pending += 1
        if repair and tombstones:
            await self.queue_release(app_id)
            self.release_wanted.set()
        flat = await self._scan("HSCAN", keys.user_counts)
        recorded = {flat[i]: int(flat[i + 1]) for i in range(0, len(flat), 2)}
        drifts: list[Drift] = []
        for user in sorted(set(memberships) | set(recorded)):
            if memberships.get(user, 0) != recorded.get(user, 0):
                found, actual = await self._run("recount_user", [keys.user_counts, keys.group_index, keys.draining],
                                                [user, keys.members(""), _flag(repair)])
                if found != actual:
                    drifts.append(Drift(f"user_groups of {user}", int(found), int(actual)))
        groups_found, groups, rooms_found, rooms = await self._run(
            "recount_groups", [keys.counts, keys.group_index], [keys.group(""), _flag(repair)])
        drifts += [Drift(name, int(found), int(actual)) for name, found, actual in
                   (("groups", groups_found, groups), ("av_rooms", rooms_found, rooms)) if found != actual]
        return Verification(int(groups), len(live), tuple(drifts), repair, len(tombstones), pending,
                            (await self.usage(app_id, None, None)).held)

    async def _scan(self, command: str, key: str) -> list[str]:
        cursor, found = "0", []
        while True:
            cursor, batch = await self.redis.execute(command, key, cursor, "COUNT", 1000)
            found += batch
            if cursor == "0":
                return found

    # Deployment

    async def ping(self) -> bool:
        return bool(await self.redis.execute("PING") == "PONG")

    async def claim_timezone(self, timezone: str) -> str:
        """Record the deployment's time zone on first start; return the one on record."""
        await self.redis.execute("HSETNX", META_KEY, "timezone", timezone)
        return str(await self.redis.execute("HGET", META_KEY, "timezone"))

    async def set_timezone(self, timezone: str) -> None:
        await self.redis.execute("HSET", META_KEY, "timezone", timezone)
