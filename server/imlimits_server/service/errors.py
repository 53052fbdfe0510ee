"""The one place where a refusal or a failure becomes a gRPC status."""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import grpc
import redis.exceptions
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from imlimits_server.core.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PlanError,
)
from imlimits_server.metrics import REDIS_ERRORS
from imlimits_server.store.pipelined import NotServing

log = logging.getLogger("imlimits.errors")

# What a caller is told when Redis does not answer. Where Redis is stays in the
# server log; a "not serving" reply (LOADING, READONLY, ...) is Redis's own
# text, which names no address, and says why.
REDIS_UNAVAILABLE = "redis unavailable, retry later"


def redis_unavailable(error: Exception) -> str:
    return f"{REDIS_UNAVAILABLE}: {error}" if isinstance(error, NotServing) else REDIS_UNAVAILABLE

_CODES: dict[type[PlanError], tuple[grpc.StatusCode, int]] = {
    InvalidArgument: (grpc.StatusCode.INVALID_ARGUMENT, code_pb2.INVALID_ARGUMENT),
    NotFound: (grpc.StatusCode.NOT_FOUND, code_pb2.NOT_FOUND),
    AlreadyExists: (grpc.StatusCode.ALREADY_EXISTS, code_pb2.ALREADY_EXISTS),
    FailedPrecondition: (grpc.StatusCode.FAILED_PRECONDITION, code_pb2.FAILED_PRECONDITION),
}


class NotReady(Exception):
    """The server cannot answer yet (Redis not reached since start-up); the caller may retry."""


class Contention(Exception):
    """Concurrent plan changes of one app kept this one from committing until its deadline; the caller may retry."""


# google.rpc.ErrorInfo.domain of every refusal's reason (plan.proto lists the reasons).
ERROR_DOMAIN = "imlimits.v1"


def _status(error: PlanError) -> status_pb2.Status:
    """PreconditionFailure first (callers read details[0]), then the ErrorInfo that words can be made from."""
    _, number = _CODES[type(error)]
    status = status_pb2.Status(code=number, message=error.message)
    if isinstance(error, FailedPrecondition) and error.violation is not None:
        failure = error_details_pb2.PreconditionFailure(violations=[error_details_pb2.PreconditionFailure.Violation(
            type=error.violation.type, subject=error.violation.subject, description=error.violation.description)])
        _attach(status, failure)
    if error.reason:
        _attach(status, error_details_pb2.ErrorInfo(reason=error.reason, domain=ERROR_DOMAIN, metadata=error.params))
    return status


def _attach(status: status_pb2.Status, detail: Any) -> None:
    packed = any_pb2.Any()
    packed.Pack(detail)
    status.details.append(packed)


def check_status(error: Exception) -> status_pb2.Status:
    """A batched check's error: the status its unary RPC would have answered. Not a check error: raised again."""
    if isinstance(error, PlanError):
        return _status(error)
    if isinstance(error, redis.exceptions.RedisError | OSError):
        log.warning("redis unavailable in a batched check: %s", error)
        REDIS_ERRORS.inc()
        return status_pb2.Status(code=code_pb2.UNAVAILABLE, message=f"redis unavailable, retry later: {error}")
    raise error


_Handler = TypeVar("_Handler", bound=Callable[..., Awaitable[Any]])


def grpc_errors(handler: _Handler) -> _Handler:
    """Map every exception a servicer method raises to its gRPC status; never INTERNAL for input."""

    @functools.wraps(handler)
    async def wrapper(self: Any, request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            return await handler(self, request, context)
        except PlanError as error:
            await context.abort_with_status(rpc_status.to_status(_status(error)))
        except (Contention, NotReady) as error:
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(error))
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as error:
            log.warning("redis unavailable in %s: %s", handler.__name__, error)
            REDIS_ERRORS.inc()
            await context.abort(grpc.StatusCode.UNAVAILABLE, redis_unavailable(error))

    return wrapper  # type: ignore[return-value]


_END = object()


def grpc_stream_errors(handler: Callable[..., AsyncIterator[Any]]) -> Callable[..., AsyncIterator[Any]]:
    """grpc_errors for a server-streaming method: each step of the stream is mapped the same way."""

    @functools.wraps(handler)
    async def wrapper(self: Any, request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        items = handler(self, request, context)

        @grpc_errors
        async def step(_self: Any, _request: Any, _context: grpc.aio.ServicerContext) -> Any:
            return await anext(items, _END)

        while (item := await step(self, request, context)) is not _END:
            yield item

    return wrapper
