"""The import's over-limit report and the export, at their edges (issue 22, item 8: survivors of a mutation audit)."""

from __future__ import annotations

from e2e.test_onboarding import AV, COMMUNITY, PUBLIC, WORK, exported, members_of, messages, record
from imlimits.v1 import limit_pb2, plan_pb2
from imlimits.v1.limit_pb2_grpc import LimitServiceStub
from imlimits.v1.plan_pb2_grpc import PlanServiceStub


def _trial(plans: PlanServiceStub, app_id: int) -> int:
    """TRIAL: 20 members a group, 50 groups a user, 10 AV rooms."""
    plans.CreateApp(plan_pb2.CreateAppRequest(app_id=app_id))
    return app_id


def test_what_is_exactly_at_its_limit_is_not_reported(plans: PlanServiceStub, limits: LimitServiceStub,
                                                      app_id: int) -> None:
    trial = _trial(plans, app_id)
    at_limit = [record(f"club-{i}", ["edge"], type=PUBLIC) for i in range(50)]  # edge: 50 groups, the limit
    full = record("full", [f"u{i}" for i in range(20)])  # 20 members, the limit
    rooms = [record(f"room-{i}", type=AV) for i in range(10)]  # 10 rooms, the limit
    answer = limits.ImportGroups(messages(trial, [*at_limit, full, *rooms]))
    assert (answer.over_limit_total, list(answer.over_limit)) == (0, [])
    assert limits.GetUsage(limit_pb2.GetUsageRequest(app_id=trial, user="edge")).user_groups == 50
    # At the limit, newcomers are refused: that is a limit reached, not exceeded.
    assert limits.JoinGroup(limit_pb2.JoinGroupRequest(app_id=trial, group_id="full", users=["new"])).code == 10038


def test_the_total_counts_what_exceeds_past_the_reports_1000_entries(plans: PlanServiceStub,
                                                                     limits: LimitServiceStub, app_id: int) -> None:
    trial = _trial(plans, app_id)
    users = [f"u{i}" for i in range(21)]  # each group one over 20 members; each user in 1,050 groups
    groups = [record(f"g{i}", users) for i in range(1050)]
    answer = limits.ImportGroups(messages(trial, *(groups[i:i + 100] for i in range(0, len(groups), 100))))
    assert answer.memberships_added == 1050 * 21
    assert len(answer.over_limit) == 1000
    assert answer.over_limit_total == 1050 + 21
    assert len({(entry.kind, entry.subject) for entry in answer.over_limit}) == 1000


def test_an_av_rooms_own_max_members_is_reported(plans: PlanServiceStub, limits: LimitServiceStub,
                                                 app_id: int) -> None:
    """AV rooms have no plan member limit, but JoinGroup enforces a room's own max_members (10014)."""
    trial = _trial(plans, app_id)
    answer = limits.ImportGroups(messages(trial, [record("live", [f"v{i}" for i in range(8)], type=AV,
                                                         max_members=5),
                                                  record("open", [f"v{i}" for i in range(30)], type=AV)]))
    assert [(o.kind, o.subject, o.limit, o.current) for o in answer.over_limit] == [("group_members", "live", 5, 8)]
    assert answer.over_limit_total == 1
    assert limits.JoinGroup(limit_pb2.JoinGroupRequest(app_id=trial, group_id="live", users=["new"])).code == 10014


def test_groups_past_one_export_calls_budget_all_export_whole(plans: PlanServiceStub, limits: LimitServiceStub,
                                                              app_id: int) -> None:
    """One export call reads up to 10,000 members: the group that would pass that budget starts the next call."""
    plans.CreateApp(plan_pb2.CreateAppRequest(app_id=app_id))
    plans.Upgrade(plan_pb2.UpgradeRequest(app_id=app_id, edition=plan_pb2.EDITION_ULTIMATE))
    sizes = {"a": 6000, "b": 6000, "c": 6000, "d": 3000, "e": 12_000}
    for group_id, size in sizes.items():
        members = [f"{group_id}-{i}" for i in range(size)]
        limits.ImportGroups(messages(app_id, *([record(group_id, members[i:i + 6000], type=COMMUNITY)]
                                               for i in range(0, size, 6000))))
    records = list(limits.ExportGroups(limit_pb2.ExportGroupsRequest(app_id=app_id)))
    whole = {rec.group_id: len(rec.members) for rec in records if rec.group_id != "e"}
    assert whole == {group_id: size for group_id, size in sizes.items() if group_id != "e"}  # each once, whole
    assert sorted(len(rec.members) for rec in records if rec.group_id == "e") == [2000, 10_000]
    assert {group_id: len(group[3]) for group_id, group in exported(limits, app_id).items()} == sizes


def test_the_export_carries_each_groups_own_max_members(plans: PlanServiceStub, limits: LimitServiceStub,
                                                        app_id: int) -> None:
    plans.CreateApp(plan_pb2.CreateAppRequest(app_id=app_id))
    limits.CreateGroup(limit_pb2.CreateGroupRequest(app_id=app_id, group_id="capped", type=WORK, owner="o",
                                                    max_members=15))
    limits.ImportGroups(messages(app_id, [record("room", ["v"], type=AV, max_members=300),
                                          record("plain", ["v"])]))
    caps = {rec.group_id: rec.max_members for rec in limits.ExportGroups(limit_pb2.ExportGroupsRequest(app_id=app_id))}
    assert caps == {"capped": 15, "room": 300, "plain": 0}
    assert members_of(limits, app_id, "capped") == 1
