"""The refusals of plan operations, independent of any transport."""

from __future__ import annotations

from dataclasses import dataclass


class PlanError(Exception):
    """A plan operation refused as a whole; nothing changed."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(PlanError):
    """Input that no state of the app could make acceptable, or out of bounds."""

    def __init__(self, field: str, rule: str) -> None:
        super().__init__(f"{field}: {rule}")
        self.field = field
        self.rule = rule


class NotFound(PlanError):
    pass


class AlreadyExists(PlanError):
    pass


@dataclass(frozen=True)
class Violation:
    """One broken precondition, in the shape of google.rpc.PreconditionFailure."""

    type: str
    subject: str
    description: str


class FailedPrecondition(PlanError):
    def __init__(self, message: str, violation: Violation | None = None) -> None:
        super().__init__(message)
        self.violation = violation


def app_not_found(app_id: int) -> NotFound:
    return NotFound(f"app {app_id} not found: create it with CreateApp")
