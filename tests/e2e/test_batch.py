"""Batch and Stream through a real channel: bad input, order, per-check errors, a client that goes away."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from google.rpc import code_pb2

from e2e.helpers import refused
from harness import ServerProcess
from imlimits.v1 import limit_pb2, limit_pb2_grpc, plan_pb2, plan_pb2_grpc

UNKNOWN_APP = 1_399_999_999


def create(app_id: int, group_id: str, owner: str = "owner", members: tuple[str, ...] = ()) -> limit_pb2.Check:
    return limit_pb2.Check(create_group=limit_pb2.CreateGroupRequest(
        app_id=app_id, group_id=group_id, type=limit_pb2.GROUP_TYPE_WORK, owner=owner, members=members))


def join(app_id: int, group_id: str, *users: str) -> limit_pb2.Check:
    return limit_pb2.Check(join_group=limit_pb2.JoinGroupRequest(app_id=app_id, group_id=group_id, users=users))


def destroy(app_id: int, group_id: str) -> limit_pb2.Check:
    return limit_pb2.Check(destroy_group=limit_pb2.DestroyGroupRequest(app_id=app_id, group_id=group_id))


def codes(results: list[limit_pb2.CheckResult]) -> list[str]:
    """Each result in short: the IM code of an answer, or the status name of an error."""
    found = []
    for result in results:
        which = result.WhichOneof("result")
        found.append(code_pb2.Code.Name(result.error.code) if which == "error"
                     else str(result.check.code if which == "check" else result.release.code))
    return found


def both(limits: limit_pb2_grpc.LimitServiceStub, checks: list[limit_pb2.Check]) -> list[list[limit_pb2.CheckResult]]:
    """The checks sent once through Batch and, after that, through Stream."""
    batched = list(limits.Batch(limit_pb2.BatchRequest(checks=checks)).results)
    streamed = list(limits.Stream(iter(checks)))
    return [batched, streamed]


def test_a_batch_holds_1_to_1000_checks(limits: limit_pb2_grpc.LimitServiceStub, plans: plan_pb2_grpc.PlanServiceStub,
                                        app_id: int) -> None:
    plans.CreateApp(plan_pb2.CreateAppRequest(app_id=app_id))
    refused(lambda: limits.Batch(limit_pb2.BatchRequest()), grpc.StatusCode.INVALID_ARGUMENT, "checks: must hold 1")
    too_many = [create(app_id, f"g{i}") for i in range(1001)]
    refused(lambda: limits.Batch(limit_pb2.BatchRequest(checks=too_many)), grpc.StatusCode.INVALID_ARGUMENT,
            "got 1001")
    assert limits.GetUsage(limit_pb2.GetUsageRequest(app_id=app_id)).groups == 0  # nothing ran
    answered = limits.Batch(limit_pb2.BatchRequest(checks=too_many[:1000])).results
    assert codes(list(answered)) == ["0"] * 50 + ["10037"] * 950  # TRIAL: 50 groups per user


def test_one_bad_check_fails_only_itself(limits: limit_pb2_grpc.LimitServiceStub,
                                         plans: plan_pb2_grpc.PlanServiceStub, app_id: int) -> None:
    plans.CreateApp(plan_pb2.CreateAppRequest(app_id=app_id))
    checks = [
        create(app_id, "g"),
        limit_pb2.Check(),  # empty kind
        join(app_id, "g", "ann"),
        join(app_id, "", "bob"),  # malformed
        join(app_id, "g", *(f"u{i}" for i in range(501))),  # over 500 users
        join(UNKNOWN_APP, "g", "cat"),
        limit_pb2.Check(create_group=limit_pb2.CreateGroupRequest(
            app_id=app_id, group_id="t", type=42)),  # type: ignore[arg-type]
        join(app_id, "g", "dan"),
    ]
    # The second time, through Stream, the group exists already: 10025, as its owner's retry.
    for results, first in zip(both(limits, checks), ["0", "10025"], strict=True):
        assert codes(results) == [first, "INVALID_ARGUMENT", "0", "INVALID_ARGUMENT", "INVALID_ARGUMENT", "NOT_FOUND",
                                  "INVALID_ARGUMENT", "0"]
        assert results[1].error.message.startswith("kind: must be one of create_group")
        assert results[3].error.message == "group_id: must not be empty"
        assert results[4].error.message.startswith("users: at most 500 users")
        assert results[5].error.message == f"app {UNKNOWN_APP} not found: create it with CreateApp"
        assert results[6].error.message.startswith("type: must be a GROUP_TYPE_*")
    usage = limits.GetUsage(limit_pb2.GetUsageRequest(app_id=app_id, group_id="g"))
    assert usage.group_members == 3  # owner, ann, dan: the bad checks changed nothing


def test_the_checks_of_one_app_take_effect_in_order(limits: limit_pb2_grpc.LimitServiceStub,
                                                    plans: plan_pb2_grpc.PlanServiceStub, app_id: int) -> None:
    plans.CreateApp(plan_pb2.CreateAppRequest(app_id=app_id))
    other = app_id + 500_000
    plans.CreateApp(plan_pb2.CreateAppRequest(app_id=other))
    checks = [
        join(app_id, "g", "ann"),  # before the group exists
        create(app_id, "g"),
        join(other, "g", "ann"),  # the other app has no group g
        join(app_id, "g", *(f"u{i}" for i in range(18))),  # 19 members
        join(app_id, "g", "bob", "cat"),  # 21 > TRIAL's 20
        join(app_id, "g", "bob"),
        destroy(app_id, "g"),
        join(app_id, "g", "cat"),
        create(app_id, "g", owner="bob"),
        limit_pb2.Check(leave_group=limit_pb2.LeaveGroupRequest(app_id=app_id, group_id="g", users=["bob", "bob"])),
    ]
    results = list(limits.Batch(limit_pb2.BatchRequest(checks=checks)).results)
    assert codes(results) == ["10010", "0", "10010", "0", "10038", "0", "0", "10010", "0", "0"]
    assert results[6].release.released == 20
    assert results[9].release.released == 1
    # Destroyed and created again by the same stream: the same answers.
    assert codes(list(limits.Stream(iter(checks[6:8] + checks[:6])))) == \
        ["0", "10010", "10010", "0", "10010", "0", "10038", "0"]


def test_a_destroy_releases_before_the_next_check_of_its_app(
        limits: limit_pb2_grpc.LimitServiceStub, plans: plan_pb2_grpc.PlanServiceStub, app_id: int) -> None:
    """TRIAL: 50 groups per user. A batch that frees a slot lets a later check of the same batch use it."""
    plans.CreateApp(plan_pb2.CreateAppRequest(app_id=app_id))
    limits.Batch(limit_pb2.BatchRequest(checks=[create(app_id, f"g{i}", owner="busy") for i in range(50)]))
    checks = [create(app_id, "extra", owner="busy"), destroy(app_id, "g0"), create(app_id, "extra", owner="busy")]
    assert codes(list(limits.Batch(limit_pb2.BatchRequest(checks=checks)).results)) == ["10037", "0", "0"]


def test_a_stream_answers_each_check_as_it_is_decided(server: ServerProcess, app_id: int) -> None:
    """Written one at a time, each answer comes back before the next check is written."""

    async def run() -> list[str]:
        async with grpc.aio.insecure_channel(server.target) as channel:
            await plan_pb2_grpc.PlanServiceStub(channel).CreateApp(plan_pb2.CreateAppRequest(app_id=app_id))
            call = limit_pb2_grpc.LimitServiceStub(channel).Stream()
            answers = []
            for check in (create(app_id, "g"), join(app_id, "g", "ann"), join(app_id, "nope", "ann")):
                await call.write(check)
                answers += codes([await call.read()])
            await call.done_writing()
            assert await call.read() == grpc.aio.EOF
            return answers

    assert asyncio.run(run()) == ["0", "0", "10010"]


def test_a_stream_whose_client_goes_away_stops_and_keeps_what_it_decided(server: ServerProcess, app_id: int) -> None:
    async def run() -> int:
        async with grpc.aio.insecure_channel(server.target) as channel:
            plans = plan_pb2_grpc.PlanServiceStub(channel)
            await plans.CreateApp(plan_pb2.CreateAppRequest(app_id=app_id))
            await plans.Upgrade(plan_pb2.UpgradeRequest(app_id=app_id, edition=plan_pb2.EDITION_PRO))
            limits = limit_pb2_grpc.LimitServiceStub(channel)
            await limits.CreateGroup(limit_pb2.CreateGroupRequest(app_id=app_id, group_id="g",
                                                                  type=limit_pb2.GROUP_TYPE_PUBLIC, owner="owner"))
            call = limits.Stream()
            for i in range(150):
                await call.write(join(app_id, "g", f"user-{i}"))
            seen = [await call.read() for _ in range(10)]
            assert codes(seen) == ["0"] * 10
            call.cancel()
            with pytest.raises(asyncio.CancelledError):
                await call.read()
            # The server still answers streams, and every answer seen was recorded.
            again = [result async for result in limits.Stream(iter([join(app_id, "g", "user-0", "late")]))]
            assert codes(again) == ["0"]
            usage = await limits.GetUsage(limit_pb2.GetUsageRequest(app_id=app_id, group_id="g"))
            verified = await limits.VerifyUsage(limit_pb2.VerifyUsageRequest(app_id=app_id))
            assert not verified.drifts
            return usage.group_members

    members = asyncio.run(run())
    assert 1 + 10 + 1 <= members <= 1 + 150 + 1  # owner, the answers seen, "late"; at most every check written
