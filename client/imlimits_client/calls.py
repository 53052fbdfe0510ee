"""One description per RPC: the request, how to read the answer, and whether a retry is safe.

The sync and asyncio clients both run these, so each RPC is spelled once.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from imlimits.v1 import limit_pb2, plan_pb2
from imlimits_client.types import (
    App,
    AppPage,
    Bill,
    CheckResult,
    Edition,
    GroupType,
    HoldResult,
    PlanChange,
    PlanPreview,
    Released,
    Usage,
    Verification,
    plan_changes,
)

R = TypeVar("R")


@dataclass(frozen=True)
class Call(Generic[R]):
    service: Literal["check", "admin"]
    method: str
    request: Message
    convert: Callable[[Any], R]
    # Joins, leaves, destroys, reads and plan calls with a request_id may be sent twice.
    retry_safe: bool
    # A check answered by the on_unavailable policy when the service is unreachable.
    is_check: bool = False
    # The field of limit_pb2.Check that carries this call in Batch and Stream; empty for other calls.
    check_field: str = ""
    # False for a confirm or a cancel: what it closes has already happened, so the coalescing client may keep
    # it a few milliseconds for company (AsyncClient's coalesce_confirm_window).
    urgent: bool = True


def _hold_request_id(hold_seconds: int, given: str | None) -> str:
    """A held check always carries a request_id (one is generated), so its retry finds the first attempt's
    hold instead of holding twice; without a hold, request_id is not sent (the service refuses it)."""
    return _request_id(given) if hold_seconds else (given or "")


def create_group(app_id: int, group_id: str, type: GroupType, owner: str, members: Sequence[str],
                 max_members: int, dry_run: bool, hold_seconds: int = 0,
                 request_id: str | None = None) -> Call[CheckResult]:
    request = limit_pb2.CreateGroupRequest(app_id=app_id, group_id=group_id, type=type.value, owner=owner,
                                           members=members, max_members=max_members, dry_run=dry_run,
                                           hold_seconds=hold_seconds,
                                           request_id=_hold_request_id(hold_seconds, request_id))
    # A plain create sent twice answers 10025 the second time; a held one finds its hold.
    return Call("check", "CreateGroup", request, CheckResult.from_proto, retry_safe=dry_run or hold_seconds > 0,
                is_check=True, check_field="create_group")


def create_room(app_id: int, room_id: str, owner: str, dry_run: bool, hold_seconds: int = 0,
                request_id: str | None = None) -> Call[CheckResult]:
    request = limit_pb2.CreateRoomRequest(app_id=app_id, room_id=room_id, owner=owner, dry_run=dry_run,
                                          hold_seconds=hold_seconds,
                                          request_id=_hold_request_id(hold_seconds, request_id))
    return Call("check", "CreateRoom", request, CheckResult.from_proto, retry_safe=dry_run or hold_seconds > 0,
                is_check=True, check_field="create_room")


def join_group(app_id: int, group_id: str, users: Sequence[str], dry_run: bool, hold_seconds: int = 0,
               request_id: str | None = None) -> Call[CheckResult]:
    request = limit_pb2.JoinGroupRequest(app_id=app_id, group_id=group_id, users=users, dry_run=dry_run,
                                         hold_seconds=hold_seconds,
                                         request_id=_hold_request_id(hold_seconds, request_id))
    return Call("check", "JoinGroup", request, CheckResult.from_proto, retry_safe=True, is_check=True,
                check_field="join_group")


def confirm_hold(app_id: int, hold_id: str) -> Call[HoldResult]:
    """Safe to repeat: confirming again answers as the first confirm did."""
    request = limit_pb2.ConfirmHoldRequest(app_id=app_id, hold_id=hold_id)
    return Call("check", "ConfirmHold", request, HoldResult.from_proto, retry_safe=True, check_field="confirm_hold",
                urgent=False)


def cancel_hold(app_id: int, hold_id: str) -> Call[Released]:
    """Safe to repeat: cancelling again releases nothing."""
    request = limit_pb2.CancelHoldRequest(app_id=app_id, hold_id=hold_id)
    return Call("check", "CancelHold", request, Released.from_proto, retry_safe=True, check_field="cancel_hold",
                urgent=False)


def leave_group(app_id: int, group_id: str, users: Sequence[str]) -> Call[Released]:
    request = limit_pb2.LeaveGroupRequest(app_id=app_id, group_id=group_id, users=users)
    return Call("check", "LeaveGroup", request, Released.from_proto, retry_safe=True, check_field="leave_group")


def destroy_group(app_id: int, group_id: str) -> Call[Released]:
    request = limit_pb2.DestroyGroupRequest(app_id=app_id, group_id=group_id)
    return Call("check", "DestroyGroup", request, Released.from_proto, retry_safe=True,
                check_field="destroy_group")


def usage(app_id: int, user: str | None, group_id: str | None) -> Call[Usage]:
    request = limit_pb2.GetUsageRequest(app_id=app_id, user=user, group_id=group_id)
    return Call("check", "GetUsage", request, Usage.from_proto, retry_safe=True)


def verify_usage(app_id: int, repair: bool) -> Call[Verification]:
    """Safe to repeat: a repair sets counts to recounts, so twice is the same as once."""
    return Call("check", "VerifyUsage", limit_pb2.VerifyUsageRequest(app_id=app_id, repair=repair),
                Verification.from_proto, retry_safe=True)


def _request_id(given: str | None) -> str:
    """Plan calls always carry an id, so a retry after a lost answer cannot apply a change twice."""
    return given if given is not None else uuid.uuid4().hex


def _timestamp(at: datetime | None) -> Timestamp | None:
    if at is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(at)
    return stamp


def create_app(app_id: int, request_id: str | None, at: datetime | None) -> Call[App]:
    request = plan_pb2.CreateAppRequest(app_id=app_id, request_id=_request_id(request_id), at=_timestamp(at))
    return Call("admin", "CreateApp", request, App.from_proto, retry_safe=True)


def get_app(app_id: int) -> Call[App]:
    return Call("admin", "GetApp", plan_pb2.GetAppRequest(app_id=app_id), App.from_proto, retry_safe=True)


def _upgrade_request(app_id: int, edition: Edition, av_room_unlimited: bool | None, user_group_limit: int | None,
                     group_member_limit: int | None, request_id: str, at: datetime | None,
                     dry_run: bool) -> plan_pb2.UpgradeRequest:
    return plan_pb2.UpgradeRequest(
        app_id=app_id, edition=edition.value, av_room_unlimited=av_room_unlimited, user_group_limit=user_group_limit,
        group_member_limit=group_member_limit, request_id=request_id, at=_timestamp(at), dry_run=dry_run)


def _change_plan_request(app_id: int, edition: Edition | None, av_room_unlimited: bool | None,
                         user_group_limit: int | None, group_member_limit: int | None, request_id: str,
                         at: datetime | None, dry_run: bool) -> plan_pb2.ChangePlanRequest:
    return plan_pb2.ChangePlanRequest(
        app_id=app_id, edition=edition.value if edition else None, av_room_unlimited=av_room_unlimited,
        user_group_limit=user_group_limit, group_member_limit=group_member_limit, request_id=request_id,
        at=_timestamp(at), dry_run=dry_run)


def upgrade(app_id: int, edition: Edition, av_room_unlimited: bool | None, user_group_limit: int | None,
            group_member_limit: int | None, request_id: str | None, at: datetime | None,
            dry_run: bool) -> Call[App]:
    request = _upgrade_request(app_id, edition, av_room_unlimited, user_group_limit, group_member_limit,
                               _request_id(request_id), at, dry_run)
    return Call("admin", "Upgrade", request, App.from_proto, retry_safe=True)


def change_plan(app_id: int, edition: Edition | None, av_room_unlimited: bool | None, user_group_limit: int | None,
                group_member_limit: int | None, request_id: str | None, at: datetime | None,
                dry_run: bool) -> Call[App]:
    request = _change_plan_request(app_id, edition, av_room_unlimited, user_group_limit, group_member_limit,
                                   _request_id(request_id), at, dry_run)
    return Call("admin", "ChangePlan", request, App.from_proto, retry_safe=True)


def preview_upgrade(app_id: int, edition: Edition, av_room_unlimited: bool | None, user_group_limit: int | None,
                    group_member_limit: int | None, request_id: str | None, at: datetime | None) -> Call[PlanPreview]:
    """A preview changes nothing, so it needs no request_id; given one, it is judged as its Upgrade would be."""
    change = _upgrade_request(app_id, edition, av_room_unlimited, user_group_limit, group_member_limit,
                              request_id or "", at, dry_run=True)
    return Call("admin", "PreviewPlanChange", plan_pb2.PreviewPlanChangeRequest(upgrade=change),
                PlanPreview.from_proto, retry_safe=True)


def preview_change_plan(app_id: int, edition: Edition | None, av_room_unlimited: bool | None,
                        user_group_limit: int | None, group_member_limit: int | None, request_id: str | None,
                        at: datetime | None) -> Call[PlanPreview]:
    change = _change_plan_request(app_id, edition, av_room_unlimited, user_group_limit, group_member_limit,
                                  request_id or "", at, dry_run=True)
    return Call("admin", "PreviewPlanChange", plan_pb2.PreviewPlanChangeRequest(change_plan=change),
                PlanPreview.from_proto, retry_safe=True)


def deactivate(app_id: int, request_id: str | None, at: datetime | None) -> Call[App]:
    request = plan_pb2.DeactivateRequest(app_id=app_id, confirm=True, request_id=_request_id(request_id),
                                         at=_timestamp(at))
    return Call("admin", "Deactivate", request, App.from_proto, retry_safe=True)


def list_plan_changes(app_id: int) -> Call[list[PlanChange]]:
    return Call("admin", "ListPlanChanges", plan_pb2.ListPlanChangesRequest(app_id=app_id), plan_changes,
                retry_safe=True)


def get_bill(app_id: int, month: str) -> Call[Bill]:
    return Call("admin", "GetBill", plan_pb2.GetBillRequest(app_id=app_id, month=month), Bill.from_proto,
                retry_safe=True)


def list_apps(page_size: int, page_token: str) -> Call[AppPage]:
    """`page_size` 0 asks for the server's default (100); at most 1000."""
    return Call("admin", "ListApps", plan_pb2.ListAppsRequest(page_size=page_size, page_token=page_token),
                AppPage.from_proto, retry_safe=True)
