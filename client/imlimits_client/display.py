"""Human output of the command line: aligned tables and amounts; and plain data for --json.

The command line spells each concept one way, in tables and JSON alike: editions as PRO,
statuses as ACTIVE, group types as the IM platform names them (AVChatRoom), operations as its
own commands (upgrade, change). `spell` turns the wire names in the service's text into those.
"""

from __future__ import annotations

import dataclasses
import enum
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from wcwidth import wcswidth

from imlimits_client.types import (
    App,
    AppStatus,
    Bill,
    BillLine,
    CheckResult,
    Held,
    HoldResult,
    PlanChange,
    Released,
    Usage,
    Verification,
)

# Wire names (and RPC names) in the service's messages -> the command line's words.
_SPELLINGS: tuple[tuple[re.Pattern[str], str], ...] = tuple((re.compile(pattern), words) for pattern, words in (
    (r"\bEDITION_(TRIAL|PRO|ULTIMATE)\b", r"\1"),
    (r"\bAPP_STATUS_(ACTIVE|DEACTIVATED)\b", r"\1"),
    (r"\bGROUP_TYPE_WORK\b", "Work"),
    (r"\bGROUP_TYPE_PUBLIC\b", "Public"),
    (r"\bGROUP_TYPE_MEETING\b", "Meeting"),
    (r"\bGROUP_TYPE_AVCHATROOM\b", "AVChatRoom"),
    (r"\bGROUP_TYPE_COMMUNITY\b", "Community"),
    (r"\bcreate it with CreateApp\b", "create it with `imlimits app create APP`"),
    (r"\buse ChangePlan\b", "use `imlimits app change`"),
    (r"\buse Upgrade\b", "use `imlimits app upgrade`"),
    (r"^Upgrade is only from\b", "`app upgrade` is only from"),
    (r"^ChangePlan needs\b", "`app change` needs"),
    (r"\bmembers join with JoinGroup\b", "members join with `imlimits check join`"),
))

# PlanChange.operation is the RPC's name; the command line names its own commands.
_OPERATIONS = {"CreateApp": "create", "Upgrade": "upgrade", "ChangePlan": "change", "Deactivate": "deactivate"}


def spell(text: str, app_id: int | None = None) -> str:
    for pattern, words in _SPELLINGS:
        text = pattern.sub(words, text)
    return text if app_id is None else text.replace("app create APP`", f"app create {app_id}`")


def width(text: str) -> int:
    """Columns on a terminal: CJK and most emoji take two."""
    columns = wcswidth(text)
    return columns if columns >= 0 else len(text)  # a control character: no better guess than its length


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[str(cell) for cell in header], *[[str(cell) for cell in row] for row in rows]]
    widths = [max(width(row[i]) for row in cells) for i in range(len(header))]
    return "\n".join("  ".join(cell + " " * (columns - width(cell)) for cell, columns in zip(row, widths, strict=True))
                     .rstrip() for row in cells)


def money(minor_units: int, currency: str) -> str:
    sign = "-" if minor_units < 0 else ""
    return f"{sign}{abs(minor_units) // 100}.{abs(minor_units) % 100:02d} {currency}"


def plain(value: Any) -> Any:
    """JSON-ready data: dataclasses as objects, enums by name, times as ISO 8601.

    A check's answer carries its IM code both by name (`code`) and as the number (`im_code`).
    """
    if isinstance(value, CheckResult | Released):
        return {**_fields(value), "im_code": int(value.code)}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _fields(value)
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    return value


def _fields(value: Any) -> dict[str, Any]:
    return {field.name: plain(getattr(value, field.name)) for field in dataclasses.fields(value)}


# The service's answers in the command line's spelling; tables and JSON are made from these.

def spelled_check(value: CheckResult) -> CheckResult:
    return dataclasses.replace(value, info=spell(value.info))


def spelled_released(value: Released) -> Released:
    return dataclasses.replace(value, info=spell(value.info))


def spelled_history(changes: Sequence[PlanChange]) -> list[PlanChange]:
    return [dataclasses.replace(change, old_value=spell(change.old_value), new_value=spell(change.new_value),
                                operation=_OPERATIONS.get(change.operation, change.operation))
            for change in changes]


def spelled_bill(value: Bill) -> Bill:
    return dataclasses.replace(value, lines=tuple(
        BillLine(line.item, spell(line.level), line.charged, line.amount, spell(line.reason))
        for line in value.lines))


def app(value: App) -> str:
    active = value.status is AppStatus.ACTIVE
    status = "active" if active else "DEACTIVATED (停用)"
    locked = set(value.locked_items)
    limits = value.limits
    av_rooms = "unlimited AVChatRooms" if limits.av_rooms is None else f"{limits.av_rooms} AVChatRooms"

    def change(item: str) -> str:
        if not active:
            return "no: deactivated"  # 停用 is final: nothing can change any more
        return "used this month" if item in locked else "available"

    rows = [
        ("edition", value.edition.name, "", change("edition")),
        ("av_room_unlimited", str(value.av_room_unlimited).lower(), av_rooms, change("av_room_unlimited")),
        ("user_group_limit", value.user_group_limit, f"{limits.user_groups} groups per user",
         change("user_group_limit")),
        ("group_member_limit", value.group_member_limit, f"{limits.group_members} members per group",
         change("group_member_limit")),
        ("Community groups", "", "allowed" if limits.community_allowed else "not allowed", ""),
    ]
    return f"app {value.app_id}: {value.edition.name}, {status}\n" + \
        table(("ITEM", "SETTING", "ENFORCED", "CHANGE"), rows)


def history(changes: Sequence[PlanChange]) -> str:
    """`changes` as spelled_history gives them."""
    rows = [(change.at.isoformat(timespec="seconds"), change.operation, change.item,
             f"{change.old_value or '-'} -> {change.new_value}", "implicit" if change.implicit else "",
             change.request_id) for change in changes]
    return table(("AT (UTC)", "OPERATION", "ITEM", "CHANGE", "", "REQUEST ID"), rows)


def bill(app_id: int, value: Bill) -> str:
    """`value` as spelled_bill gives it. The rule the lines share is printed once, above them."""
    rules = {line.reason.rpartition("; ")[0] for line in value.lines}
    rule = rules.pop() if len(rules) == 1 else ""
    rows = [(line.item, line.level or "-", "yes" if line.charged else "no", money(line.amount, value.currency),
             line.reason.rpartition("; ")[2] if rule else line.reason) for line in value.lines]
    return (f"bill {value.month} of app {app_id}, issued on {value.issued_on}\n"
            + (f"rule: {rule}\n" if rule else "")
            + table(("ITEM", "LEVEL", "CHARGED", "AMOUNT", "REASON"), rows)
            + f"\ntotal {money(value.total, value.currency)}")


def usage_data(value: Usage) -> dict[str, Any]:
    """Usage for --json: AVChatRooms and the other groups apart, as in the table."""
    return {**plain(value), "other_groups": value.groups - value.av_rooms}


def _held(value: Held) -> str:
    rooms = f" ({value.av_rooms} AVChatRooms)" if value.av_rooms else ""
    return (f"held, not yet confirmed (included above): {value.holds} holds, {value.groups} groups{rooms}, "
            f"{value.memberships} memberships")


def usage(app_id: int, value: Usage, user: str | None, group_id: str | None) -> str:
    limits = value.limits
    rows: list[tuple[str, object, object]] = [
        ("AVChatRooms", value.av_rooms, "unlimited" if limits.av_rooms is None else limits.av_rooms),
        ("other groups", value.groups - value.av_rooms, "-"),
    ]
    if user is not None:
        rows.append((f"groups of user {user}", value.user_groups, limits.user_groups))
    if group_id is not None:
        rows.append((f"members of group {group_id}", value.group_members,
                     f"{limits.group_members} (Work/Public/Meeting; Community 100000; AVChatRoom none)"))
    text = f"usage of app {app_id}\n" + table(("WHAT", "USED", "LIMIT"), rows)
    if value.held.holds or value.held.memberships or value.held.groups:
        text += "\n" + _held(value.held)
        if value.held_group_members:
            text += f", {value.held_group_members} of them members of group {group_id}"
    return text


def check(value: CheckResult) -> str:
    if value.allowed:
        return "admitted" + (" (degraded: the service was not reached)" if value.degraded else "")
    text = f"refused {int(value.code)}: {value.info}"
    if value.denied_users:
        text += "\ndenied users: " + ", ".join(value.denied_users)
    return text


def held_check(app_id: int, hold_id: str, seconds: int) -> str:
    return (f", held for {seconds} s: hold id {hold_id}\n"
            f"once done: imlimits hold confirm {app_id} {hold_id}   (failed: imlimits hold cancel ...)")


def hold(value: HoldResult) -> str:
    if int(value.code) != 0:
        return f"refused {int(value.code)}: {value.info}"
    return value.info


def released(value: Released) -> str:
    return value.info if int(value.code) == 0 else f"refused {int(value.code)}: {value.info}"


def verification(app_id: int, value: Verification) -> str:
    head = f"app {app_id}: {value.groups} groups, {value.users} users with memberships"
    if value.pending_groups:
        head += (f"\n{value.pending_releases} memberships of {value.pending_groups} destroyed groups pending release "
                 "(counted until released, not drift)")
    if value.held.holds or value.held.memberships or value.held.groups:
        head += "\n" + _held(value.held) + "; --repair leaves holds as they are"
    if not value.drifts:
        return head + "\nno drift: every count matches the membership sets"
    verb = "repaired" if value.repaired else "drifted (run again with --repair to fix)"
    return head + f"\n{len(value.drifts)} counts {verb}\n" + table(
        ("COUNT", "RECORDED", "ACTUAL"), [(d.subject, d.recorded, d.actual) for d in value.drifts])
