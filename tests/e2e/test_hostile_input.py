"""Hostile input: generated requests for every RPC and garbage on the port.

Never INTERNAL or UNKNOWN, the server never dies, and a request that is
refused (a gRPC error or an IM code) changes nothing.
"""

from __future__ import annotations

import random
import socket
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness import ServerProcess
from imlimits.v1 import limit_pb2, limit_pb2_grpc, plan_pb2, plan_pb2_grpc

APP = 1_900_000_001
UNKNOWN_APP = 1_900_000_002
SANE = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND, grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.ALREADY_EXISTS}

app_ids = st.sampled_from([APP, APP, APP, UNKNOWN_APP, 0, 2**64 - 1])
ids = st.one_of(
    st.sampled_from(["g1", "g2", "alice", "bob", "", "x" * 32, "y" * 33, "z" * 48, "w" * 49, "群" * 16, "群" * 17]),
    st.text(max_size=60),
)
users = st.one_of(st.lists(ids, max_size=8), st.lists(st.just("u"), min_size=499, max_size=502))
enums = st.integers(min_value=-3, max_value=8)
counts = st.one_of(st.integers(min_value=0, max_value=7000), st.just(2**32 - 1))
maybe = st.booleans()


@st.composite
def timestamps(draw: st.DrawFn) -> Timestamp | None:
    if draw(st.booleans()):
        return None
    seconds = draw(st.one_of(
        st.integers(min_value=-(2**40), max_value=2**40),
        st.integers(min_value=1_546_300_800, max_value=1_900_000_000),
        # The edges of protobuf's range and of the service's.
        st.sampled_from([-62_135_596_801, -62_135_596_800, 253_402_300_799, 253_402_300_800, 946_684_799,
                         946_684_800, 4_102_444_799, 4_102_444_800]),
    ))
    nanos = draw(st.one_of(st.integers(min_value=0, max_value=999_999_999), st.sampled_from([-1, 10**9])))
    return Timestamp(seconds=seconds, nanos=nanos)


def optional(draw: st.DrawFn, strategy: st.SearchStrategy[Any]) -> Any:
    return draw(strategy) if draw(st.booleans()) else None


@st.composite
def plan_calls(draw: st.DrawFn) -> tuple[str, Message]:
    kind = draw(st.sampled_from(["CreateApp", "GetApp", "Upgrade", "ChangePlan", "Deactivate", "ListPlanChanges",
                                 "GetBill"]))
    app_id = draw(app_ids)
    if kind == "CreateApp":
        return kind, plan_pb2.CreateAppRequest(app_id=app_id, request_id=draw(ids), at=draw(timestamps()))
    if kind in ("GetApp", "ListPlanChanges"):
        return kind, getattr(plan_pb2, f"{kind}Request")(app_id=app_id)
    if kind == "GetBill":
        return kind, plan_pb2.GetBillRequest(app_id=app_id, month=draw(st.one_of(
            st.text(max_size=10), st.from_regex(r"\d{4}-\d{2}", fullmatch=True))))
    if kind == "Deactivate":
        # Confirmed deactivations would end the game early: only the refused kind.
        return kind, plan_pb2.DeactivateRequest(app_id=app_id, confirm=False, request_id=draw(ids))
    request = getattr(plan_pb2, f"{kind}Request")(
        app_id=app_id, av_room_unlimited=optional(draw, maybe), user_group_limit=optional(draw, counts),
        group_member_limit=optional(draw, counts), request_id=draw(ids), at=draw(timestamps()),
        dry_run=draw(maybe))
    edition = optional(draw, enums) if kind == "ChangePlan" else draw(enums)
    if edition is not None:
        request.edition = edition
    return kind, request


@st.composite
def check_calls(draw: st.DrawFn) -> tuple[str, Message]:
    kind = draw(st.sampled_from(["CreateGroup", "CreateRoom", "JoinGroup", "LeaveGroup", "DestroyGroup",
                                 "GetUsage"]))
    app_id = draw(app_ids)
    if kind == "CreateGroup":
        return kind, limit_pb2.CreateGroupRequest(
            app_id=app_id, group_id=draw(ids), type=limit_pb2.GroupType.ValueType(draw(enums)), owner=draw(ids),
            members=draw(users),
            max_members=draw(counts), dry_run=draw(maybe))
    if kind == "CreateRoom":
        return kind, limit_pb2.CreateRoomRequest(app_id=app_id, room_id=draw(ids), owner=draw(ids),
                                                 dry_run=draw(maybe))
    if kind in ("JoinGroup", "LeaveGroup"):
        request = getattr(limit_pb2, f"{kind}Request")(app_id=app_id, group_id=draw(ids), users=draw(users))
        if kind == "JoinGroup":
            request.dry_run = draw(maybe)
        return kind, request
    if kind == "DestroyGroup":
        return kind, limit_pb2.DestroyGroupRequest(app_id=app_id, group_id=draw(ids))
    return kind, limit_pb2.GetUsageRequest(app_id=app_id, user=optional(draw, ids), group_id=optional(draw, ids))


class Service:
    def __init__(self, channel: grpc.Channel) -> None:
        self.plans = plan_pb2_grpc.PlanServiceStub(channel)
        self.checks = limit_pb2_grpc.LimitServiceStub(channel)

    def call(self, kind: str, request: Message) -> tuple[grpc.StatusCode, Message | None]:
        stub = self.plans if hasattr(self.plans, kind) else self.checks
        method: Callable[..., Message] = getattr(stub, kind)
        try:
            return grpc.StatusCode.OK, method(request, timeout=10)
        except grpc.RpcError as error:
            return error.code(), None

    def snapshot(self, request: Message) -> tuple[Any, ...]:
        """What a refused request could have touched: the plan, its history, and the counts it names."""
        app = self.plans.GetApp(plan_pb2.GetAppRequest(app_id=APP))
        history = len(self.plans.ListPlanChanges(plan_pb2.ListPlanChangesRequest(app_id=APP)).changes)
        usage = self.checks.GetUsage(limit_pb2.GetUsageRequest(app_id=APP))
        named = {value for field, value in request.ListFields() if isinstance(value, str)}
        named |= {user for field, value in request.ListFields() if field.is_repeated for user in value}
        per_name = []
        for name in sorted(named):
            try:
                per_name.append(self.checks.GetUsage(limit_pb2.GetUsageRequest(app_id=APP, user=name)).user_groups)
            except grpc.RpcError:
                per_name.append(None)
            try:
                per_name.append(
                    self.checks.GetUsage(limit_pb2.GetUsageRequest(app_id=APP, group_id=name)).group_members)
            except grpc.RpcError:
                per_name.append(None)
        return app, history, usage, tuple(per_name)


@pytest.fixture(scope="module")
def service(server: ServerProcess) -> Service:
    with grpc.insecure_channel(server.target) as channel:
        connected = Service(channel)
        connected.plans.CreateApp(plan_pb2.CreateAppRequest(app_id=APP))
        connected.checks.CreateGroup(limit_pb2.CreateGroupRequest(app_id=APP, group_id="g1",
                                                                  type=limit_pb2.GROUP_TYPE_WORK, owner="alice"))
    channel = grpc.insecure_channel(server.target)
    return Service(channel)


def _refused(status: grpc.StatusCode, answer: Message | None) -> bool:
    return status is not grpc.StatusCode.OK or getattr(answer, "code", 0) != 0


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(call=st.one_of(plan_calls(), check_calls()))
def test_generated_requests(service: Service, server: ServerProcess, call: tuple[str, Message]) -> None:
    kind, request = call
    before = service.snapshot(request)
    status, answer = service.call(kind, request)
    assert status is grpc.StatusCode.OK or status in SANE, (kind, status, request)
    if _refused(status, answer) or getattr(request, "dry_run", False):
        assert service.snapshot(request) == before, (kind, status, answer, request)
    assert server.process is not None and server.process.poll() is None


@pytest.mark.parametrize("seed", range(5))
def test_garbage_on_the_port(service: Service, server: ServerProcess, seed: int) -> None:
    rng = random.Random(seed)
    preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" if seed % 2 else b""
    for _ in range(20):
        with socket.create_connection(("127.0.0.1", server.port or 0), timeout=2) as raw:
            raw.sendall(preface + rng.randbytes(rng.randrange(1, 4096)))
    assert service.plans.GetApp(plan_pb2.GetAppRequest(app_id=APP), timeout=10).app_id == APP



# Byte lengths, not characters: 界 is 3 bytes in UTF-8, so 11 of them are 33 bytes. None of these ids is one
# the generated requests above sample, so no earlier example can have created the group or filled a user's groups.
ID_BOUNDS = [("user", "q" * 32, "q" * 33), ("user", "界" * 10 + "qq", "界" * 11),
             ("group", "b" * 48, "b" * 49), ("group", "界" * 16, "界" * 16 + "b")]


@pytest.mark.parametrize(("kind", "longest", "too_long"), ID_BOUNDS)
def test_id_byte_bounds(service: Service, kind: str, longest: str, too_long: str) -> None:
    """SPEC section 3: user ids 1..32 bytes, group ids 1..48 bytes; one byte more is INVALID_ARGUMENT."""
    def create(identifier: str) -> tuple[grpc.StatusCode, Message | None]:
        group_id, member = (identifier, "m") if kind == "group" else ("bounds", identifier)
        return service.call("CreateGroup", limit_pb2.CreateGroupRequest(
            app_id=APP, group_id=group_id, type=limit_pb2.GROUP_TYPE_PUBLIC, owner="o", members=[member],
            dry_run=True))

    status, answer = create(longest)
    assert status is grpc.StatusCode.OK and isinstance(answer, limit_pb2.CheckResponse) and answer.code == 0, answer
    assert create(too_long)[0] is grpc.StatusCode.INVALID_ARGUMENT
