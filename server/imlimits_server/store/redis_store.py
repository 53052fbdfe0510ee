"""Runs imlimits' Lua scripts: each check and each plan commit is one atomic EVALSHA."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from dataclasses import dataclass
from importlib import resources
from typing import Any

from imlimits_server.core.checks import (
    CheckResult,
    Drift,
    GroupType,
    ImCode,
    ReleaseResult,
    UsageResult,
    Verification,
)
from imlimits_server.core.editions import COMMUNITY_MEMBER_LIMIT, Limits
from imlimits_server.core.errors import NotFound, app_not_found
from imlimits_server.core.plans import AppState
from imlimits_server.store.codec import decode_state, encode_state
from imlimits_server.store.connections import Connection
from imlimits_server.store.keys import META_KEY, RELEASE_QUEUE_KEY, RELEASE_SEQUENCE_KEY, AppKeys
from imlimits_server.store.pipelined import ConnectionLost, ReplyError

# Memberships released per script call when a group is destroyed: about a
# millisecond of Redis time, so other clients never wait long behind it. A
# group up to this size is released by its DestroyGroup script itself.
DESTROY_BATCH = 1000
# Request ids are remembered at least 24 h (SPEC section 3); two days covers a
# retry that spans a day boundary.
REQUEST_ID_TTL_SECONDS = 2 * 86_400

# A destroy that keeps meeting a worker's seal queues again; more than a few means something is wrong.
_QUEUE_ATTEMPTS = 5

_CHECK_SCRIPTS = ("create_group", "join_group", "leave_group", "destroy_group", "release_batch")
_PLAIN_SCRIPTS = ("usage", "load_app", "commit_app", "recount_user", "recount_groups", "release_queue_add",
                  "release_queue_done")


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
    return scripts


@dataclass(frozen=True)
class StoredApp:
    """An app as read for a plan operation: what to compare on commit, and a remembered answer."""

    version: str
    state: AppState | None
    stored_request: str


def _flag(value: bool) -> str:
    return "1" if value else "0"


def _check_result(app_id: int, reply: list[Any]) -> CheckResult:
    code = int(reply[0])
    if code == -1:
        raise app_not_found(app_id)
    limit = int(reply[1]) if len(reply) > 1 else 0
    current = int(reply[2]) if len(reply) > 2 else 0
    return CheckResult(ImCode(code), limit, current, tuple(reply[3:]))


class RedisStore:
    def __init__(self, redis: Connection, destroy_batch: int = DESTROY_BATCH) -> None:
        """`destroy_batch` is DESTROY_BATCH but in tests, which make the release workers' path reachable."""
        self.redis = redis
        self._destroy_batch = destroy_batch
        self._scripts = _load_scripts()
        # Set when a destroy leaves memberships to release: this process's worker starts at once.
        self.release_wanted = asyncio.Event()

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

    # Checks

    async def create_group(self, app_id: int, group_id: str, group_type: GroupType, owner: str,
                           members: list[str], max_members: int, dry_run: bool) -> CheckResult:
        """`members` are the request's initial members, deduplicated; the owner joins them where it is a member."""
        keys = AppKeys(app_id)
        newcomers = list(dict.fromkeys(([owner] if owner and group_type.owner_is_member else []) + members))
        reply = await self._run(
            "create_group",
            [keys.limits, keys.counts, keys.user_counts, keys.group(group_id), keys.members(group_id),
             keys.group_index],
            [group_type.value, owner, max_members, _flag(dry_run), _flag(bool(members)), COMMUNITY_MEMBER_LIMIT,
             group_id, *newcomers],
        )
        return _check_result(app_id, reply)

    async def join_group(self, app_id: int, group_id: str, users: list[str], dry_run: bool) -> CheckResult:
        keys = AppKeys(app_id)
        reply = await self._run(
            "join_group",
            [keys.limits, keys.user_counts, keys.group(group_id), keys.members(group_id)],
            [_flag(dry_run), COMMUNITY_MEMBER_LIMIT, *users],
        )
        return _check_result(app_id, reply)

    async def leave_group(self, app_id: int, group_id: str, users: list[str]) -> ReleaseResult:
        keys = AppKeys(app_id)
        reply = await self._run(
            "leave_group", [keys.limits, keys.user_counts, keys.group(group_id), keys.members(group_id)], users)
        result = _check_result(app_id, reply[:1])
        return ReleaseResult(result.code, int(reply[1]) if len(reply) > 1 else 0)

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
                 keys.group_index, keys.draining, tombstone, keys.release_sealed],
                [self._destroy_batch, group_id, queued],
            )
            result = _check_result(app_id, reply[:1])
            if not result.allowed:
                return ReleaseResult(result.code)
            held, step = int(reply[1]), int(reply[2])
            if step >= 0:
                if step:
                    self.release_wanted.set()
                return ReleaseResult(ImCode.OK, held)
            queued = await self.queue_release(app_id)
        # Only a worker sealing this app between each queueing and its destroy gets here: nothing changed.
        raise ConnectionLost(f"destroy of {group_id!r} kept racing the release of app {app_id}; retry")

    # Release of destroyed groups (driven by release_worker.py)

    async def queue_release(self, app_id: int) -> int:
        """Put the app on the release queue under a fresh number, which its destroy then presents."""
        return int(await self._run("release_queue_add", [RELEASE_QUEUE_KEY, RELEASE_SEQUENCE_KEY], [app_id]))

    async def queued_releases(self) -> dict[int, int]:
        """Apps on the release queue, each with the number it was last queued under."""
        flat = await self.redis.execute("HGETALL", RELEASE_QUEUE_KEY)
        return {int(flat[i]): int(flat[i + 1]) for i in range(0, len(flat), 2)}

    async def release_batch(self, app_id: int, holder: str, lease_ms: int, queued: int) -> int | None:
        """Release one batch of the app's destroyed memberships: how many (maybe 0), -1 when none was left
        (the app is sealed with `queued`), None when another worker holds the app."""
        keys = AppKeys(app_id)
        released, done = await self._run(
            "release_batch",
            [keys.user_counts, keys.draining, keys.release_lease, keys.release_sealed, keys.release_cursors],
            [holder, lease_ms, self._destroy_batch, queued])
        if int(released) < 0:
            return None
        return -1 if done else int(released)

    async def release_done(self, app_id: int, queued: int) -> bool:
        """Take the app off the queue unless it was queued again after `queued` was read."""
        return bool(await self._run("release_queue_done", [RELEASE_QUEUE_KEY], [app_id, queued]))

    async def usage(self, app_id: int, user: str | None, group_id: str | None) -> UsageResult:
        """The app's enforced limits and its counts; a deactivated app still answers."""
        keys = AppKeys(app_id)
        group = group_id or ""
        reply = await self._run(
            "usage",
            [keys.limits, keys.counts, keys.user_counts, keys.group(group), keys.members(group)],
            [user or "", _flag(group_id is not None)],
        )
        if not reply[0]:
            raise app_not_found(app_id)
        user_groups, group_members, av_rooms, community, rooms, groups = reply[2:8]
        if group_id is not None and not reply[9]:
            raise NotFound(f"group {group_id!r} of app {app_id} not found")
        limits = Limits(int(user_groups), int(group_members), None if av_rooms < 0 else int(av_rooms),
                        bool(community))
        return UsageResult(limits, int(rooms), int(groups), int(reply[8]) if user is not None else None,
                           int(reply[10]) if group_id is not None else None)

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
        return Verification(int(groups), len(live), tuple(drifts), repair, len(tombstones), pending)

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
