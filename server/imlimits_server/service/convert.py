"""Where proto messages become core objects, and back."""

from __future__ import annotations

import functools
from datetime import datetime

from google.protobuf.timestamp_pb2 import Timestamp
from google.rpc import status_pb2

from imlimits.v1 import limit_pb2, plan_pb2
from imlimits_server.core.billing import Bill
from imlimits_server.core.checks import (
    ADMITTED,
    CancelHold,
    Check,
    CheckResult,
    ConfirmHold,
    CreateGroup,
    DestroyGroup,
    GroupType,
    Held,
    HoldResult,
    ImCode,
    JoinGroup,
    LeaveGroup,
    ReleaseResult,
    UsageResult,
    Verification,
)
from imlimits_server.core.editions import Edition, Limits
from imlimits_server.core.errors import InvalidArgument
from imlimits_server.core.holds import HoldIds
from imlimits_server.core.plans import AppState, PlanChange
from imlimits_server.service import validation

_EDITIONS = {
    plan_pb2.EDITION_TRIAL: Edition.TRIAL,
    plan_pb2.EDITION_PRO: Edition.PRO,
    plan_pb2.EDITION_ULTIMATE: Edition.ULTIMATE,
}
_EDITION_NUMBERS = {edition: number for number, edition in _EDITIONS.items()}
_GROUP_TYPES = {
    limit_pb2.GROUP_TYPE_WORK: GroupType.WORK,
    limit_pb2.GROUP_TYPE_PUBLIC: GroupType.PUBLIC,
    limit_pb2.GROUP_TYPE_MEETING: GroupType.MEETING,
    limit_pb2.GROUP_TYPE_AVCHATROOM: GroupType.AVCHATROOM,
    limit_pb2.GROUP_TYPE_COMMUNITY: GroupType.COMMUNITY,
}
_GROUP_TYPE_NUMBERS = {group_type: number for number, group_type in _GROUP_TYPES.items()}


def edition(field: str, number: int) -> Edition:
    try:
        return _EDITIONS[plan_pb2.Edition.ValueType(number)]
    except KeyError:
        raise InvalidArgument(field, f"must be EDITION_TRIAL, EDITION_PRO or EDITION_ULTIMATE, got {number}") from None


def group_type(number: int) -> GroupType:
    try:
        return _GROUP_TYPES[limit_pb2.GroupType.ValueType(number)]
    except KeyError:
        raise InvalidArgument("type", f"must be a GROUP_TYPE_* value other than UNSPECIFIED, got {number}") from None


def group_type_number(value: GroupType) -> limit_pb2.GroupType.ValueType:
    return _GROUP_TYPE_NUMBERS[value]


def timestamp(at: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(at)
    return stamp


def limits(value: Limits) -> plan_pb2.Limits:
    return plan_pb2.Limits(
        user_groups=value.user_groups,
        group_members=value.group_members,
        av_rooms=value.av_rooms or 0,
        av_rooms_unlimited=value.av_rooms is None,
        community_allowed=value.community_allowed,
    )


def app(state: AppState, locked: list[str]) -> plan_pb2.App:
    plan = state.plan
    return plan_pb2.App(
        app_id=state.app_id,
        edition=_EDITION_NUMBERS[plan.edition],
        status=plan_pb2.APP_STATUS_ACTIVE if state.active else plan_pb2.APP_STATUS_DEACTIVATED,
        av_room_unlimited=plan.av_room_unlimited,
        user_group_limit=plan.user_group_limit,
        group_member_limit=plan.group_member_limit,
        locked_items=locked,
        limits=limits(plan.limits()),
    )


def plan_change(change: PlanChange) -> plan_pb2.PlanChange:
    return plan_pb2.PlanChange(
        at=timestamp(change.at),
        item=change.item,
        old_value=change.old_value,
        new_value=change.new_value,
        operation=change.operation.value,
        request_id=change.request_id,
        implicit=change.implicit,
    )


def check_response(result: CheckResult) -> limit_pb2.CheckResponse:
    if result is ADMITTED:
        return _ADMITTED_RESPONSE
    return limit_pb2.CheckResponse(
        code=int(result.code),
        info=result.info(),
        allowed=result.allowed,
        denied_users=result.denied_users,
        limit=result.limit,
        current=result.current,
        hold_id=result.hold_id,
    )


# Built once for the answer most checks give: grpc only reads a response, and a BatchResponse copies its results.
_ADMITTED_RESPONSE = check_response(CheckResult(ImCode.OK))
ADMITTED_RESULT = limit_pb2.CheckResult(check=_ADMITTED_RESPONSE)


def hold_response(result: HoldResult) -> limit_pb2.HoldResponse:
    return _hold_answer(result.code, result.confirmed, result.known)[0]


@functools.cache
def _hold_answer(code: ImCode, confirmed: bool, known: bool) -> tuple[limit_pb2.HoldResponse, limit_pb2.CheckResult]:
    """A confirm's answer as a response and as a batched result, each built once: there are only a few
    (its words depend on nothing else), and grpc and a BatchResponse only read them."""
    response = limit_pb2.HoldResponse(code=int(code), info=HoldResult(code, confirmed, known).info(),
                                      confirmed=confirmed)
    return response, limit_pb2.CheckResult(hold=response)


def release_response(result: ReleaseResult) -> limit_pb2.ReleaseResponse:
    info = f"released {result.released} memberships" if result.code == 0 else CheckResult(result.code).info()
    return limit_pb2.ReleaseResponse(code=int(result.code), info=info, released=result.released)


def bill(value: Bill) -> plan_pb2.Bill:
    return plan_pb2.Bill(
        month=str(value.month),
        issued_on=value.issued_on,
        currency=value.currency,
        total=value.total,
        lines=[plan_pb2.BillLine(item=line.item.value, level=line.level, charged=line.charged, amount=line.amount,
                                 reason=line.reason, edition_default=line.edition_default, steps=line.steps,
                                 step=line.step) for line in value.lines],
        rule=plan_pb2.BillRule.Value(value.rule.value),
        created_on=value.created_on,
        edition_changed_on=value.edition_changed_on,
        deactivated_on=value.deactivated_on,
    )


def _held(value: Held) -> dict[str, int]:
    return {"holds": value.holds, "held_groups": value.groups, "held_av_rooms": value.av_rooms,
            "held_memberships": value.memberships}


def usage(value: UsageResult) -> limit_pb2.Usage:
    return limit_pb2.Usage(av_rooms=value.av_rooms, groups=value.groups, limits=limits(value.limits),
                           user_groups=value.user_groups, group_members=value.group_members,
                           held_group_members=value.held_group_members, **_held(value.held),
                           group_members_limit=value.group_members_limit, group_max_members=value.group_max_members,
                           group_type=group_type_number(value.group_type) if value.group_type
                           else limit_pb2.GROUP_TYPE_UNSPECIFIED)


def verification(value: Verification) -> limit_pb2.VerifyUsageResponse:
    return limit_pb2.VerifyUsageResponse(
        groups=value.groups, users=value.users, repaired=value.repaired, pending_groups=value.pending_groups,
        pending_releases=value.pending_releases,
        drifts=[limit_pb2.Drift(subject=d.subject, recorded=d.recorded, actual=d.actual) for d in value.drifts],
        **_held(value.held))


# Check requests, validated: the unary RPCs and Batch/Stream share these, so each rule is written once.


def create_group(request: limit_pb2.CreateGroupRequest) -> CreateGroup:
    return CreateGroup(
        validation.app_id(request.app_id),
        validation.group_id("group_id", request.group_id),
        group_type(request.type),
        validation.user_id("owner", request.owner, allow_empty=True),
        validation.users("members", request.members, allow_empty=True),
        request.max_members,
        request.dry_run,
        *validation.hold(request.hold_seconds, request.request_id),
    )


def create_room(request: limit_pb2.CreateRoomRequest) -> CreateGroup:
    return CreateGroup(
        validation.app_id(request.app_id),
        validation.group_id("room_id", request.room_id),
        GroupType.AVCHATROOM,
        validation.user_id("owner", request.owner, allow_empty=True),
        (),
        0,
        request.dry_run,
        *validation.hold(request.hold_seconds, request.request_id),
    )


def join_group(request: limit_pb2.JoinGroupRequest) -> JoinGroup:
    return JoinGroup(validation.app_id(request.app_id), validation.group_id("group_id", request.group_id),
                     validation.users("users", request.users), request.dry_run,
                     *validation.hold(request.hold_seconds, request.request_id))


def leave_group(request: limit_pb2.LeaveGroupRequest) -> LeaveGroup:
    return LeaveGroup(validation.app_id(request.app_id), validation.group_id("group_id", request.group_id),
                      validation.users("users", request.users))


def destroy_group(request: limit_pb2.DestroyGroupRequest) -> DestroyGroup:
    return DestroyGroup(validation.app_id(request.app_id), validation.group_id("group_id", request.group_id))


def confirm_hold(request: limit_pb2.ConfirmHoldRequest, hold_ids: HoldIds) -> ConfirmHold:
    app = validation.app_id(request.app_id)
    return ConfirmHold(app, hold_ids.read(app, request.hold_id))


def cancel_hold(request: limit_pb2.CancelHoldRequest, hold_ids: HoldIds) -> CancelHold:
    app = validation.app_id(request.app_id)
    return CancelHold(app, hold_ids.read(app, request.hold_id))


_CHECK_KINDS = {
    "create_group": create_group, "create_room": create_room, "join_group": join_group,
    "leave_group": leave_group, "destroy_group": destroy_group,
}
_HOLD_KINDS = {"confirm_hold": confirm_hold, "cancel_hold": cancel_hold}
# The unary RPC each kind of a batched check stands for (metrics are labelled by it).
CHECK_RPCS = {
    "create_group": "CreateGroup", "create_room": "CreateRoom", "join_group": "JoinGroup",
    "leave_group": "LeaveGroup", "destroy_group": "DestroyGroup", "confirm_hold": "ConfirmHold",
    "cancel_hold": "CancelHold",
}


def check(message: limit_pb2.Check, hold_ids: HoldIds) -> Check:
    """A batched check, validated exactly as its unary RPC's request."""
    kind = message.WhichOneof("kind")
    if kind is None:
        raise InvalidArgument("kind", "must be one of " + ", ".join(CHECK_RPCS))
    if kind in _HOLD_KINDS:
        return _HOLD_KINDS[kind](getattr(message, kind), hold_ids)  # type: ignore[no-any-return, operator]
    return _CHECK_KINDS[kind](getattr(message, kind))  # type: ignore[no-any-return, operator]


def check_result(answer: CheckResult | ReleaseResult | HoldResult | status_pb2.Status) -> limit_pb2.CheckResult:
    if answer is ADMITTED:
        return ADMITTED_RESULT
    if isinstance(answer, CheckResult):
        return limit_pb2.CheckResult(check=check_response(answer))
    if isinstance(answer, ReleaseResult):
        return limit_pb2.CheckResult(release=release_response(answer))
    if isinstance(answer, HoldResult):
        return _hold_answer(answer.code, answer.confirmed, answer.known)[1]
    return limit_pb2.CheckResult(error=answer)
