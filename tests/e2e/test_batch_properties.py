"""A random sequence of checks gets the same answers one unary call at a time, in one Batch, or through a Stream.

Each way runs on its own fresh app with the same small limits, written
straight into the app's limits hash (the check scripts read nothing else), so
every refusal of SPEC section 2 is reachable in a few checks.
"""

from __future__ import annotations

import itertools

import grpc
from google.rpc import status_pb2
from grpc_status import rpc_status
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.crc import key_slot

from harness import ClusterProcess, RedisProcess
from imlimits.v1 import limit_pb2, limit_pb2_grpc, plan_pb2, plan_pb2_grpc

UNKNOWN_APP = 1_399_999_998
_apps = itertools.count(1_450_000_001)
GROUPS = st.sampled_from(["g1", "g2", "g3", ""])  # "" is malformed
USERS = st.lists(st.sampled_from(["ann", "bob", "cat", "dan", "eve"]), min_size=1, max_size=3)
TYPES = st.sampled_from([limit_pb2.GROUP_TYPE_WORK, limit_pb2.GROUP_TYPE_AVCHATROOM, limit_pb2.GROUP_TYPE_COMMUNITY])


@st.composite
def check_of(draw: st.DrawFn) -> tuple[bool, str, dict[str, object]]:
    """(the app is unknown, kind, fields) for any app: the app id is filled in per run."""
    unknown = draw(st.integers(0, 19)) == 0
    kind = draw(st.sampled_from(["create_group", "create_group", "create_room", "join_group", "join_group",
                                 "join_group", "leave_group", "destroy_group", ""]))
    fields: dict[str, object] = {}
    if kind == "create_group":
        fields = {"group_id": draw(GROUPS), "type": draw(TYPES), "owner": draw(st.sampled_from(["ann", "bob", ""])),
                  "members": draw(st.lists(st.sampled_from(["cat", "dan", "eve"]), max_size=2)),
                  "max_members": draw(st.sampled_from([0, 0, 2])), "dry_run": draw(st.booleans())}
    elif kind == "create_room":
        fields = {"room_id": draw(GROUPS), "owner": draw(st.sampled_from(["ann", ""])), "dry_run": draw(st.booleans())}
    elif kind == "join_group":
        fields = {"group_id": draw(GROUPS), "users": draw(USERS), "dry_run": draw(st.booleans())}
    elif kind == "leave_group":
        fields = {"group_id": draw(GROUPS), "users": draw(USERS)}
    elif kind == "destroy_group":
        fields = {"group_id": draw(GROUPS)}
    return unknown, kind, fields


_REQUESTS = {"create_group": limit_pb2.CreateGroupRequest, "create_room": limit_pb2.CreateRoomRequest,
             "join_group": limit_pb2.JoinGroupRequest, "leave_group": limit_pb2.LeaveGroupRequest,
             "destroy_group": limit_pb2.DestroyGroupRequest}
_RPCS = {"create_group": "CreateGroup", "create_room": "CreateRoom", "join_group": "JoinGroup",
         "leave_group": "LeaveGroup", "destroy_group": "DestroyGroup"}


def message(app_id: int, unknown: bool, kind: str, fields: dict[str, object]) -> limit_pb2.Check:
    if not kind:
        return limit_pb2.Check()
    request = _REQUESTS[kind](app_id=UNKNOWN_APP if unknown else app_id, **fields)
    return limit_pb2.Check(**{kind: request})


def unary(limits: limit_pb2_grpc.LimitServiceStub, check: limit_pb2.Check) -> limit_pb2.CheckResult:
    kind = check.WhichOneof("kind")
    if kind is None:
        return limit_pb2.CheckResult(error=status_pb2.Status(code=grpc.StatusCode.INVALID_ARGUMENT.value[0]))
    try:
        answer = getattr(limits, _RPCS[kind])(getattr(check, kind))
    except grpc.RpcError as error:
        # The whole status, details (the refusal's ErrorInfo) included, as a batched check carries it.
        status = rpc_status.from_call(error) or status_pb2.Status(code=error.code().value[0], message=error.details())
        return limit_pb2.CheckResult(error=status)
    if kind in ("leave_group", "destroy_group"):
        return limit_pb2.CheckResult(release=answer)
    return limit_pb2.CheckResult(check=answer)


def small_app(plans: plan_pb2_grpc.PlanServiceStub, redis_server: RedisProcess | ClusterProcess) -> int:
    """A fresh app allowing 3 groups per user, 3 members per group, 1 AV room and Community groups."""
    app_id = next(_apps)
    plans.CreateApp(plan_pb2.CreateAppRequest(app_id=app_id))
    key = f"{{im:{app_id}}}:lim"
    node = redis_server.node(redis_server.owner(key_slot(key.encode()))) if isinstance(redis_server, ClusterProcess) \
        else redis_server.client()
    node.hset(key, mapping={"ug": 3, "gm": 3, "av": 1, "cm": 1})
    return app_id


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(check_of(), min_size=1, max_size=14))
def test_unary_batch_and_stream_give_the_same_answers(
        limits: limit_pb2_grpc.LimitServiceStub, plans: plan_pb2_grpc.PlanServiceStub,
        redis_server: RedisProcess | ClusterProcess, sequence: list[tuple[bool, str, dict[str, object]]]) -> None:
    apps = [small_app(plans, redis_server) for _ in range(3)]
    one_by_one = [unary(limits, message(apps[0], *check)) for check in sequence]
    batched = limits.Batch(limit_pb2.BatchRequest(checks=[message(apps[1], *check) for check in sequence])).results
    streamed = list(limits.Stream(iter([message(apps[2], *check) for check in sequence])))
    assert [comparable(answer) for answer in batched] == [comparable(answer) for answer in one_by_one]
    assert [comparable(answer) for answer in streamed] == [comparable(answer) for answer in one_by_one]
    for who in ({}, *({"user": user} for user in ("ann", "bob", "cat", "dan", "eve"))):
        usages = [limits.GetUsage(limit_pb2.GetUsageRequest(app_id=app_id, **who)) for app_id in apps]
        assert usages[1] == usages[0] and usages[2] == usages[0]


def comparable(result: limit_pb2.CheckResult) -> limit_pb2.CheckResult:
    """An empty `kind` has no unary RPC to compare the message with: its status code is compared."""
    if result.error.message.startswith("kind:"):
        return limit_pb2.CheckResult(error=status_pb2.Status(code=result.error.code))
    return result
