"""Monthly bills from an app's plan history, following the console's charging rules.

Postpaid by calendar month; the bill of a month is issued on the 1st of the
next. A month in which the edition changed charges the configuration the
month began with, and what changed is charged from the 1st of the next month
(调整业务版本当月…次月1号开始收取). Any other month charges each item at the
highest level it held during the month (调整业务版本次月及以后…直接开始收取).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from imlimits_server.core.editions import DEFAULTS, ITEMS, Edition, Item, Plan, format_value
from imlimits_server.core.errors import FailedPrecondition, Violation
from imlimits_server.core.months import Month
from imlimits_server.core.plans import AppState, Operation, month_start_plan


@dataclass(frozen=True)
class LimitPrice:
    """A limit is charged per started step above its edition's default."""

    step: int
    per_step: int  # minor units a month


@dataclass(frozen=True)
class Prices:
    currency: str
    editions: dict[Edition, int]  # minor units a month; TRIAL is free
    av_room_unlimited: int
    user_group_limit: LimitPrice
    group_member_limit: LimitPrice


class BillRule(enum.Enum):
    """The rule that decided a month's bill, the same for its four lines; values are the wire names."""

    EDITION_CHANGED = "BILL_RULE_EDITION_CHANGED"  # 调整业务版本当月
    HIGHEST_LEVEL = "BILL_RULE_HIGHEST_LEVEL"  # 调整业务版本次月及以后
    NOT_CREATED = "BILL_RULE_NOT_CREATED"
    DEACTIVATED = "BILL_RULE_DEACTIVATED"


@dataclass(frozen=True)
class BillLine:
    item: Item
    level: str
    charged: bool
    amount: int
    reason: str
    # The limits: the charged edition's default (included), and the steps charged above it.
    edition_default: int = 0
    steps: int = 0
    step: int = 0


@dataclass(frozen=True)
class Bill:
    month: Month
    issued_on: str
    currency: str
    lines: tuple[BillLine, ...]
    rule: BillRule
    created_on: str
    edition_changed_on: str = ""
    deactivated_on: str = ""  # when the app was deactivated before the end of the month

    @property
    def total(self) -> int:
        return sum(line.amount for line in self.lines)


def bill(state: AppState, month: Month, tz: ZoneInfo, prices: Prices, current: Month) -> Bill:
    """The bill of `month`; `current` is the month the deployment is in now.

    Each line's `reason` is English text: the month's rule, then the line's own
    detail after "; ". The rule and the values it names are also fields of the
    bill, so a caller may word them itself.
    """
    if month > current:
        raise FailedPrecondition(
            f"month {month} has not begun (it is {current}); bills exist up to the current month",
            Violation("MONTH_IN_FUTURE", "month", "after the current month"),
            {"month": str(month), "current": str(current)})
    issued_on = month.next().first_day().isoformat()
    start, end = month.start(tz), month.next().start(tz)
    created_on = _day(state.created_at, tz)
    deactivated = [event.at for event in state.events if event.operation is Operation.DEACTIVATE]
    deactivated_on = _day(deactivated[0], tz) if deactivated and deactivated[0] < end else ""
    if state.created_at >= end:
        return Bill(month, issued_on, prices.currency,
                    _nothing(f"the app was created on {created_on}, after {month}"), BillRule.NOT_CREATED,
                    created_on)
    if deactivated and deactivated[0] < start:
        return Bill(month, issued_on, prices.currency,
                    _nothing(f"the app was deactivated on {deactivated_on}: nothing is charged after that month"),
                    BillRule.DEACTIVATED, created_on, deactivated_on=deactivated_on)
    month_start = month_start_plan(state, month, tz)
    in_month = [event for event in state.events if start <= event.at < end]
    edition_changes = [event for event in in_month if event.before.edition != event.after.edition]
    # Every reason opens with the console guide's rule that decided the month, so two bills side
    # by side (an edition change month, a deactivation month) read as the same two rules.
    ended = f"; deactivated on {deactivated_on}, nothing is charged after {month}" if deactivated_on else ""
    if edition_changes:
        changed_on = _day(edition_changes[0].at, tz)
        # An app created this month is charged as it started (on TRIAL), not as of a 1st it did not see.
        charged_as = (f"the configuration the app started with on {created_on}" if state.created_at >= start
                      else f"the configuration of {month.first_day().isoformat()}")
        why = (f"month of an edition change (调整业务版本当月; edition adjusted on {changed_on}): "
               f"charged at {charged_as}, what changed from {month.next().first_day().isoformat()}{ended}")
        return Bill(month, issued_on, prices.currency, tuple(_charge(month_start, prices, why)),
                    BillRule.EDITION_CHANGED, created_on, changed_on, deactivated_on)
    held = [month_start, *(event.after for event in in_month)]
    why = (f"month without an edition change (调整业务版本次月及以后): "
           f"charged at the highest level held in {month}{ended}")
    return Bill(month, issued_on, prices.currency, tuple(_charge(_highest(held), prices, why)),
                BillRule.HIGHEST_LEVEL, created_on, deactivated_on=deactivated_on)


def _highest(held: list[Plan]) -> Plan:
    return Plan(
        max((plan.edition for plan in held), key=lambda edition: edition.rank),
        any(plan.av_room_unlimited for plan in held),
        max(plan.user_group_limit for plan in held),
        max(plan.group_member_limit for plan in held),
    )


def _charge(plan: Plan, prices: Prices, why: str) -> list[BillLine]:
    """The four lines for one charged configuration; limits are charged above its edition's defaults."""
    defaults = DEFAULTS[plan.edition]
    edition_price = prices.editions.get(plan.edition, 0)
    edition = format_value(plan.edition)
    av_price = prices.av_room_unlimited if plan.av_room_unlimited else 0
    return [
        BillLine(Item.EDITION, edition, edition_price > 0, edition_price,
                 f"{why}; {edition} is {'charged' if edition_price else 'free'}"),
        BillLine(Item.AV_ROOM_UNLIMITED, format_value(plan.av_room_unlimited), plan.av_room_unlimited, av_price,
                 f"{why}; {'on' if plan.av_room_unlimited else 'off'}"),
        _limit_line(Item.USER_GROUP_LIMIT, plan.user_group_limit, defaults.user_group_limit, plan.edition,
                    prices.user_group_limit, why),
        _limit_line(Item.GROUP_MEMBER_LIMIT, plan.group_member_limit, defaults.group_member_limit, plan.edition,
                    prices.group_member_limit, why),
    ]


def _limit_line(item: Item, level: int, default: int, edition: Edition, price: LimitPrice, why: str) -> BillLine:
    above = level - default
    if above <= 0:
        return BillLine(item, str(level), False, 0, f"{why}; not above the {edition.value} default {default}",
                        default)
    steps = -(-above // price.step)
    return BillLine(item, str(level), True, steps * price.per_step,
                    f"{why}; {above} above the {edition.value} default {default}: {steps} step(s) of {price.step}",
                    default, steps, price.step)


def _nothing(reason: str) -> tuple[BillLine, ...]:
    return tuple(BillLine(item, "", False, 0, reason) for item in ITEMS)


def _day(at: datetime, tz: ZoneInfo) -> str:
    return at.astimezone(tz).date().isoformat()
