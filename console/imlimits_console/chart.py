"""The bills page's chart: the last 12 months' totals as bars, drawn on the server as SVG."""

from __future__ import annotations

from dataclasses import dataclass

WIDTH, HEIGHT = 720, 220
_TOP, _BOTTOM, _LEFT = 24, 40, 8
_BAR_GAP = 10


@dataclass(frozen=True)
class Bar:
    month: str
    total: int  # minor units
    x: float
    y: float
    width: float
    height: float
    selected: bool


def bars(totals: list[tuple[str, int]], selected: str) -> list[Bar]:
    """One bar per month, oldest first, scaled to the largest total (a month of nothing is a hairline)."""
    if not totals:
        return []
    largest = max(total for _, total in totals) or 1
    slot = (WIDTH - 2 * _LEFT) / len(totals)
    area = HEIGHT - _TOP - _BOTTOM
    result = []
    for index, (month, total) in enumerate(totals):
        height = max(1.0, area * total / largest)
        result.append(Bar(month, total, _LEFT + index * slot + _BAR_GAP / 2, _TOP + area - height,
                          slot - _BAR_GAP, height, month == selected))
    return result
