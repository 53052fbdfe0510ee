"""Property: whatever the records, their order and their split into messages, an import (then a replacing one)
leaves exactly the model's groups, members and counts, and its export is that model."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imlimits.v1 import limit_pb2, plan_pb2
from imlimits.v1.limit_pb2_grpc import LimitServiceStub
from imlimits.v1.plan_pb2_grpc import PlanServiceStub

_apps = itertools.count(1_800_000_001)
TYPES = [limit_pb2.GROUP_TYPE_WORK, limit_pb2.GROUP_TYPE_PUBLIC, limit_pb2.GROUP_TYPE_AVCHATROOM,
         limit_pb2.GROUP_TYPE_COMMUNITY]
GROUP_IDS = [f"g{i}" for i in range(5)]
USERS = [f"u{i}" for i in range(7)]


@dataclass(frozen=True)
class Group:
    type: int
    owner: str
    members: frozenset[str]

    def memberships(self) -> frozenset[str]:
        owner_is_member = self.owner and self.type != limit_pb2.GROUP_TYPE_AVCHATROOM
        return self.members | ({self.owner} if owner_is_member else set())


def groups(ids: list[str]) -> st.SearchStrategy[dict[str, Group]]:
    return st.dictionaries(st.sampled_from(ids), st.builds(
        Group, st.sampled_from(TYPES), st.sampled_from(["", *USERS]), st.frozensets(st.sampled_from(USERS))),
        max_size=len(ids))


@st.composite
def streams(draw: st.DrawFn, model: dict[str, Group], types: dict[str, int]) -> list[list[limit_pb2.GroupRecord]]:
    """The model as records: each group's members split over records (the owner on one of them, or all),
    shuffled, split into messages."""
    records = []
    for group_id, group in model.items():
        members = sorted(group.members)
        cuts = sorted(draw(st.lists(st.integers(0, len(members)), max_size=2)))
        slices = [members[a:b] for a, b in zip([0, *cuts], [*cuts, len(members)], strict=True)]
        for index, slice_ in enumerate(slices):
            owner = group.owner if index == 0 or draw(st.booleans()) else ""
            group_type = limit_pb2.GroupType.ValueType(types.get(group_id, group.type))
            records.append(limit_pb2.GroupRecord(group_id=group_id, type=group_type, owner=owner, members=slice_))
    records = draw(st.permutations(records))
    cuts = sorted(draw(st.lists(st.integers(0, len(records)), max_size=3)))
    return [list(records[a:b]) for a, b in zip([0, *cuts], [*cuts, len(records)], strict=True)]


def check_matches(limits: LimitServiceStub, app_id: int, expected: dict[str, frozenset[str]],
                  types: dict[str, int]) -> None:
    usage = limits.GetUsage(limit_pb2.GetUsageRequest(app_id=app_id))
    assert usage.groups == len(expected)
    assert usage.av_rooms == sum(types[g] == limit_pb2.GROUP_TYPE_AVCHATROOM for g in expected)
    for group_id, members in expected.items():
        assert limits.GetUsage(limit_pb2.GetUsageRequest(app_id=app_id, group_id=group_id)).group_members == \
            len(members)
    for user in USERS:
        assert limits.GetUsage(limit_pb2.GetUsageRequest(app_id=app_id, user=user)).user_groups == \
            sum(user in members for members in expected.values())
    exported: dict[str, set[str]] = {}
    for record in limits.ExportGroups(limit_pb2.ExportGroupsRequest(app_id=app_id)):
        assert record.type == types[record.group_id]
        exported.setdefault(record.group_id, set()).update(record.members)
    assert exported == {group_id: set(members) for group_id, members in expected.items()}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), first=groups(GROUP_IDS[:4]))
def test_import_then_replace_match_the_model(plans: PlanServiceStub, limits: LimitServiceStub,
                                             data: st.DataObject, first: dict[str, Group]) -> None:
    app_id = next(_apps)
    plans.CreateApp(plan_pb2.CreateAppRequest(app_id=app_id))
    types = {group_id: group.type for group_id, group in first.items()}

    def send(stream: list[list[limit_pb2.GroupRecord]], replace: bool) -> limit_pb2.ImportGroupsResponse:
        messages = [limit_pb2.ImportGroupsRequest(app_id=app_id, groups=batch, replace=replace) for batch in stream]
        return limits.ImportGroups(iter(messages))

    answer = send(data.draw(streams(first, types)), replace=False)
    expected = {group_id: group.memberships() for group_id, group in first.items()}
    assert (answer.groups_created, answer.memberships_added) == \
        (len(first), sum(len(members) for members in expected.values()))
    check_matches(limits, app_id, expected, types)
    again = send(data.draw(streams(first, types)), replace=False)
    assert (again.groups_created, again.groups_updated, again.memberships_added) == (0, 0, 0)

    # A replacing import names some of those groups and a new one: the named ones end exactly as named.
    second = data.draw(groups(GROUP_IDS))
    types |= {group_id: group.type for group_id, group in second.items() if group_id not in types}
    try:
        send(data.draw(streams(second, types)), replace=True)
    except grpc.RpcError as error:  # the generated type of a group never conflicts: streams() keeps types
        raise AssertionError(error.details()) from None
    for group_id, group in second.items():
        named = Group(types[group_id], group.owner, group.members)
        expected[group_id] = named.memberships()
    check_matches(limits, app_id, expected, types)
    assert limits.VerifyUsage(limit_pb2.VerifyUsageRequest(app_id=app_id)).drifts == []
