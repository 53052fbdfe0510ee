"""Calendar months in the deployment's time zone: the unit of the monthly rule and of bills."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

# [0-9], not \d: \d also matches Arabic-Indic, fullwidth and other Unicode digits,
# and 2020-01 in Arabic-Indic digits must not mean 2020-01 (SPEC: numbers in text fields are ASCII).
_MONTH = re.compile(r"([0-9]{4})-([0-9]{2})")


@dataclass(frozen=True, order=True)
class Month:
    year: int
    month: int

    @classmethod
    def of(cls, at: datetime, tz: ZoneInfo) -> Month:
        local = at.astimezone(tz)
        return cls(local.year, local.month)

    @classmethod
    def parse(cls, text: str) -> Month:
        """Parse "YYYY-MM"; ValueError says what is wrong."""
        match = _MONTH.fullmatch(text)
        if match is None:
            raise ValueError(f"must be YYYY-MM, got {text!r}")
        year, month = int(match.group(1)), int(match.group(2))
        if not 1 <= month <= 12 or year < 1:
            raise ValueError(f"must be a real month YYYY-MM, got {text!r}")
        return cls(year, month)

    def next(self) -> Month:
        return Month(self.year + self.month // 12, self.month % 12 + 1)

    def first_day(self) -> date:
        return date(self.year, self.month, 1)

    def start(self, tz: ZoneInfo) -> datetime:
        """00:00 on the 1st, in the deployment's time zone."""
        return datetime(self.year, self.month, 1, tzinfo=tz)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"
