"""Reads the operator's price list (TOML) into the core's Prices."""

from __future__ import annotations

import re
import tomllib
from decimal import Decimal, InvalidOperation
from importlib import resources
from pathlib import Path
from typing import Any

from imlimits_server.core.billing import LimitPrice, Prices
from imlimits_server.core.editions import Edition

# Decimal() would read 999.00 written in Arabic-Indic digits as 999.00: a price written as text
# must use ASCII digits.
_AMOUNT = re.compile(r"[0-9]+(\.[0-9]+)?")


class PriceListError(ValueError):
    pass


def _minor_units(where: str, text: Any) -> int:
    if text is None:
        raise PriceListError(f"{where}: missing; every price must be given (see the default price list)")
    try:
        if isinstance(text, str) and not _AMOUNT.fullmatch(text):
            raise InvalidOperation
        amount = Decimal(str(text))
    except InvalidOperation:
        raise PriceListError(f"{where}: must be a decimal amount such as \"999.00\", got {text!r}") from None
    if amount < 0 or amount != amount.quantize(Decimal("0.01")):
        raise PriceListError(f"{where}: must be non-negative with at most 2 decimals, got {text!r}")
    return int(amount * 100)


def _limit_price(table: dict[str, Any], name: str) -> LimitPrice:
    section = table.get(name, {})
    step = section.get("step")
    if step is None:
        raise PriceListError(f"[{name}] step: missing; every price must be given (see the default price list)")
    if not isinstance(step, int) or step <= 0:
        raise PriceListError(f"[{name}] step: must be a positive integer, got {step!r}")
    return LimitPrice(step, _minor_units(f"[{name}] per_step", section.get("per_step")))


def parse(text: str) -> Prices:
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise PriceListError(f"not valid TOML: {error}") from None
    editions = table.get("editions", {})
    unknown = set(editions) - {edition.value for edition in Edition}
    if unknown:
        raise PriceListError(f"[editions]: unknown edition(s) {sorted(unknown)}")
    return Prices(
        currency=str(table.get("currency", "CNY")),
        editions={Edition(name): _minor_units(f"[editions] {name}", price) for name, price in editions.items()},
        av_room_unlimited=_minor_units("[av_room_unlimited] monthly",
                                       table.get("av_room_unlimited", {}).get("monthly")),
        user_group_limit=_limit_price(table, "user_group_limit"),
        group_member_limit=_limit_price(table, "group_member_limit"),
    )


def load(path: Path | None) -> Prices:
    """The operator's file, or the default that ships in the package."""
    if path is None:
        return parse((resources.files("imlimits_server") / "default_prices.toml").read_text())
    try:
        return parse(path.read_text())
    except OSError as error:
        raise PriceListError(f"{path}: {error.strerror}") from None
    except PriceListError as error:
        raise PriceListError(f"{path}: {error}") from None
