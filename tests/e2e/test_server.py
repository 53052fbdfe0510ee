"""The server process: reflection, health, settings, the embedded default, signals, Redis outages."""

from __future__ import annotations

import os
import signal
import time
from datetime import UTC, datetime
from pathlib import Path

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from e2e.helpers import refused, ts
from harness import RedisProcess, ServerProcess
from imlimits.v1 import limit_pb2, limit_pb2_grpc, plan_pb2, plan_pb2_grpc
from imlimits_server import settings

SERVING, NOT_SERVING = health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING




def test_reflection_lists_both_services(server: ServerProcess) -> None:
    with grpc.insecure_channel(server.target) as channel:
        services = set(ProtoReflectionDescriptorDatabase(channel).get_services())
    assert {"imlimits.v1.PlanService", "imlimits.v1.LimitService", "grpc.health.v1.Health"} <= services


def test_at_is_refused_without_trust_client_time(own_redis: RedisProcess, app_id: int) -> None:
    process = ServerProcess("--redis-url", own_redis.url).start()
    try:
        with grpc.insecure_channel(process.target) as channel:
            stub = plan_pb2_grpc.PlanServiceStub(channel)
            refused(lambda: stub.CreateApp(plan_pb2.CreateAppRequest(app_id=app_id, at=ts(2019, 1, 1))),
                    grpc.StatusCode.INVALID_ARGUMENT, "--trust-client-time")
            assert stub.CreateApp(plan_pb2.CreateAppRequest(app_id=app_id)).app_id == app_id
    finally:
        process.stop()


def test_time_zone_change_refused_unless_forced(own_redis: RedisProcess) -> None:
    ServerProcess("--redis-url", own_redis.url, "--timezone", "Asia/Shanghai").start().stop()
    other = ServerProcess("--redis-url", own_redis.url, "--timezone", "Europe/Berlin").start(wait_serving=False)
    assert other.wait_exit() == 1
    assert "--force-timezone" in "".join(other.output)
    forced = ServerProcess("--redis-url", own_redis.url, "--timezone", "Europe/Berlin", "--force-timezone").start()
    forced.stop()
    ServerProcess("--redis-url", own_redis.url, "--timezone", "Europe/Berlin").start().stop()


def _upgrade_then_change_edition_across_utc_midnight(plans: plan_pb2_grpc.PlanServiceStub, app_id: int) -> None:
    """Upgrade at 20:00 UTC on Feb 28th, change the edition at 01:00 UTC on March 1st.

    In UTC these are two months, so the second edition change is allowed; in
    Asia/Shanghai both fall on March 1st and the second is refused.
    """
    plans.CreateApp(plan_pb2.CreateAppRequest(app_id=app_id, at=_utc(2019, 1, 2, 0)))
    plans.Upgrade(plan_pb2.UpgradeRequest(app_id=app_id, edition=plan_pb2.EDITION_PRO, at=_utc(2019, 2, 28, 20)))
    plans.ChangePlan(plan_pb2.ChangePlanRequest(app_id=app_id, edition=plan_pb2.EDITION_ULTIMATE,
                                                at=_utc(2019, 3, 1, 1)))


def _utc(year: int, month: int, day: int, hour: int) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(datetime(year, month, day, hour, tzinfo=UTC))
    return stamp


def test_settings_from_environment(own_redis: RedisProcess, app_id: int) -> None:
    """IMLIMITS_TIMEZONE decides where a month begins (not only what the start-up line says)."""
    process = ServerProcess(env={"IMLIMITS_REDIS_URL": own_redis.url, "IMLIMITS_TIMEZONE": "UTC",
                                 "IMLIMITS_FORCE_TIMEZONE": "1", "IMLIMITS_TRUST_CLIENT_TIME": "1"}).start()
    try:
        assert own_redis.url in "".join(process.output)
        with grpc.insecure_channel(process.target) as channel:
            _upgrade_then_change_edition_across_utc_midnight(plan_pb2_grpc.PlanServiceStub(channel), app_id)
            app = plan_pb2_grpc.PlanServiceStub(channel).GetApp(plan_pb2.GetAppRequest(app_id=app_id))
        assert app.edition == plan_pb2.EDITION_ULTIMATE
    finally:
        process.stop()


@pytest.mark.parametrize(("args", "loop"), [((), "uvloop"), (("--event-loop", "asyncio"), "asyncio")])
def test_event_loop_is_uvloop_unless_asked(own_redis: RedisProcess, app_id: int, args: tuple[str, ...],
                                           loop: str) -> None:
    """Each loop serves the same answers; the start-up line names the one in use."""
    process = ServerProcess("--redis-url", own_redis.url, *args).start()
    try:
        assert f"event loop {loop})" in "".join(process.output)
        with grpc.insecure_channel(process.target) as channel:
            plan_pb2_grpc.PlanServiceStub(channel).CreateApp(plan_pb2.CreateAppRequest(app_id=app_id))
            answer = limit_pb2_grpc.LimitServiceStub(channel).CreateGroup(limit_pb2.CreateGroupRequest(
                app_id=app_id, group_id="g", type=limit_pb2.GROUP_TYPE_WORK, owner="alice"))
        assert answer.allowed
    finally:
        process.stop()


def test_an_unknown_event_loop_is_refused_from_the_environment_too(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        settings.parse([], environ={"IMLIMITS_EVENT_LOOP": "trio"})
    assert "--event-loop (IMLIMITS_EVENT_LOOP) must be one of uvloop, asyncio, got 'trio'" in capsys.readouterr().err
    assert settings.parse([], environ={"IMLIMITS_EVENT_LOOP": "asyncio"}).event_loop == "asyncio"


def test_default_time_zone_is_shanghai(server: ServerProcess, app_id: int) -> None:
    """The same two changes on the default deployment fall in one month: the second is refused."""
    with grpc.insecure_channel(server.target) as channel:
        refused(lambda: _upgrade_then_change_edition_across_utc_midnight(plan_pb2_grpc.PlanServiceStub(channel),
                                                                          app_id),
                grpc.StatusCode.FAILED_PRECONDITION, "may change again on 2019-04-01")


def test_embedded_default_persists_across_restarts(tmp_path: Path, app_id: int) -> None:
    data_dir = tmp_path / "data"
    first = ServerProcess("--data-dir", str(data_dir), "--redis-timeout", "1").start()
    with grpc.insecure_channel(first.target) as channel:
        plan_pb2_grpc.PlanServiceStub(channel).CreateApp(plan_pb2.CreateAppRequest(app_id=app_id))
        limit_pb2_grpc.LimitServiceStub(channel).CreateGroup(limit_pb2.CreateGroupRequest(
            app_id=app_id, group_id="g", type=limit_pb2.GROUP_TYPE_WORK, owner="alice"))
    assert first.stop() == 0
    assert not (data_dir / "redis.sock").exists()  # the embedded redis-server stopped with it
    second = ServerProcess("--data-dir", str(data_dir), "--redis-timeout", "1").start()
    try:
        with grpc.insecure_channel(second.target) as channel:
            usage = limit_pb2_grpc.LimitServiceStub(channel).GetUsage(
                limit_pb2.GetUsageRequest(app_id=app_id, user="alice"))
        assert (usage.groups, usage.user_groups) == (1, 1)
    finally:
        second.stop()


def test_one_data_dir_one_server(tmp_path: Path) -> None:
    first = ServerProcess("--data-dir", str(tmp_path)).start()
    try:
        with pytest.raises(RuntimeError, match="in use by another imlimits-server"):
            ServerProcess("--data-dir", str(tmp_path)).start()
    finally:
        first.stop()


def test_sigterm_stops_cleanly(own_redis: RedisProcess) -> None:
    process = ServerProcess("--redis-url", own_redis.url).start()
    assert process.stop() == 0
    assert "stopping" in "".join(process.output)


def test_redis_outage_answers_unavailable_then_recovers(own_redis: RedisProcess, app_id: int) -> None:
    process = ServerProcess("--redis-url", own_redis.url, "--redis-timeout", "0.2").start()
    try:
        with grpc.insecure_channel(process.target) as channel:
            plans = plan_pb2_grpc.PlanServiceStub(channel)
            checks = limit_pb2_grpc.LimitServiceStub(channel)
            plans.CreateApp(plan_pb2.CreateAppRequest(app_id=app_id))
            checks.CreateGroup(limit_pb2.CreateGroupRequest(app_id=app_id, group_id="g",
                                                            type=limit_pb2.GROUP_TYPE_WORK, owner="alice"))
            own_redis.stop()
            started = time.monotonic()
            refused(lambda: checks.JoinGroup(limit_pb2.JoinGroupRequest(app_id=app_id, group_id="g", users=["b"]),
                                             timeout=5), grpc.StatusCode.UNAVAILABLE, "redis")
            refused(lambda: plans.GetApp(plan_pb2.GetAppRequest(app_id=app_id), timeout=5),
                    grpc.StatusCode.UNAVAILABLE)
            assert time.monotonic() - started < 5  # bounded by --redis-timeout, not the client's deadline
            process.wait_health(NOT_SERVING)
            own_redis.start()  # same port, empty: a new Redis
            process.wait_health(SERVING)
            refused(lambda: plans.GetApp(plan_pb2.GetAppRequest(app_id=app_id)), grpc.StatusCode.NOT_FOUND)
            plans.CreateApp(plan_pb2.CreateAppRequest(app_id=app_id))
            assert checks.CreateGroup(limit_pb2.CreateGroupRequest(
                app_id=app_id, group_id="g", type=limit_pb2.GROUP_TYPE_WORK, owner="alice")).code == 0
        assert process.process is not None and process.process.poll() is None
    finally:
        process.stop()


def test_starts_with_redis_down_and_serves_when_it_appears(app_id: int) -> None:
    redis_server = RedisProcess()  # not started yet
    process = ServerProcess("--redis-url", redis_server.url, "--redis-timeout", "0.2").start(wait_serving=False)
    try:
        process.wait_health(NOT_SERVING)
        with grpc.insecure_channel(process.target) as channel:
            plans = plan_pb2_grpc.PlanServiceStub(channel)
            checks = limit_pb2_grpc.LimitServiceStub(channel)
            refused(lambda: plans.CreateApp(plan_pb2.CreateAppRequest(app_id=app_id), timeout=5),
                    grpc.StatusCode.UNAVAILABLE)
            refused(lambda: checks.CreateRoom(limit_pb2.CreateRoomRequest(app_id=app_id, room_id="r"), timeout=5),
                    grpc.StatusCode.UNAVAILABLE)
            redis_server.start()
            process.wait_health(SERVING)
            plans.CreateApp(plan_pb2.CreateAppRequest(app_id=app_id))
            assert checks.CreateRoom(limit_pb2.CreateRoomRequest(app_id=app_id, room_id="r")).code == 0
    finally:
        process.stop()
        redis_server.stop()


def test_embedded_redis_killed_is_restarted_and_loses_nothing_acknowledged(tmp_path: Path, app_id: int) -> None:
    process = ServerProcess("--data-dir", str(tmp_path), "--trust-client-time", "--redis-timeout", "1").start()
    try:
        with grpc.insecure_channel(process.target) as channel:
            plans = plan_pb2_grpc.PlanServiceStub(channel)
            checks = limit_pb2_grpc.LimitServiceStub(channel)
            apps = [app_id * 1000 + i for i in range(100)]
            for app in apps:  # 100 apps x (create + upgrade) = 200 plan changes, each with a check
                plans.CreateApp(plan_pb2.CreateAppRequest(app_id=app, at=ts(2019, 1, 1)))
                plans.Upgrade(plan_pb2.UpgradeRequest(app_id=app, edition=plan_pb2.EDITION_PRO, user_group_limit=700,
                                                      at=ts(2019, 2, 1)))
                assert checks.CreateGroup(limit_pb2.CreateGroupRequest(
                    app_id=app, group_id="g", type=limit_pb2.GROUP_TYPE_WORK, owner="alice",
                    members=["bob"])).code == 0
            redis_pid = _child_redis(process.pid)
            assert redis_pid is not None
            os.kill(redis_pid, signal.SIGKILL)
            # Restarted and done replaying its AOF: the server logs "ready" only once Redis answers. (Health may
            # still say SERVING from before the kill, since the restart is quicker than its poll.)
            deadline = time.monotonic() + 20
            while True:
                new_pid = _child_redis(process.pid)
                if new_pid not in (redis_pid, None) and any(f"redis-server (pid {new_pid}) ready" in line
                                                            for line in process.output):
                    break
                assert time.monotonic() < deadline, "the embedded redis-server was not restarted"
                time.sleep(0.05)
            process.wait_health(SERVING)
            for app in apps:
                assert plans.GetApp(plan_pb2.GetAppRequest(app_id=app)).user_group_limit == 700
                usage = checks.GetUsage(limit_pb2.GetUsageRequest(app_id=app, user="bob", group_id="g"))
                assert (usage.user_groups, usage.group_members) == (1, 2)
    finally:
        assert process.stop() == 0


def _child_redis(pid: int) -> int | None:
    # Every thread's children: the server restarts redis-server from a worker thread.
    children = [child for task in Path(f"/proc/{pid}/task").iterdir()
                for child in (task / "children").read_text().split()]
    for child in children:
        try:
            if "redis-server" in Path(f"/proc/{child}/cmdline").read_text():
                return int(child)
        except FileNotFoundError:
            continue
    return None


def test_sigterm_lets_an_in_flight_call_finish(own_redis: RedisProcess, app_id: int) -> None:
    """SIGTERM right after a 100,000-member destroy: the call completes, the release under way finishes
    (this is the only replica), then the server exits 0."""
    process = ServerProcess("--redis-url", own_redis.url, "--redis-timeout", "1").start()
    with grpc.insecure_channel(process.target) as channel:
        plans = plan_pb2_grpc.PlanServiceStub(channel)
        checks = limit_pb2_grpc.LimitServiceStub(channel)
        plans.CreateApp(plan_pb2.CreateAppRequest(app_id=app_id))
        plans.Upgrade(plan_pb2.UpgradeRequest(app_id=app_id, edition=plan_pb2.EDITION_ULTIMATE))
        checks.CreateGroup(limit_pb2.CreateGroupRequest(app_id=app_id, group_id="big", owner="boss",
                                                        type=limit_pb2.GROUP_TYPE_COMMUNITY))
        for start in range(0, 99_999, 500):
            checks.JoinGroup(limit_pb2.JoinGroupRequest(
                app_id=app_id, group_id="big", users=[f"u{i}" for i in range(start, min(start + 500, 99_999))]))
        destroy = checks.DestroyGroup.future(limit_pb2.DestroyGroupRequest(app_id=app_id, group_id="big"))
        redis_client = own_redis.client()
        while redis_client.exists(f"{{im:{app_id}}}:g:big"):  # the destroy is accepted: its release begins
            time.sleep(0.001)
        assert process.process is not None
        process.process.send_signal(signal.SIGTERM)
        assert destroy.result(timeout=30).released == 100_000
    assert process.wait_exit() == 0
    assert own_redis.client().hlen(f"{{im:{app_id}}}:uc") == 0


def test_redis_refusing_to_serve_is_unavailable_not_unknown(own_redis: RedisProcess, app_id: int) -> None:
    """Error replies such as LOADING or READONLY mean "not run, retry", not a bug: UNAVAILABLE."""
    replica = RedisProcess().start()
    try:
        primary = own_redis.client()
        primary.config_set("repl-diskless-sync-delay", 0)
        replica.client().replicaof("127.0.0.1", own_redis.port)
        primary.hset(f"{{im:{app_id}}}:lim", mapping={"st": 0, "ug": 50, "gm": 20, "av": 10, "cm": 0, "ver": 1})
        deadline = time.monotonic() + 20  # replicated: the room's script reaches its first write on the replica
        while not replica.client().exists(f"{{im:{app_id}}}:lim"):
            assert time.monotonic() < deadline, "the replica never synced"
            time.sleep(0.05)
        # A replica cannot record the time zone, so the server never reports SERVING on it.
        process = ServerProcess("--redis-url", replica.url, "--redis-timeout", "1").start(wait_serving=False)
        try:
            process.wait_health(NOT_SERVING)
            with grpc.insecure_channel(process.target) as channel:
                refused(lambda: limit_pb2_grpc.LimitServiceStub(channel).CreateRoom(
                    limit_pb2.CreateRoomRequest(app_id=app_id, room_id="r")), grpc.StatusCode.UNAVAILABLE,
                    "READONLY")
        finally:
            process.stop()
    finally:
        replica.stop()
