"""Human output of the command line: aligned tables and amounts; and plain data for --json."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from imlimits_client.types import App, AppStatus, Bill, CheckResult, PlanChange, Released, Usage, Verification


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[str(cell) for cell in header], *[[str(cell) for cell in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
                     for row in cells)


def money(minor_units: int, currency: str) -> str:
    sign = "-" if minor_units < 0 else ""
    return f"{sign}{abs(minor_units) // 100}.{abs(minor_units) % 100:02d} {currency}"


def plain(value: Any) -> Any:
    """JSON-ready data: dataclasses as objects, enums by name, times as ISO 8601."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {field.name: plain(getattr(value, field.name)) for field in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    return value


def app(value: App) -> str:
    status = "active" if value.status is AppStatus.ACTIVE else "DEACTIVATED (停用)"
    locked = set(value.locked_items)
    limits = value.limits
    av_rooms = "unlimited AV chat rooms" if limits.av_rooms is None else f"{limits.av_rooms} AV chat rooms"

    def change(item: str) -> str:
        return "used this month" if item in locked else "available"

    rows = [
        ("edition", value.edition.name, "", change("edition")),
        ("av_room_unlimited", str(value.av_room_unlimited).lower(), av_rooms, change("av_room_unlimited")),
        ("user_group_limit", value.user_group_limit, f"{limits.user_groups} groups per user",
         change("user_group_limit")),
        ("group_member_limit", value.group_member_limit, f"{limits.group_members} members per group",
         change("group_member_limit")),
        ("community groups", "", "allowed" if limits.community_allowed else "not allowed", ""),
    ]
    return f"app {value.app_id}: {value.edition.name}, {status}\n" + \
        table(("ITEM", "SETTING", "ENFORCED", "CHANGE"), rows)


def history(changes: Sequence[PlanChange]) -> str:
    rows = [(change.at.isoformat(timespec="seconds"), change.operation, change.item,
             f"{change.old_value or '-'} -> {change.new_value}", "implicit" if change.implicit else "",
             change.request_id) for change in changes]
    return table(("AT (UTC)", "OPERATION", "ITEM", "CHANGE", "", "REQUEST ID"), rows)


def bill(app_id: int, value: Bill) -> str:
    rows = [(line.item, line.level or "-", "yes" if line.charged else "no", money(line.amount, value.currency),
             line.reason) for line in value.lines]
    return (f"bill {value.month} of app {app_id}, issued on {value.issued_on}\n"
            + table(("ITEM", "LEVEL", "CHARGED", "AMOUNT", "REASON"), rows)
            + f"\ntotal {money(value.total, value.currency)}")


def usage(app_id: int, value: Usage, user: str | None, group_id: str | None) -> str:
    limits = value.limits
    rows: list[tuple[str, object, object]] = [
        ("AV chat rooms", value.av_rooms, "unlimited" if limits.av_rooms is None else limits.av_rooms),
        ("groups", value.groups, "-"),
    ]
    if user is not None:
        rows.append((f"groups of user {user}", value.user_groups, limits.user_groups))
    if group_id is not None:
        rows.append((f"members of group {group_id}", value.group_members,
                     f"{limits.group_members} (Work/Public/Meeting; Community 100000; AVChatRoom none)"))
    return f"usage of app {app_id}\n" + table(("WHAT", "USED", "LIMIT"), rows)


def check(value: CheckResult) -> str:
    if value.allowed:
        return "admitted" + (" (degraded: the service was not reached)" if value.degraded else "")
    text = f"refused {int(value.code)}: {value.info}"
    if value.denied_users:
        text += "\ndenied users: " + ", ".join(value.denied_users)
    return text


def released(value: Released) -> str:
    return value.info if int(value.code) == 0 else f"refused {int(value.code)}: {value.info}"


def verification(app_id: int, value: Verification) -> str:
    head = f"app {app_id}: {value.groups} groups, {value.users} users with memberships"
    if value.pending_groups:
        head += (f"\n{value.pending_releases} memberships of {value.pending_groups} destroyed groups pending release "
                 "(counted until released, not drift)")
    if not value.drifts:
        return head + "\nno drift: every count matches the membership sets"
    verb = "repaired" if value.repaired else "drifted (run again with --repair to fix)"
    return head + f"\n{len(value.drifts)} counts {verb}\n" + table(
        ("COUNT", "RECORDED", "ACTUAL"), [(d.subject, d.recorded, d.actual) for d in value.drifts])
