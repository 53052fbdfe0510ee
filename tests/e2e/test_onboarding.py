"""ImportGroups and ExportGroups through a real channel: grandfathered counts, replace, bad input, round trips."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator

import grpc
import pytest

from e2e.helpers import refused
from imlimits.v1 import limit_pb2, plan_pb2
from imlimits.v1.limit_pb2_grpc import LimitServiceStub
from imlimits.v1.plan_pb2_grpc import PlanServiceStub

Code = grpc.StatusCode
WORK, PUBLIC, AV = limit_pb2.GROUP_TYPE_WORK, limit_pb2.GROUP_TYPE_PUBLIC, limit_pb2.GROUP_TYPE_AVCHATROOM
COMMUNITY = limit_pb2.GROUP_TYPE_COMMUNITY


def record(group_id: str, members: Iterable[str] = (), type: int = WORK, owner: str = "",
           max_members: int = 0) -> limit_pb2.GroupRecord:
    return limit_pb2.GroupRecord(group_id=group_id, type=limit_pb2.GroupType.ValueType(type), owner=owner,
                                 members=list(members), max_members=max_members)


def messages(app_id: int, *batches: list[limit_pb2.GroupRecord],
             replace: bool = False) -> Iterator[limit_pb2.ImportGroupsRequest]:
    for batch in batches:
        yield limit_pb2.ImportGroupsRequest(app_id=app_id, groups=batch, replace=replace)


def members_of(limits: LimitServiceStub, app_id: int, group_id: str) -> int:
    return limits.GetUsage(limit_pb2.GetUsageRequest(app_id=app_id, group_id=group_id)).group_members


def groups_of(limits: LimitServiceStub, app_id: int, user: str) -> int:
    return limits.GetUsage(limit_pb2.GetUsageRequest(app_id=app_id, user=user)).user_groups


def exported(limits: LimitServiceStub, app_id: int) -> dict[str, tuple[int, str, int, frozenset[str]]]:
    """Each group as (type, owner, max_members, members), its records merged; records hold at most 10,000."""
    groups: dict[str, tuple[int, str, int, frozenset[str]]] = {}
    for rec in limits.ExportGroups(limit_pb2.ExportGroupsRequest(app_id=app_id)):
        assert len(rec.members) <= 10_000
        known = groups.get(rec.group_id, (rec.type, rec.owner, rec.max_members, frozenset()))
        assert known[:3] == (rec.type, rec.owner, rec.max_members)
        groups[rec.group_id] = (*known[:3], known[3] | set(rec.members))
    return groups


@pytest.fixture
def trial(plans: PlanServiceStub, app_id: int) -> int:
    """TRIAL: 20 members a group, 50 groups a user, 10 AV rooms."""
    plans.CreateApp(plan_pb2.CreateAppRequest(app_id=app_id))
    return app_id


def test_import_grandfathers_what_exists_and_reports_it(limits: LimitServiceStub, trial: int) -> None:
    big = record("big", [f"u{i}" for i in range(30)], owner="boss")
    rooms = [record(f"room-{i}", type=AV, owner="host") for i in range(12)]
    heavy = [record(f"club-{i}", ["heavy"], type=PUBLIC) for i in range(55)]
    answer = limits.ImportGroups(messages(trial, [big, *rooms[:6]], [*rooms[6:], *heavy]))
    assert (answer.groups_created, answer.groups_updated, answer.memberships_added, answer.memberships_removed) == \
        (68, 0, 31 + 55, 0)
    assert answer.over_limit_total == 3
    assert {(o.kind, o.subject, o.limit, o.current) for o in answer.over_limit} == {
        ("av_rooms", "", 10, 12), ("group_members", "big", 20, 31), ("user_groups", "heavy", 50, 55)}
    usage = limits.GetUsage(limit_pb2.GetUsageRequest(app_id=trial, user="heavy", group_id="big"))
    assert (usage.av_rooms, usage.groups, usage.user_groups, usage.group_members) == (12, 68, 55, 31)
    # The AVChatRoom's owner is a member only once it joins; every other type's owner is one from the start.
    assert groups_of(limits, trial, "host") == 0 and groups_of(limits, trial, "boss") == 1
    # What exceeds the plan now refuses newcomers, as any check would.
    assert limits.JoinGroup(limit_pb2.JoinGroupRequest(app_id=trial, group_id="big", users=["new"])).code == 10038
    assert limits.CreateRoom(limit_pb2.CreateRoomRequest(app_id=trial, room_id="one-more")).code == 10036
    # A re-run changes nothing.
    again = limits.ImportGroups(messages(trial, [big, *rooms, *heavy]))
    assert (again.groups_created, again.groups_updated, again.memberships_added, again.over_limit_total) == \
        (0, 0, 0, 3)
    assert limits.GetUsage(limit_pb2.GetUsageRequest(app_id=trial, user="heavy")).user_groups == 55
    assert limits.VerifyUsage(limit_pb2.VerifyUsageRequest(app_id=trial)).drifts == []


def test_existing_groups_gain_missing_members_across_records(limits: LimitServiceStub, trial: int) -> None:
    limits.CreateGroup(limit_pb2.CreateGroupRequest(app_id=trial, group_id="g", type=WORK, owner="o",
                                                    members=["a", "b"]))
    answer = limits.ImportGroups(messages(trial, [record("g", ["b", "c"], owner="o")], [record("g", ["d", "c"])]))
    assert (answer.groups_created, answer.groups_updated, answer.memberships_added) == (0, 1, 2)
    assert members_of(limits, trial, "g") == 5
    assert [groups_of(limits, trial, user) for user in "obcd"] == [1, 1, 1, 1]
    # Each record in a message of its own: batches in flight behind the refused one apply nothing.
    refused(lambda: limits.ImportGroups(messages(trial, [record("before")], [record("g", type=PUBLIC)],
                                                 *([record(f"after-{i}")] for i in range(8)))),
            Code.INVALID_ARGUMENT, "record 2 (group 'g'): type: group 'g' exists as GROUP_TYPE_WORK")
    assert members_of(limits, trial, "before") == 0
    refused(lambda: members_of(limits, trial, "after-0"), Code.NOT_FOUND)
    assert limits.GetUsage(limit_pb2.GetUsageRequest(app_id=trial)).groups == 2


def test_replace_makes_named_groups_exactly_the_streams(limits: LimitServiceStub, trial: int) -> None:
    for group_id in ("g", "untouched"):
        limits.CreateGroup(limit_pb2.CreateGroupRequest(app_id=trial, group_id=group_id, type=WORK, owner="o",
                                                        members=["a", "b", "c"]))
    limits.CreateRoom(limit_pb2.CreateRoomRequest(app_id=trial, room_id="room", owner="host"))
    limits.JoinGroup(limit_pb2.JoinGroupRequest(app_id=trial, group_id="room", users=["host", "a"]))
    answer = limits.ImportGroups(messages(
        trial, [record("g", ["a"], owner="o"), record("room", type=AV, owner="host")],
        [record("g", ["d"]), record("new", ["a"], owner="p")], replace=True))
    assert (answer.groups_created, answer.groups_updated, answer.memberships_added, answer.memberships_removed) == \
        (1, 2, 3, 4)
    assert [members_of(limits, trial, group_id) for group_id in ("g", "untouched", "room", "new")] == [3, 4, 0, 2]
    assert [groups_of(limits, trial, user) for user in ("o", "a", "b", "d", "host", "p")] == [2, 3, 1, 1, 0, 1]
    again = limits.ImportGroups(messages(
        trial, [record("g", ["a"], owner="o"), record("room", type=AV, owner="host")],
        [record("g", ["d"]), record("new", ["a"], owner="p")], replace=True))
    assert (again.groups_updated, again.memberships_added, again.memberships_removed) == (0, 0, 0)
    assert limits.VerifyUsage(limit_pb2.VerifyUsageRequest(app_id=trial)).drifts == []


def test_bad_input_names_the_record_and_keeps_what_came_before(
        plans: PlanServiceStub, limits: LimitServiceStub, trial: int, app_id: int) -> None:
    good = [record("ok-1", ["a"]), record("ok-2", ["a"])]
    cases: list[tuple[list[list[limit_pb2.GroupRecord]], str, str, dict[str, object]]] = [
        ([good, [record("x" * 49)]], "record 3 (group 'xxx", "group_id: must be at most 48 bytes", {}),
        ([[*good, record("bad", ["y" * 33])]], "record 3 (group 'bad'): members[0]", "at most 32 bytes", {}),
        ([[*good, record("big", [f"u{i}" for i in range(10001)])]], "record 3 (group 'big'): members",
         "at most 10000 per record", {}),
        ([[*good, record("t", type=99)]], "record 3 (group 't'): type", "GROUP_TYPE", {}),
        ([[*good, record("t", type=0)]], "record 3 (group 't'): type", "GROUP_TYPE", {}),
        ([good, [record("u")]], "message 2 (from record 3)", "same app", {"app_id": trial + 10**9}),
        ([good, [record("u")]], "message 2 (from record 3)", "says true", {"replace": True}),
    ]
    for batches, where, rule, second in cases:
        stream = [limit_pb2.ImportGroupsRequest(app_id=trial, groups=batch) for batch in batches]
        for field, value in second.items():
            setattr(stream[1], field, value)
        error = refused(lambda: limits.ImportGroups(iter(stream)), Code.INVALID_ARGUMENT, where)  # noqa: B023
        assert rule in error.details()
        assert members_of(limits, trial, "ok-2") == 1  # the records before it stay applied
    assert groups_of(limits, trial, "a") == 2  # and a re-run of them changed nothing
    refused(lambda: limits.ImportGroups(messages(app_id + 10**9, good)), Code.NOT_FOUND, "record 1")
    refused(lambda: limits.ImportGroups(messages(app_id + 10**9, [])), Code.NOT_FOUND, "not found")
    refused(lambda: limits.ImportGroups(messages(0, good)), Code.INVALID_ARGUMENT, "app_id")
    plans.Deactivate(plan_pb2.DeactivateRequest(app_id=trial, confirm=True))
    refused(lambda: limits.ImportGroups(messages(trial, good)), Code.FAILED_PRECONDITION, "deactivated")


def test_joins_racing_an_import_are_never_lost_nor_counted_twice(
        plans: PlanServiceStub, limits: LimitServiceStub, app_id: int) -> None:
    plans.CreateApp(plan_pb2.CreateAppRequest(app_id=app_id))
    plans.Upgrade(plan_pb2.UpgradeRequest(app_id=app_id, edition=plan_pb2.EDITION_ULTIMATE))
    groups = [f"g{i}" for i in range(40)]
    for group_id in groups:
        limits.CreateGroup(limit_pb2.CreateGroupRequest(app_id=app_id, group_id=group_id, type=WORK))
    imported = [f"m{i}" for i in range(150)]
    racing = imported[::7] + [f"j{i}" for i in range(20)]
    importing = threading.Event()

    def join_and_leave() -> None:
        importing.wait()
        for group_id in groups:
            assert limits.JoinGroup(limit_pb2.JoinGroupRequest(app_id=app_id, group_id=group_id,
                                                               users=racing)).code == 0
            limits.LeaveGroup(limit_pb2.LeaveGroupRequest(app_id=app_id, group_id=group_id, users=["j0"]))

    def stream() -> Iterator[limit_pb2.ImportGroupsRequest]:
        for group_id in groups:
            yield limit_pb2.ImportGroupsRequest(app_id=app_id, groups=[record(group_id, imported)])
            importing.set()

    workers = [threading.Thread(target=join_and_leave) for _ in range(2)]
    for worker in workers:
        worker.start()
    answer = limits.ImportGroups(stream())
    for worker in workers:
        worker.join()
    expected = set(imported) | set(racing) - {"j0"}
    assert all(members_of(limits, app_id, group_id) == len(expected) for group_id in groups)
    assert {groups_of(limits, app_id, user) for user in expected} == {len(groups)}
    assert groups_of(limits, app_id, "j0") == 0
    assert answer.memberships_added <= len(groups) * len(imported)
    assert limits.VerifyUsage(limit_pb2.VerifyUsageRequest(app_id=app_id)).drifts == []


def test_export_then_import_into_a_new_app_reproduces_usage(
        plans: PlanServiceStub, limits: LimitServiceStub, app_id: int) -> None:
    source, copy = app_id * 1000 + 1, app_id * 1000 + 2
    for created in (source, copy):
        plans.CreateApp(plan_pb2.CreateAppRequest(app_id=created))
        plans.Upgrade(plan_pb2.UpgradeRequest(app_id=created, edition=plan_pb2.EDITION_ULTIMATE))
    check = limits
    check.CreateGroup(limit_pb2.CreateGroupRequest(app_id=source, group_id="w", type=WORK, owner="o",
                                                   members=["a", "b"], max_members=50))
    check.CreateGroup(limit_pb2.CreateGroupRequest(app_id=source, group_id="left", type=PUBLIC, owner="gone",
                                                   members=["a"]))
    check.LeaveGroup(limit_pb2.LeaveGroupRequest(app_id=source, group_id="left", users=["gone"]))
    check.CreateRoom(limit_pb2.CreateRoomRequest(app_id=source, room_id="r", owner="host"))
    check.JoinGroup(limit_pb2.JoinGroupRequest(app_id=source, group_id="r", users=["a", "c"]))
    check.CreateRoom(limit_pb2.CreateRoomRequest(app_id=source, room_id="empty", owner="host"))
    check.CreateGroup(limit_pb2.CreateGroupRequest(app_id=source, group_id="gone", type=WORK, owner="o"))
    check.DestroyGroup(limit_pb2.DestroyGroupRequest(app_id=source, group_id="gone"))
    huge = [f"user-{i}" for i in range(12_345)]
    limits.ImportGroups(messages(source, [record("huge", huge[:9000], type=COMMUNITY, owner="user-0")],
                                 [record("huge", huge[9000:], type=COMMUNITY)]))
    original = exported(limits, source)
    assert sorted(original) == ["empty", "huge", "left", "r", "w"]
    assert original["left"][1] == ""  # an owner who left is exported as no owner, so the copy matches
    records = list(limits.ExportGroups(limit_pb2.ExportGroupsRequest(app_id=source)))
    answer = limits.ImportGroups(iter([limit_pb2.ImportGroupsRequest(app_id=copy, groups=records[i:i + 3])
                                       for i in range(0, len(records), 3)]))
    assert (answer.groups_created, answer.memberships_added) == (5, 12_345 + 3 + 1 + 2)
    assert exported(limits, copy) == original
    for user in ("o", "a", "b", "c", "gone", "host", "user-0", "user-12344"):
        assert groups_of(limits, copy, user) == groups_of(limits, source, user), user
    for group_id in original:
        assert members_of(limits, copy, group_id) == members_of(limits, source, group_id)
    usage = [limits.GetUsage(limit_pb2.GetUsageRequest(app_id=app)) for app in (source, copy)]
    assert (usage[0].groups, usage[0].av_rooms) == (usage[1].groups, usage[1].av_rooms) == (5, 2)
    assert limits.VerifyUsage(limit_pb2.VerifyUsageRequest(app_id=copy)).drifts == []


def test_export_refuses_unknown_apps(limits: LimitServiceStub, app_id: int) -> None:
    refused(lambda: list(limits.ExportGroups(limit_pb2.ExportGroupsRequest(app_id=app_id))), Code.NOT_FOUND)
    refused(lambda: list(limits.ExportGroups(limit_pb2.ExportGroupsRequest())), Code.INVALID_ARGUMENT, "app_id")
