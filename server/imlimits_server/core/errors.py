"""The refusals of plan operations, independent of any transport."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


class PlanError(Exception):
    """A plan operation refused as a whole; nothing changed.

    `reason` and `params` are the refusal as data (google.rpc.ErrorInfo on the
    wire): a caller words it in its own language from them, while `message`
    stays the English sentence. Empty for refusals that need no more than
    their status (NOT_FOUND, ALREADY_EXISTS).
    """

    def __init__(self, message: str, reason: str = "", params: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason
        self.params: dict[str, str] = dict(params or {})


class InvalidArgument(PlanError):
    """Input that no state of the app could make acceptable, or out of bounds."""

    def __init__(self, field: str, rule: str, reason: str = "FIELD_INVALID",
                 params: Mapping[str, str] | None = None) -> None:
        super().__init__(f"{field}: {rule}", reason, {"field": field, **(params or {})})
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
    """A plan rule refused; its reason is the violation's type."""

    def __init__(self, message: str, violation: Violation | None = None,
                 params: Mapping[str, str] | None = None) -> None:
        super().__init__(message, violation.type if violation else "", params)
        self.violation = violation


def app_not_found(app_id: int) -> NotFound:
    return NotFound(f"app {app_id} not found: create it with CreateApp")
