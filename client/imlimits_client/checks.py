"""Checks to send together with `client.check.batch([...])`.

    from imlimits_client import checks

    results = client.check.batch([
        checks.create_group(app_id, "team-1", owner="alice", members=["bob", "carol"]),
        checks.join_group(app_id, "room-7", ["dave"]),
    ])

Each builds the same request as the client method of the same name.
"""

from __future__ import annotations

from collections.abc import Sequence

from imlimits_client import calls
from imlimits_client.calls import Call
from imlimits_client.types import CheckResult, GroupType, HoldResult, Released


def create_group(app_id: int, group_id: str, type: GroupType = GroupType.WORK, owner: str = "",
                 members: Sequence[str] = (), max_members: int = 0, dry_run: bool = False, *,
                 hold_seconds: int = 0, request_id: str | None = None) -> Call[CheckResult]:
    return calls.create_group(app_id, group_id, type, owner, members, max_members, dry_run, hold_seconds,
                              request_id)


def create_room(app_id: int, room_id: str, owner: str = "", dry_run: bool = False, *, hold_seconds: int = 0,
                request_id: str | None = None) -> Call[CheckResult]:
    return calls.create_room(app_id, room_id, owner, dry_run, hold_seconds, request_id)


def join_group(app_id: int, group_id: str, users: Sequence[str], dry_run: bool = False, *, hold_seconds: int = 0,
               request_id: str | None = None) -> Call[CheckResult]:
    return calls.join_group(app_id, group_id, users, dry_run, hold_seconds, request_id)


def confirm_hold(app_id: int, hold_id: str) -> Call[HoldResult]:
    return calls.confirm_hold(app_id, hold_id)


def cancel_hold(app_id: int, hold_id: str) -> Call[Released]:
    return calls.cancel_hold(app_id, hold_id)


def leave_group(app_id: int, group_id: str, users: Sequence[str]) -> Call[Released]:
    return calls.leave_group(app_id, group_id, users)


def destroy_group(app_id: int, group_id: str) -> Call[Released]:
    return calls.destroy_group(app_id, group_id)
