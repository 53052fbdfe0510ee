"""SPEC section 3: concurrent plan calls on one app are serialised, never ABORTED.

Hundreds of ChangePlans at once, each with its own request_id, over three
server processes on one Redis: real changes, reverts, and requests that change
nothing. Every call answers OK or FAILED_PRECONDITION (a plan rule); the
history is exactly the accepted changes; every OK answer is replayed for its
request_id; and a request that changes nothing does not bump the plan's version.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import grpc
import pytest
from redis.crc import key_slot

from e2e.helpers import ts
from harness import ClusterProcess, RedisProcess, ServerProcess
from imlimits.v1 import plan_pb2, plan_pb2_grpc
from imlimits_server import price_list
from imlimits_server.core.plans import AppState
from imlimits_server.main import create_grpc_server
from imlimits_server.service.plan_service import PlanService
from imlimits_server.store import connections
from imlimits_server.store.keys import AppKeys
from imlimits_server.store.redis_store import RedisStore

CALLS = 300
MONTHS = [ts(2031, 1, 10), ts(2031, 2, 10), ts(2031, 3, 10)]

# edition, av_room_unlimited, user_group_limit, group_member_limit, spelled as the history spells them
Plan = tuple[str, str, str, str]


@pytest.fixture(scope="module")
def replicas(server: ServerProcess, redis_server: RedisProcess | ClusterProcess) -> Iterator[list[ServerProcess]]:
    extra = [ServerProcess("--redis-url", redis_server.url, "--trust-client-time", "--redis-timeout", "1").start()
             for _ in range(2)]
    yield [server, *extra]
    for process in extra:
        process.stop()


def requests(app_id: int) -> list[plan_pb2.ChangePlanRequest]:
    """A fixed mix: 40% change nothing (named nothing, stamped last so they are never late), the rest name one item."""
    rng = random.Random(11)
    made = []
    for index in range(CALLS):
        request = plan_pb2.ChangePlanRequest(app_id=app_id, request_id=f"call-{index}")
        kind = rng.choice(["nothing", "nothing", "user_group_limit", "group_member_limit", "av_room_unlimited"])
        if kind == "nothing":
            request.at.CopyFrom(MONTHS[-1])
        else:
            request.at.CopyFrom(rng.choice(MONTHS))
        if kind == "user_group_limit":
            request.user_group_limit = rng.choice([500, 600, 700])
        elif kind == "group_member_limit":
            request.group_member_limit = rng.choice([200, 300])
        elif kind == "av_room_unlimited":
            request.av_room_unlimited = rng.choice([True, False])
        made.append(request)
    return made


def plan_of(app: plan_pb2.App) -> Plan:
    return (plan_pb2.Edition.Name(app.edition), "true" if app.av_room_unlimited else "false",
            str(app.user_group_limit), str(app.group_member_limit))


def send(targets: list[str], calls: list[plan_pb2.ChangePlanRequest],
         shift: int) -> list[tuple[grpc.StatusCode, plan_pb2.App | None]]:
    async def run() -> list[tuple[grpc.StatusCode, plan_pb2.App | None]]:
        channels = [grpc.aio.insecure_channel(target) for target in targets]
        stubs = [plan_pb2_grpc.PlanServiceStub(channel) for channel in channels]

        async def one(index: int, request: plan_pb2.ChangePlanRequest) -> tuple[grpc.StatusCode, plan_pb2.App | None]:
            try:
                return grpc.StatusCode.OK, await stubs[(index + shift) % len(stubs)].ChangePlan(request, timeout=60)
            except grpc.aio.AioRpcError as error:
                return error.code(), None

        answers = await asyncio.gather(*(one(index, request) for index, request in enumerate(calls)))
        for channel in channels:
            await channel.close()
        return list(answers)

    return asyncio.run(run())


def stored_version(redis_server: RedisProcess | ClusterProcess, app_id: int) -> int:
    key = f"{{im:{app_id}}}:lim"
    if isinstance(redis_server, ClusterProcess):
        node = redis_server.node(redis_server.owner(key_slot(key.encode())))
    else:
        node = redis_server.client()
    return int(node.hget(key, "ver") or 0)


def test_hundreds_of_concurrent_changes_are_serialised(replicas: list[ServerProcess],
                                                        redis_server: RedisProcess | ClusterProcess,
                                                        app_id: int) -> None:
    targets = [replica.target for replica in replicas]
    with grpc.insecure_channel(targets[0]) as channel:
        stub = plan_pb2_grpc.PlanServiceStub(channel)
        stub.CreateApp(plan_pb2.CreateAppRequest(app_id=app_id, request_id="create", at=ts(2031, 1, 1)))
        start = plan_of(stub.Upgrade(plan_pb2.UpgradeRequest(
            app_id=app_id, edition=plan_pb2.EDITION_PRO, request_id="upgrade", at=ts(2031, 1, 5))))
        writes_before = stored_version(redis_server, app_id)

        calls = requests(app_id)
        answers = send(targets, calls, shift=0)
        statuses = {status for status, _ in answers}
        assert statuses <= {grpc.StatusCode.OK, grpc.StatusCode.FAILED_PRECONDITION}, statuses

        history = stub.ListPlanChanges(plan_pb2.ListPlanChangesRequest(app_id=app_id)).changes
        final = plan_of(stub.GetApp(plan_pb2.GetAppRequest(app_id=app_id)))

    # Replay the history: each accepted request is one event, its lines consecutive.
    items = ["edition", "av_room_unlimited", "user_group_limit", "group_member_limit"]
    current = list(start)
    after_event: dict[str, Plan] = {}
    snapshots = {start}
    for line in history:
        if line.request_id in ("create", "upgrade"):
            continue
        assert not line.implicit and line.operation == "ChangePlan", line
        index = items.index(line.item)
        assert current[index] == line.old_value, line
        current[index] = line.new_value
        after_event[line.request_id] = (current[0], current[1], current[2], current[3])
        snapshots.add(after_event[line.request_id])
    assert final == tuple(current)

    accepted = {call.request_id for call, (status, _) in zip(calls, answers, strict=True)
                if status is grpc.StatusCode.OK}
    assert set(after_event) <= accepted  # nothing refused is in the history
    no_ops = 0
    for call, (_, answer) in zip(calls, answers, strict=True):
        if answer is None:
            continue
        if call.request_id in after_event:
            assert plan_of(answer) == after_event[call.request_id]
        else:
            no_ops += 1
            assert plan_of(answer) in snapshots, (call, answer)  # the plan as it was when the call was decided
    assert after_event and no_ops >= CALLS // 4, (len(after_event), no_ops)
    # Requests that changed nothing wrote nothing to the plan: one version per accepted change.
    assert stored_version(redis_server, app_id) == writes_before + len(after_event)

    # Every accepted request_id answers its first answer again, from another replica, and changes nothing.
    replayed = send(targets, calls, shift=1)
    for (status, answer), (again_status, again) in zip(answers, replayed, strict=True):
        if status is grpc.StatusCode.OK:
            assert again_status is grpc.StatusCode.OK and again == answer
    with grpc.insecure_channel(targets[0]) as channel:
        stub = plan_pb2_grpc.PlanServiceStub(channel)
        assert stub.ListPlanChanges(plan_pb2.ListPlanChangesRequest(app_id=app_id)).changes == history



class _OvertakenStore(RedisStore):
    """The real store, where another replica's plan write lands between every read and commit."""

    async def commit_app(self, version: str, state: AppState, request_id: str = "", stored_request: str = "") -> bool:
        await self.redis.execute("HINCRBY", AppKeys(state.app_id).limits, "ver", 1)
        return await super().commit_app(version, state, request_id, stored_request)


def test_a_change_that_keeps_losing_answers_unavailable_at_its_deadline(
        server: ServerProcess, redis_server: RedisProcess | ClusterProcess, app_id: int) -> None:
    """Never ABORTED: the call retries until its deadline (here the server's wait for calls without one),
    then UNAVAILABLE. A request that changes nothing still answers (it need not win the race), and its
    answer is remembered for its request_id."""
    with grpc.insecure_channel(server.target) as channel:
        stub = plan_pb2_grpc.PlanServiceStub(channel)
        stub.CreateApp(plan_pb2.CreateAppRequest(app_id=app_id, at=ts(2031, 1, 1)))
        stub.Upgrade(plan_pb2.UpgradeRequest(app_id=app_id, edition=plan_pb2.EDITION_PRO, at=ts(2031, 1, 5)))
    change = plan_pb2.ChangePlanRequest(app_id=app_id, user_group_limit=800, request_id="lost", at=ts(2031, 1, 6))
    no_op = plan_pb2.ChangePlanRequest(app_id=app_id, user_group_limit=500, request_id="same", at=ts(2031, 1, 6))

    async def scenario() -> tuple[grpc.StatusCode, str, plan_pb2.App]:
        connection = connections.connect(redis_server.url, 1.0)
        ready = asyncio.Event()
        ready.set()
        overtaken = create_grpc_server()
        plan_pb2_grpc.add_PlanServiceServicer_to_server(PlanService(
            _OvertakenStore(connection), ZoneInfo("Asia/Shanghai"), lambda: datetime.now(UTC), True,
            price_list.load(None), ready, no_deadline_wait=0.5), overtaken)
        port = overtaken.add_insecure_port("127.0.0.1:0")
        await overtaken.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                stub = plan_pb2_grpc.PlanServiceStub(channel)
                with pytest.raises(grpc.aio.AioRpcError) as caught:
                    await stub.ChangePlan(change)  # no deadline: the server's own wait bounds it
                return caught.value.code(), caught.value.details() or "", await stub.ChangePlan(no_op, timeout=10)
        finally:
            await overtaken.stop(None)
            await connection.close()

    status, details, answer = asyncio.run(scenario())
    assert status is grpc.StatusCode.UNAVAILABLE and "retry" in details, (status, details)
    assert answer.user_group_limit == 500
    with grpc.insecure_channel(server.target) as channel:
        stub = plan_pb2_grpc.PlanServiceStub(channel)
        assert stub.ChangePlan(no_op) == answer
        assert stub.GetApp(plan_pb2.GetAppRequest(app_id=app_id)).user_group_limit == 500
        assert "lost" not in {line.request_id for line in
                              stub.ListPlanChanges(plan_pb2.ListPlanChangesRequest(app_id=app_id)).changes}
