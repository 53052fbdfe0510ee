"""Client library for imlimits: limit checks for IM backends, plan administration for operators.

    from imlimits_client import Client, GroupType

    with Client("localhost:50051") as client:
        result = client.check.join_group(1400000001, "room-7", ["alice"])
        if not result.allowed:
            print(result.code, result.info)

Depends on the generated stubs (package `imlimits.v1`), never on the server.
"""

from imlimits_client import checks
from imlimits_client.aio import AsyncClient
from imlimits_client.errors import (
    AlreadyExists,
    Conflict,
    HoldLost,
    ImlimitsError,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    PlanRuleViolation,
    Unauthenticated,
    Unavailable,
)
from imlimits_client.sync import Client
from imlimits_client.transport import PlaintextTokenRefused
from imlimits_client.types import (
    App,
    AppPage,
    AppStatus,
    Bill,
    BillLine,
    CheckResult,
    Edition,
    GroupRecord,
    GroupType,
    Held,
    HoldResult,
    ImCode,
    ImportResult,
    Limits,
    OverLimit,
    PlanChange,
    PlanPreview,
    Released,
    Usage,
)

__all__ = [
    "AlreadyExists",
    "App",
    "AppPage",
    "AppStatus",
    "AsyncClient",
    "Bill",
    "BillLine",
    "CheckResult",
    "Client",
    "Conflict",
    "Edition",
    "GroupRecord",
    "GroupType",
    "Held",
    "HoldLost",
    "HoldResult",
    "ImCode",
    "ImlimitsError",
    "ImportResult",
    "InvalidArgument",
    "Limits",
    "NotFound",
    "OverLimit",
    "PermissionDenied",
    "PlaintextTokenRefused",
    "PlanChange",
    "PlanPreview",
    "PlanRuleViolation",
    "Released",
    "Unauthenticated",
    "Unavailable",
    "Usage",
    "checks",
]
