"""gRPC failures as typed exceptions; the mapping lives only here."""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status


@dataclass(frozen=True)
class Violation:
    type: str
    subject: str
    description: str


class ImlimitsError(Exception):
    """A call the service did not answer with a result."""

    def __init__(self, status: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class InvalidArgument(ImlimitsError):
    """Malformed input: the message names the field and the rule. Nothing changed."""


class NotFound(ImlimitsError):
    pass


class AlreadyExists(ImlimitsError):
    pass


class PlanRuleViolation(ImlimitsError):
    """A plan rule refused the change (FAILED_PRECONDITION), e.g. the once-a-month rule."""

    def __init__(self, status: grpc.StatusCode, message: str, violations: tuple[Violation, ...] = ()) -> None:
        super().__init__(status, message)
        self.violations = violations


class Conflict(ImlimitsError):
    """Concurrent plan changes of one app kept overtaking this one (ABORTED); retry."""


class Unauthenticated(ImlimitsError):
    pass


class PermissionDenied(ImlimitsError):
    pass


class Unavailable(ImlimitsError):
    """The service or its Redis could not answer within the deadline."""


class HoldLost(Exception):
    """A hold could not be confirmed: it had been cancelled or had expired, so what was done under it is not
    counted. Undo the act, or check again (docs/holds.md)."""

    def __init__(self, hold_id: str, info: str) -> None:
        super().__init__(f"hold {hold_id} not confirmed: {info}")
        self.hold_id = hold_id
        self.info = info


_BY_STATUS: dict[grpc.StatusCode, type[ImlimitsError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.OUT_OF_RANGE: InvalidArgument,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExists,
    grpc.StatusCode.ABORTED: Conflict,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: Unavailable,
}


def from_rpc_error(error: grpc.RpcError) -> ImlimitsError:
    status: grpc.StatusCode = error.code()
    message: str = error.details() or status.name
    if status is grpc.StatusCode.FAILED_PRECONDITION:
        return PlanRuleViolation(status, message, _violations(error))
    return _BY_STATUS.get(status, ImlimitsError)(status, message)


_STATUS_BY_NUMBER = {status.value[0]: status for status in grpc.StatusCode}


def from_status(number: int, message: str) -> ImlimitsError:
    """A batched check's error (a google.rpc.Status: its code as a number) as the unary call would raise it."""
    status = _STATUS_BY_NUMBER.get(number, grpc.StatusCode.UNKNOWN)
    return _BY_STATUS.get(status, ImlimitsError)(status, message or status.name)


def _violations(error: grpc.RpcError) -> tuple[Violation, ...]:
    try:
        status = rpc_status.from_call(error)
    except ValueError:
        return ()
    found: list[Violation] = []
    for detail in status.details if status else ():
        failure = error_details_pb2.PreconditionFailure()
        if detail.Unpack(failure):
            found += [Violation(v.type, v.subject, v.description) for v in failure.violations]
    return tuple(found)
