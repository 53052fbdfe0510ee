"""Monthly bills from an app's plan history, following the console's charging rules.

Postpaid by calendar month; the bill of a month is issued on the 1st of the
next. A month in which the edition changed charges the configuration the
month began with, and what changed is charged from the 1st of the next month
(调整业务版本当月…次月1号开始收取). Any other month charges each item at the
highest level it held during the month (调整业务版本次月及以后…直接开始收取).
"""

from __future__ import annotations

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


@dataclass(frozen=True)
class BillLine:
    item: Item
    level: str
    charged: bool
    amount: int
    reason: str


@dataclass(frozen=True)
class Bill:
    month: Month
    issued_on: str
    currency: str
    lines: tuple[BillLine, ...]

    @property
    def total(self) -> int:
        return sum(line.amount for line in self.lines)


def bill(state: AppState, month: Month, tz: ZoneInfo, prices: Prices, current: Month) -> Bill:
    """The bill of `month`; `current` is the month the deployment is in now."""
    if month > current:
        raise FailedPrecondition(
            f"month {month} has not begun (it is {current}); bills exist up to the current month",
            Violation("MONTH_IN_FUTURE", "month", "after the current month"))
    issued_on = month.next().first_day().isoformat()
    return Bill(month, issued_on, prices.currency, tuple(_lines(state, month, tz, prices)))


def _lines(state: AppState, month: Month, tz: ZoneInfo, prices: Prices) -> list[BillLine]:
    start, end = month.start(tz), month.next().start(tz)
    if state.created_at >= end:
        return _nothing(f"the app was created on {_day(state.created_at, tz)}, after {month}")
    deactivated = [event.at for event in state.events if event.operation is Operation.DEACTIVATE]
    if deactivated and deactivated[0] < start:
        return _nothing(f"the app was deactivated on {_day(deactivated[0], tz)}: nothing is charged after that month")
    month_start = month_start_plan(state, month, tz)
    in_month = [event for event in state.events if start <= event.at < end]
    edition_changes = [event for event in in_month if event.before.edition != event.after.edition]
    # Every reason opens with the console guide's rule that decided the month, so two bills side
    # by side (an edition change month, a deactivation month) read as the same two rules.
    ended = (f"; deactivated on {_day(deactivated[0], tz)}, nothing is charged after {month}"
             if deactivated and deactivated[0] < end else "")
    if edition_changes:
        changed_on = _day(edition_changes[0].at, tz)
        why = (f"month of an edition change (调整业务版本当月; edition adjusted on {changed_on}): "
               f"charged at the configuration of {month.first_day().isoformat()}, "
               f"what changed from {month.next().first_day().isoformat()}{ended}")
        return _charge(month_start, prices, why)
    held = [month_start, *(event.after for event in in_month)]
    why = (f"month without an edition change (调整业务版本次月及以后): "
           f"charged at the highest level held in {month}{ended}")
    return _charge(_highest(held), prices, why)


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
        return BillLine(item, str(level), False, 0, f"{why}; not above the {edition.value} default {default}")
    steps = -(-above // price.step)
    return BillLine(item, str(level), True, steps * price.per_step,
                    f"{why}; {above} above the {edition.value} default {default}: {steps} step(s) of {price.step}")


def _nothing(reason: str) -> list[BillLine]:
    return [BillLine(item, "", False, 0, reason) for item in ITEMS]


def _day(at: datetime, tz: ZoneInfo) -> str:
    return at.astimezone(tz).date().isoformat()
