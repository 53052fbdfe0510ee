"""Prometheus metrics, served on --metrics-listen (off by default).

The interceptor that feeds them is installed only when metrics are on, so
they cost nothing otherwise.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc
from grpc_health.v1 import health_pb2
from prometheus_client import Counter, Gauge, Histogram, start_http_server

from imlimits.v1 import limit_pb2, plan_pb2
from imlimits_server.core.checks import CheckResult, HoldResult, ReleaseResult

CALLS = Counter("imlimits_calls_total", "RPCs answered, by RPC and gRPC status", ["rpc", "status"])
REFUSALS = Counter("imlimits_refusals_total", "Checks refused, by RPC and IM code", ["rpc", "code"])
LATENCY = Histogram("imlimits_call_duration_seconds", "Time to answer an RPC", ["rpc"],
                    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0))
IN_FLIGHT = Gauge("imlimits_in_flight_calls", "RPCs being answered now")
CHECKS_PER_BATCH = Histogram("imlimits_checks_per_batch", "Checks decided together: one Batch call, or one "
                             "round of a Stream", ["rpc"], buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000))
BATCHED_CHECKS = Counter("imlimits_batched_checks_total", "Checks answered inside Batch and Stream, by the check's "
                         "own RPC and outcome (OK, an IM code, or a gRPC status name)", ["rpc", "outcome"])
REDIS_ERRORS = Counter("imlimits_redis_errors_total", "Calls answered UNAVAILABLE because Redis did not answer")
HOLDS = Counter("imlimits_holds_total", "Holds (docs/holds.md) by event: opened by a held check, confirmed, "
                "cancelled, or expired (released by a release worker)", ["event"])
AnswerT = TypeVar("AnswerT", bound=CheckResult | HoldResult | ReleaseResult)
HOLD_EVENTS = ("opened", "confirmed", "cancelled", "expired")
# Every series exists from the start, so a rate over it is defined; bound once, since a check may count one.
HOLDS_BY_EVENT = {event: HOLDS.labels(event) for event in HOLD_EVENTS}


def count_hold_event(answer: AnswerT) -> AnswerT:
    """Counts what a check's answer did to a hold (each hold is opened once and ends once); returns the answer,
    so that a handler counts on its way to the response."""
    if isinstance(answer, CheckResult) and answer.hold_opened:
        HOLDS_BY_EVENT["opened"].inc()
    elif isinstance(answer, HoldResult) and answer.confirmed_now:
        HOLDS_BY_EVENT["confirmed"].inc()
    elif isinstance(answer, ReleaseResult) and answer.hold_cancelled:
        HOLDS_BY_EVENT["cancelled"].inc()
    return answer


# Labels come from these sets only, so no caller can add a series: a method
# name nobody serves (made up, perhaps refused by auth) is counted as "unknown".
KNOWN_RPCS: dict[str, str] = {f"/{service.full_name}/{method.name}": str(method.name)
                               for module in (limit_pb2, plan_pb2, health_pb2)
                               for service in module.DESCRIPTOR.services_by_name.values()
                               for method in service.methods}
UNKNOWN_RPC = "unknown"


def rpc_label(method: str) -> str:
    return KNOWN_RPCS.get(method, UNKNOWN_RPC)


def serve_metrics(listen: str) -> None:
    host, _, port = listen.rpartition(":")
    start_http_server(int(port), addr=host.strip("[]") or "127.0.0.1")


class MetricsInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    async def intercept_service(
        self, continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None or (handler.unary_unary or handler.stream_unary) is None:
            return handler  # server streams (health Watch, reflection) are not counted
        rpc = rpc_label(handler_call_details.method)
        behaviour = handler.unary_unary or handler.stream_unary

        async def measured(request: Any, context: grpc.aio.ServicerContext) -> Any:
            IN_FLIGHT.inc()
            started = time.perf_counter()
            status = "OK"
            try:
                response = await behaviour(request, context)
                code = getattr(response, "code", 0)
                if code:
                    REFUSALS.labels(rpc, str(code)).inc()
                return response
            except BaseException:
                status = (context.code() or grpc.StatusCode.UNKNOWN).name
                raise
            finally:
                IN_FLIGHT.dec()
                LATENCY.labels(rpc).observe(time.perf_counter() - started)
                CALLS.labels(rpc, status).inc()

        # Auth refuses as a client stream (it never reads the request), so both shapes are measured.
        wrap = grpc.unary_unary_rpc_method_handler if handler.unary_unary else grpc.stream_unary_rpc_method_handler
        return wrap(measured, request_deserializer=handler.request_deserializer,
                    response_serializer=handler.response_serializer)
