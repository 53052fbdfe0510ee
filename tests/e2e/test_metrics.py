"""Prometheus metrics scraped over HTTP after a known sequence of calls show the exact counts."""

from __future__ import annotations

import contextlib
import urllib.request

import grpc
from prometheus_client.parser import text_string_to_metric_families

from e2e.helpers import wait_until
from harness import RedisProcess, ServerProcess, free_port
from imlimits.v1 import limit_pb2, limit_pb2_grpc, plan_pb2, plan_pb2_grpc


def _samples(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def _calls_counted(port: int) -> float:
    return sum(value for (name, _), value in _samples(port).items() if name == "imlimits_calls_total")


def test_counts_after_a_known_sequence(own_redis: RedisProcess, app_id: int) -> None:
    metrics_port = free_port()
    process = ServerProcess("--redis-url", own_redis.url, "--metrics-listen", f"127.0.0.1:{metrics_port}",
                            "--redis-timeout", "1").start()
    try:
        with grpc.insecure_channel(process.target) as channel:
            plans = plan_pb2_grpc.PlanServiceStub(channel)
            checks = limit_pb2_grpc.LimitServiceStub(channel)
            plans.CreateApp(plan_pb2.CreateAppRequest(app_id=app_id))
            for i in range(12):  # TRIAL: 10 rooms, then 2 refusals with 10036
                checks.CreateRoom(limit_pb2.CreateRoomRequest(app_id=app_id, room_id=f"r{i}"))
            for bad in (plan_pb2.GetAppRequest(app_id=app_id + 1), plan_pb2.GetAppRequest(app_id=0)):
                with contextlib.suppress(grpc.RpcError):
                    plans.GetApp(bad)
        # A refused call's answer can reach the client before the server has counted it: wait for all 15.
        wait_until(lambda: _calls_counted(metrics_port) >= 15)
        samples = _samples(metrics_port)
    finally:
        process.stop()

    def value(name: str, **labels: str) -> float:
        return samples.get((name, tuple(sorted(labels.items()))), 0.0)

    assert value("imlimits_calls_total", rpc="CreateApp", status="OK") == 1
    assert value("imlimits_calls_total", rpc="CreateRoom", status="OK") == 12  # a refusal is an OK answer
    assert value("imlimits_refusals_total", rpc="CreateRoom", code="10036") == 2
    assert value("imlimits_calls_total", rpc="GetApp", status="NOT_FOUND") == 1
    assert value("imlimits_calls_total", rpc="GetApp", status="INVALID_ARGUMENT") == 1
    assert value("imlimits_call_duration_seconds_count", rpc="CreateRoom") == 12
    assert value("imlimits_in_flight_calls") == 0
    assert value("imlimits_redis_errors_total") == 0


def test_holds_are_counted_once_each_by_event(own_redis: RedisProcess, app_id: int) -> None:
    """Opened 4 (one of them by a retry that found its hold: counted once), confirmed 1 (twice asked), cancelled 1,
    expired 1 (released by this server's worker), and one still open."""
    metrics_port = free_port()
    process = ServerProcess("--redis-url", own_redis.url, "--metrics-listen", f"127.0.0.1:{metrics_port}",
                            "--redis-timeout", "1").start()

    def holds(event: str) -> float:
        return _samples(metrics_port).get(("imlimits_holds_total", (("event", event),)), 0.0)

    try:
        with grpc.insecure_channel(process.target) as channel:
            plan_pb2_grpc.PlanServiceStub(channel).CreateApp(plan_pb2.CreateAppRequest(app_id=app_id))
            checks = limit_pb2_grpc.LimitServiceStub(channel)
            checks.CreateGroup(limit_pb2.CreateGroupRequest(app_id=app_id, group_id="g",
                                                            type=limit_pb2.GROUP_TYPE_WORK))

            def join(user: str, seconds: int, request_id: str = "") -> str:
                return str(checks.JoinGroup(limit_pb2.JoinGroupRequest(
                    app_id=app_id, group_id="g", users=[user], hold_seconds=seconds, request_id=request_id)).hold_id)

            confirmed, cancelled, open_one = join("a", 60), join("b", 60), join("c", 60, "retry")
            assert join("c", 60, "retry") == open_one
            join("d", 1)
            for _ in range(2):
                checks.ConfirmHold(limit_pb2.ConfirmHoldRequest(app_id=app_id, hold_id=confirmed))
                checks.CancelHold(limit_pb2.CancelHoldRequest(app_id=app_id, hold_id=cancelled))
        wait_until(lambda: holds("expired") == 1)
        assert (holds("opened"), holds("confirmed"), holds("cancelled"), holds("expired")) == (4, 1, 1, 1)
    finally:
        process.stop()
