"""The client's result types, converted from the wire messages in one place."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from imlimits.v1 import limit_pb2, plan_pb2


class ImCode(enum.IntEnum):
    """The IM platform's error codes a check answers (SPEC section 2)."""

    OK = 0
    AV_ROOM_WITH_MEMBERS = 10007
    GROUP_NOT_FOUND = 10010
    GROUP_FULL = 10014
    GROUP_ID_IN_USE = 10021
    GROUP_ID_OWNED_BY_CALLER = 10025
    AV_ROOM_LIMIT = 10036
    USER_GROUP_LIMIT = 10037
    GROUP_MEMBER_LIMIT = 10038
    NOT_ULTIMATE = 10059
    APP_DISABLED = 60016
    # Not an IM code: the service could not be reached and on_unavailable="deny" decided.
    SERVICE_UNAVAILABLE = -1


class Edition(enum.Enum):
    TRIAL = plan_pb2.EDITION_TRIAL
    PRO = plan_pb2.EDITION_PRO
    ULTIMATE = plan_pb2.EDITION_ULTIMATE


class AppStatus(enum.Enum):
    ACTIVE = plan_pb2.APP_STATUS_ACTIVE
    DEACTIVATED = plan_pb2.APP_STATUS_DEACTIVATED


class GroupType(enum.Enum):
    WORK = limit_pb2.GROUP_TYPE_WORK
    PUBLIC = limit_pb2.GROUP_TYPE_PUBLIC
    MEETING = limit_pb2.GROUP_TYPE_MEETING
    AVCHATROOM = limit_pb2.GROUP_TYPE_AVCHATROOM
    COMMUNITY = limit_pb2.GROUP_TYPE_COMMUNITY


@dataclass(frozen=True)
class CheckResult:
    code: ImCode | int
    info: str
    allowed: bool
    denied_users: tuple[str, ...] = ()
    limit: int = 0
    current: int = 0
    # True when the client's on_unavailable policy answered, not the service.
    degraded: bool = False
    # An admitted held check's hold: confirm it once the act has happened, cancel it if the act failed.
    hold_id: str = ""

    @classmethod
    def from_proto(cls, message: limit_pb2.CheckResponse) -> CheckResult:
        return cls(_code(message.code), message.info, message.allowed, tuple(message.denied_users),
                   message.limit, message.current, hold_id=message.hold_id)


@dataclass(frozen=True)
class HoldResult:
    """ConfirmHold's answer: `confirmed` false means the hold had been cancelled or had expired."""

    code: ImCode | int
    info: str
    confirmed: bool

    @classmethod
    def from_proto(cls, message: limit_pb2.HoldResponse) -> HoldResult:
        return cls(_code(message.code), message.info, message.confirmed)


@dataclass(frozen=True)
class Held:
    """What is held now (docs/holds.md), apart from what is confirmed; the usual counts include it."""

    holds: int = 0
    groups: int = 0
    av_rooms: int = 0
    memberships: int = 0

    @classmethod
    def from_proto(cls, message: limit_pb2.Usage | limit_pb2.VerifyUsageResponse) -> Held:
        return cls(message.holds, message.held_groups, message.held_av_rooms, message.held_memberships)


@dataclass(frozen=True)
class Released:
    code: ImCode | int
    info: str
    released: int

    @classmethod
    def from_proto(cls, message: limit_pb2.ReleaseResponse) -> Released:
        return cls(_code(message.code), message.info, message.released)


@dataclass(frozen=True)
class Limits:
    user_groups: int
    group_members: int
    av_rooms: int | None  # None: unlimited
    community_allowed: bool

    @classmethod
    def from_proto(cls, message: plan_pb2.Limits) -> Limits:
        return cls(message.user_groups, message.group_members,
                   None if message.av_rooms_unlimited else message.av_rooms, message.community_allowed)


@dataclass(frozen=True)
class Usage:
    av_rooms: int
    groups: int
    limits: Limits
    user_groups: int | None
    group_members: int | None
    held: Held = Held()
    held_group_members: int | None = None  # of group_members, those held
    # With a group asked for: the member limit its joins meet now (the lower of its own cap and the plan's
    # limit for its type; None: none applies), its own cap (0 follows the plan) and its type.
    group_members_limit: int | None = None
    group_max_members: int = 0
    group_type: GroupType | None = None

    @classmethod
    def from_proto(cls, message: limit_pb2.Usage) -> Usage:
        return cls(message.av_rooms, message.groups, Limits.from_proto(message.limits),
                   message.user_groups if message.HasField("user_groups") else None,
                   message.group_members if message.HasField("group_members") else None,
                   Held.from_proto(message),
                   message.held_group_members if message.HasField("held_group_members") else None,
                   message.group_members_limit if message.HasField("group_members_limit") else None,
                   message.group_max_members,
                   GroupType(message.group_type) if message.group_type else None)


@dataclass(frozen=True)
class App:
    app_id: int
    edition: Edition
    status: AppStatus
    av_room_unlimited: bool
    user_group_limit: int
    group_member_limit: int
    locked_items: tuple[str, ...]
    limits: Limits

    @classmethod
    def from_proto(cls, message: plan_pb2.App) -> App:
        return cls(message.app_id, Edition(message.edition), AppStatus(message.status), message.av_room_unlimited,
                   message.user_group_limit, message.group_member_limit, tuple(message.locked_items),
                   Limits.from_proto(message.limits))


@dataclass(frozen=True)
class AppPage:
    """One page of ListApps; pass `next_page_token` back for the next one (empty on the last page)."""

    apps: tuple[App, ...]
    next_page_token: str

    @classmethod
    def from_proto(cls, message: plan_pb2.ListAppsResponse) -> AppPage:
        return cls(tuple(App.from_proto(app) for app in message.apps), message.next_page_token)


@dataclass(frozen=True)
class PlanChange:
    at: datetime
    item: str
    old_value: str
    new_value: str
    operation: str
    request_id: str
    implicit: bool

    @classmethod
    def from_proto(cls, message: plan_pb2.PlanChange, zone: tzinfo = UTC) -> PlanChange:
        return cls(message.at.ToDatetime(tzinfo=UTC).astimezone(zone), message.item, message.old_value,
                   message.new_value, message.operation, message.request_id, message.implicit)


def plan_changes(message: plan_pb2.ListPlanChangesResponse) -> list[PlanChange]:
    """The history with every `at` in the deployment's time zone, the one its months and bills use."""
    zone = service_zone(message.time_zone)
    return [PlanChange.from_proto(change, zone) for change in message.changes]


def service_zone(name: str) -> tzinfo:
    """The service's time zone by its IANA name; UTC when a server does not say or names one unknown here."""
    try:
        return ZoneInfo(name) if name else UTC
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def zone_name(at: datetime) -> str:
    """The IANA name of the zone `at` is in ("Asia/Shanghai"), as plan_changes gives it; else its abbreviation."""
    return getattr(at.tzinfo, "key", None) or at.tzname() or "UTC"


class BillRule(enum.Enum):
    """The console guide's rule that decided a month's bill (BillRule on the wire)."""

    UNSPECIFIED = plan_pb2.BILL_RULE_UNSPECIFIED  # a server older than the field
    EDITION_CHANGED = plan_pb2.BILL_RULE_EDITION_CHANGED  # the month-start configuration; changes from next month
    HIGHEST_LEVEL = plan_pb2.BILL_RULE_HIGHEST_LEVEL  # each item at the highest level held in the month
    NOT_CREATED = plan_pb2.BILL_RULE_NOT_CREATED  # the app was created after the month
    DEACTIVATED = plan_pb2.BILL_RULE_DEACTIVATED  # the app was deactivated before the month


@dataclass(frozen=True)
class BillLine:
    item: str
    level: str
    charged: bool
    amount: int  # minor units
    reason: str  # in English: the bill's rule, then this line's own detail after "; "
    # The two limits: the default of the edition charged this month (included), and the steps charged above it.
    edition_default: int = 0
    steps: int = 0
    step: int = 0


@dataclass(frozen=True)
class Bill:
    month: str
    issued_on: str
    currency: str
    total: int  # minor units
    lines: tuple[BillLine, ...]
    rule: BillRule = BillRule.UNSPECIFIED
    created_on: str = ""  # "YYYY-MM-DD" in the service's time zone
    edition_changed_on: str = ""  # with BillRule.EDITION_CHANGED
    deactivated_on: str = ""  # when the app was deactivated before the end of this month

    @classmethod
    def from_proto(cls, message: plan_pb2.Bill) -> Bill:
        try:
            rule = BillRule(message.rule)
        except ValueError:  # a rule newer than this client: the English reasons still say it
            rule = BillRule.UNSPECIFIED
        return cls(message.month, message.issued_on, message.currency, message.total,
                   tuple(BillLine(line.item, line.level, line.charged, line.amount, line.reason,
                                  line.edition_default, line.steps, line.step) for line in message.lines),
                   rule, message.created_on, message.edition_changed_on, message.deactivated_on)


@dataclass(frozen=True)
class PlanPreview:
    """What an Upgrade or ChangePlan would do: the app after it, what it locks, and the two bills it shapes."""

    app: App
    newly_locked_items: tuple[str, ...]
    this_month: Bill
    next_month: Bill

    @classmethod
    def from_proto(cls, message: plan_pb2.PlanPreview) -> PlanPreview:
        return cls(App.from_proto(message.app), tuple(message.newly_locked_items),
                   Bill.from_proto(message.this_month), Bill.from_proto(message.next_month))


@dataclass(frozen=True)
class Drift:
    subject: str
    recorded: int
    actual: int


@dataclass(frozen=True)
class Verification:
    groups: int
    users: int
    drifts: tuple[Drift, ...]
    repaired: bool
    pending_groups: int = 0  # destroyed groups whose memberships are still being released
    pending_releases: int = 0  # those memberships: counted until released, not drift
    held: Held = Held()  # held items: counted like confirmed ones, never drift, left alone by a repair

    @classmethod
    def from_proto(cls, message: limit_pb2.VerifyUsageResponse) -> Verification:
        return cls(message.groups, message.users,
                   tuple(Drift(d.subject, d.recorded, d.actual) for d in message.drifts), message.repaired,
                   message.pending_groups, message.pending_releases, Held.from_proto(message))


@dataclass(frozen=True)
class GroupRecord:
    """A group as it exists on the platform, for ImportGroups and from ExportGroups.

    A group with more than 10,000 members continues in further records with the same group_id.
    """

    group_id: str
    type: GroupType = GroupType.WORK
    owner: str = ""
    members: tuple[str, ...] = ()
    max_members: int = 0

    @classmethod
    def from_proto(cls, message: limit_pb2.GroupRecord) -> GroupRecord:
        return cls(message.group_id, GroupType(message.type), message.owner, tuple(message.members),
                   message.max_members)

    def to_proto(self) -> limit_pb2.GroupRecord:
        return limit_pb2.GroupRecord(group_id=self.group_id, type=self.type.value, owner=self.owner,
                                     members=self.members, max_members=self.max_members)


@dataclass(frozen=True)
class OverLimit:
    kind: str  # "av_rooms", "group_members" or "user_groups"
    subject: str  # the group or user; empty for av_rooms
    limit: int
    current: int


@dataclass(frozen=True)
class ImportResult:
    groups_created: int
    groups_updated: int
    memberships_added: int
    memberships_removed: int
    over_limit: tuple[OverLimit, ...]  # at most 1000 entries
    over_limit_total: int  # all of them

    @classmethod
    def from_proto(cls, message: limit_pb2.ImportGroupsResponse) -> ImportResult:
        return cls(message.groups_created, message.groups_updated, message.memberships_added,
                   message.memberships_removed,
                   tuple(OverLimit(o.kind, o.subject, o.limit, o.current) for o in message.over_limit),
                   message.over_limit_total)


def _code(value: int) -> ImCode | int:
    """A newer server may answer a code this client does not know: it stays visible as a plain int."""
    return _IM_CODES.get(value, value)


_IM_CODES = {int(code): code for code in ImCode}  # a dict read, where ImCode(value) costs an enum look-up
