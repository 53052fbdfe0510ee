"""What a plan change would do, before it is made: the console's cost preview.

Derived from the same history as everything else: the change is applied to
the app's history as the real call would apply it, and the bills are those of
that history, so a preview cannot disagree with what the change then does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from imlimits_server.core import billing, plans
from imlimits_server.core.billing import Bill, Prices
from imlimits_server.core.editions import Item
from imlimits_server.core.months import Month
from imlimits_server.core.plans import AppState


@dataclass(frozen=True)
class PlanPreview:
    after: AppState
    locked: list[Item]  # every item locked for the month after the change
    newly_locked: list[Item]  # those the change itself would use up
    this_month: Bill
    next_month: Bill


def preview(before: AppState, after: AppState, at: datetime, tz: ZoneInfo, prices: Prices) -> PlanPreview:
    """`after` is `before` with the change applied at `at` (or `before` itself when it changes nothing).

    The next month's bill is read as if nothing else changes: the month opens
    on the plan as it would be, and bills of a month with no change charge
    what it held.
    """
    month = Month.of(at, tz)
    locked_before = plans.locked_items(before, at, tz)
    locked_after = plans.locked_items(after, at, tz)
    return PlanPreview(
        after=after,
        locked=locked_after,
        newly_locked=[item for item in locked_after if item not in locked_before],
        this_month=billing.bill(after, month, tz, prices, month),
        next_month=billing.bill(after, month.next(), tz, prices, month.next()),
    )
