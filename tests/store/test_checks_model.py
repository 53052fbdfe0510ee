"""The check scripts against a model written from SPEC section 2, on a real Redis.

Limits are written small straight into the app's limits hash (the scripts read
nothing else), so that every code of the table is reachable in a few steps.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from harness import ClusterProcess, RedisProcess
from imlimits_server.core import plans
from imlimits_server.core.checks import CheckResult, CreateGroup, GroupType, JoinGroup, LeaveGroup
from imlimits_server.core.editions import COMMUNITY_MEMBER_LIMIT
from imlimits_server.release_worker import ReleaseWorker
from imlimits_server.store.connections import connect
from imlimits_server.store.keys import AppKeys
from imlimits_server.store.redis_store import RedisStore

GROUP_IDS = st.sampled_from(["g1", "g2", "g3", "g4"])
USERS = st.sampled_from(["ann", "bob", "cat", "dan", "eve"])
USER_LISTS = st.lists(USERS, min_size=1, max_size=4)
_app_ids = itertools.count(9_000_000_001)
_T = TypeVar("_T")


@dataclass
class Group:
    type: GroupType
    owner: str
    max_members: int
    members: set[str] = field(default_factory=set)


class ChecksModel(RuleBasedStateMachine):
    redis_url = ""

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.redis = connect(self.redis_url, timeout=5)
        # Groups above 2 members go through the release workers, as groups above 1000 do in production.
        self.store = RedisStore(self.redis, destroy_batch=2)
        self.release_worker = ReleaseWorker(self.store)
        self.app_id = next(_app_ids)
        self.keys = AppKeys(self.app_id)
        self.run(self.store.commit_app("", plans.create_app(self.app_id, datetime.now(UTC))))
        self.limits = {"ug": 3, "gm": 3, "av": 1, "cm": True}
        self.write_limits()
        self.groups: dict[str, Group] = {}
        self.destroyed: list[set[str]] = []

    def run(self, awaitable: Awaitable[_T]) -> _T:
        return self.loop.run_until_complete(awaitable)

    def teardown(self) -> None:
        self.run(self.redis.close())
        self.loop.close()

    def write_limits(self) -> None:
        lim = self.limits
        self.run(self.redis.execute("HSET", self.keys.limits, "ug", lim["ug"], "gm", lim["gm"], "av", lim["av"],
                                    "cm", int(bool(lim["cm"]))))

    # The model

    def user_groups(self, user: str) -> int:
        return sum(user in group.members for group in self.groups.values())

    def admit(self, group_type: GroupType, max_members: int, count: int, newcomers: list[str]) -> tuple[int, list[str]]:
        if not newcomers:
            return 0, []
        plan_limit = {GroupType.AVCHATROOM: -1, GroupType.COMMUNITY: COMMUNITY_MEMBER_LIMIT}.get(
            group_type, int(self.limits["gm"]))
        if plan_limit >= 0 and count + len(newcomers) > plan_limit:
            return 10038, []
        if max_members and count + len(newcomers) > max_members:
            return 10014, []
        denied = [u for u in newcomers if self.user_groups(u) + 1 > int(self.limits["ug"])]
        return (10037, denied) if denied else (0, [])

    def expect_create(self, group_id: str, group_type: GroupType, owner: str, members: list[str],
                      max_members: int) -> tuple[int, list[str]]:
        if group_id in self.groups:
            return (10025 if owner and self.groups[group_id].owner == owner else 10021), []
        if group_type is GroupType.AVCHATROOM and members:
            return 10007, []
        if group_type is GroupType.COMMUNITY and not self.limits["cm"]:
            return 10059, []
        rooms = sum(g.type is GroupType.AVCHATROOM for g in self.groups.values())
        if group_type is GroupType.AVCHATROOM and int(self.limits["av"]) >= 0 and rooms >= int(self.limits["av"]):
            return 10036, []
        plan_limit = {GroupType.AVCHATROOM: -1, GroupType.COMMUNITY: COMMUNITY_MEMBER_LIMIT}.get(
            group_type, int(self.limits["gm"]))
        if plan_limit >= 0 and max_members > plan_limit:
            return 10038, []
        owner_joins = [owner] if owner and group_type.owner_is_member else []
        return self.admit(group_type, max_members, 0, list(dict.fromkeys(owner_joins + members)))

    # Rules

    @rule(ug=st.integers(1, 4), gm=st.integers(1, 4), av=st.integers(-1, 2), cm=st.booleans())
    def set_limits(self, ug: int, gm: int, av: int, cm: bool) -> None:
        self.limits = {"ug": ug, "gm": gm, "av": av, "cm": cm}
        self.write_limits()

    @rule(group_id=GROUP_IDS, group_type=st.sampled_from(GroupType), owner=st.just("") | USERS,
          members=st.lists(USERS, max_size=3), max_members=st.sampled_from([0, 1, 2, 5]), dry_run=st.booleans())
    def create(self, group_id: str, group_type: GroupType, owner: str, members: list[str], max_members: int,
               dry_run: bool) -> None:
        members = list(dict.fromkeys(members))
        code, denied = self.expect_create(group_id, group_type, owner, members, max_members)
        result: CheckResult = self.run(
            self.store.decide(CreateGroup(self.app_id, group_id, group_type, owner, tuple(members), max_members,
                                          dry_run)))
        assert (int(result.code), list(result.denied_users)) == (code, denied)
        if code == 0 and not dry_run:
            joined = ([owner] if owner and group_type.owner_is_member else []) + members
            self.groups[group_id] = Group(group_type, owner, max_members, set(joined))

    @rule(group_id=GROUP_IDS, users=USER_LISTS, dry_run=st.booleans())
    def join(self, group_id: str, users: list[str], dry_run: bool) -> None:
        users = list(dict.fromkeys(users))
        group = self.groups.get(group_id)
        denied: list[str]
        if group is None:
            code, denied = 10010, []
        else:
            newcomers = [u for u in users if u not in group.members]
            code, denied = self.admit(group.type, group.max_members, len(group.members), newcomers)
        result = self.run(self.store.decide(JoinGroup(self.app_id, group_id, tuple(users), dry_run)))
        assert (int(result.code), list(result.denied_users)) == (code, denied)
        if group is not None and code == 0 and not dry_run:
            group.members.update(users)

    @rule(group_id=GROUP_IDS, users=USER_LISTS)
    def leave(self, group_id: str, users: list[str]) -> None:
        users = list(dict.fromkeys(users))
        group = self.groups.get(group_id)
        result = self.run(self.store.decide(LeaveGroup(self.app_id, group_id, tuple(users))))
        if group is None:
            assert int(result.code) == 10010
            return
        assert (int(result.code), result.released) == (0, len(group.members & set(users)))
        group.members -= set(users)

    @rule(group_id=GROUP_IDS)
    def destroy(self, group_id: str) -> None:
        group = self.groups.pop(group_id, None)
        result = self.run(self.store.destroy_group(self.app_id, group_id))
        if group is None:
            assert int(result.code) == 10010
        else:
            assert (int(result.code), result.released) == (0, len(group.members))
            self.destroyed.append(set(group.members))

    @rule()
    def release(self) -> None:
        self.run(self.release_worker.release_pending())

    @invariant()
    def counts_match(self) -> None:
        """Each count is the user's live groups plus the destroyed groups still holding them, and nothing else."""
        usage = self.run(self.store.usage(self.app_id, None, None))
        assert usage.groups == len(self.groups)
        assert usage.av_rooms == sum(g.type is GroupType.AVCHATROOM for g in self.groups.values())
        # Another test's server may release this app's tombstones at any time: read what is still pending.
        waiting: dict[str, int] = {}
        for tombstone in self.run(self.redis.execute("SMEMBERS", self.keys.draining)):
            for user in self.run(self.redis.execute("SMEMBERS", tombstone)):
                waiting[user] = waiting.get(user, 0) + 1
        for user, count in waiting.items():
            assert count <= sum(user in members for members in self.destroyed)
        flat = self.run(self.redis.execute("HGETALL", self.keys.user_counts))
        expected = {u: self.user_groups(u) + waiting.get(u, 0) for u in ["ann", "bob", "cat", "dan", "eve"]}
        assert {flat[i]: int(flat[i + 1]) for i in range(0, len(flat), 2)} == {u: n for u, n in expected.items() if n}


@pytest.fixture
def model(redis_server: RedisProcess | ClusterProcess) -> type[ChecksModel]:
    ChecksModel.redis_url = redis_server.url
    return ChecksModel


def test_check_scripts_follow_the_model(model: type[ChecksModel]) -> None:
    runner = model.TestCase
    runner.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
    runner().runTest()
