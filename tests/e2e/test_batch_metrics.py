"""Batch and Stream metrics: checks per batch, and each batched check's outcome counted once."""

from __future__ import annotations

import grpc

from e2e.test_metrics import _samples
from harness import RedisProcess, ServerProcess, free_port
from imlimits.v1 import limit_pb2, limit_pb2_grpc, plan_pb2, plan_pb2_grpc


def test_batched_checks_are_counted_per_check(own_redis: RedisProcess, app_id: int) -> None:
    metrics_port = free_port()
    process = ServerProcess("--redis-url", own_redis.url, "--metrics-listen", f"127.0.0.1:{metrics_port}").start()
    rooms = [limit_pb2.Check(create_room=limit_pb2.CreateRoomRequest(app_id=app_id, room_id=f"r{i}"))
             for i in range(12)]  # TRIAL: 10 rooms, then 2 refusals with 10036
    try:
        with grpc.insecure_channel(process.target) as channel:
            plan_pb2_grpc.PlanServiceStub(channel).CreateApp(plan_pb2.CreateAppRequest(app_id=app_id))
            limits = limit_pb2_grpc.LimitServiceStub(channel)
            limits.Batch(limit_pb2.BatchRequest(checks=[*rooms, limit_pb2.Check()]))
            assert len(list(limits.Stream(iter(rooms[:3])))) == 3
        samples = _samples(metrics_port)
    finally:
        process.stop()

    def value(name: str, **labels: str) -> float:
        return samples.get((name, tuple(sorted(labels.items()))), 0.0)

    assert value("imlimits_calls_total", rpc="Batch", status="OK") == 1
    assert value("imlimits_checks_per_batch_count", rpc="Batch") == 1
    assert value("imlimits_checks_per_batch_sum", rpc="Batch") == 13
    assert value("imlimits_checks_per_batch_sum", rpc="Stream") == 3
    assert value("imlimits_batched_checks_total", rpc="CreateRoom", outcome="OK") == 10
    assert value("imlimits_batched_checks_total", rpc="CreateRoom", outcome="10036") == 2
    assert value("imlimits_batched_checks_total", rpc="CreateRoom", outcome="10021") == 3  # the ids are in use
    assert value("imlimits_batched_checks_total", rpc="Unknown", outcome="INVALID_ARGUMENT") == 1
