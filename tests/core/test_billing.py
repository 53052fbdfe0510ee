"""Bills on the pure core: the console guide's scenarios, the charging rules, and their properties."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings

from core.test_plans_properties import operations, run
from imlimits_server import price_list
from imlimits_server.core import plans
from imlimits_server.core.billing import Bill, bill
from imlimits_server.core.editions import Edition, Item
from imlimits_server.core.errors import FailedPrecondition
from imlimits_server.core.months import Month
from imlimits_server.core.plans import AppState, PlanRequest
from imlimits_server.price_list import PriceListError

TZ = ZoneInfo("Asia/Shanghai")
PRICES = price_list.load(None)
NOW = Month(2026, 11)
PRO, ULTIMATE, AV = 99_900, 299_900, 30_000


def at(year: int, month: int, day: int, hour: int = 0) -> datetime:
    return datetime(year, month, day, hour, tzinfo=TZ)


def pro_app() -> AppState:
    """Console guide: set to PRO on 2019-02-10."""
    state = plans.create_app(1, at(2019, 1, 2))
    return plans.upgrade(state, PlanRequest(edition=Edition.PRO), at(2019, 2, 10), TZ)


def change(state: AppState, when: datetime, **named: object) -> AppState:
    return plans.change_plan(state, PlanRequest(**named), when, TZ)  # type: ignore[arg-type]


def month_bill(state: AppState, text: str) -> Bill:
    return bill(state, Month.parse(text), TZ, PRICES, NOW)


def charged(result: Bill) -> dict[str, int]:
    return {line.item.value: line.amount for line in result.lines if line.charged}


class TestConsoleScenarios:
    def test_one_av_on_and_off_in_the_upgrade_month_charges_nothing_for_av(self) -> None:
        state = change(pro_app(), at(2019, 2, 15), av_room_unlimited=True)
        state = change(state, at(2019, 2, 25), av_room_unlimited=False)
        february, march = month_bill(state, "2019-02"), month_bill(state, "2019-03")
        assert (february.issued_on, february.total) == ("2019-03-01", 0)
        assert "edition adjusted on 2019-02-10" in february.lines[0].reason
        assert (march.issued_on, charged(march)) == ("2019-04-01", {"edition": PRO})

    def test_two_av_on_and_kept_is_first_charged_for_march(self) -> None:
        state = change(pro_app(), at(2019, 2, 15), av_room_unlimited=True)
        assert month_bill(state, "2019-02").total == 0
        march = month_bill(state, "2019-03")
        assert (march.issued_on, charged(march)) == ("2019-04-01", {"edition": PRO, "av_room_unlimited": AV})

    def test_three_av_on_in_april_is_charged_for_april(self) -> None:
        state = change(pro_app(), at(2019, 2, 15), user_group_limit=800)
        state = change(state, at(2019, 2, 20), user_group_limit=500)  # changed in February, then restored
        state = change(state, at(2019, 4, 10), av_room_unlimited=True)
        assert charged(month_bill(state, "2019-03")) == {"edition": PRO}
        april = month_bill(state, "2019-04")
        assert (april.issued_on, charged(april)) == ("2019-05-01", {"edition": PRO, "av_room_unlimited": AV})
        assert april.total == PRO + AV


class TestRules:
    def test_highest_level_in_the_month_is_charged(self) -> None:
        state = change(pro_app(), at(2019, 3, 5), user_group_limit=800)
        state = change(state, at(2019, 3, 20), user_group_limit=500)
        march = month_bill(state, "2019-03")
        line = march.lines[2]
        assert (line.item, line.level, line.charged, line.amount) == (Item.USER_GROUP_LIMIT, "800", True, 3 * 5_000)
        assert "300 above the EDITION_PRO default 500" in line.reason
        assert charged(month_bill(state, "2019-04")) == {"edition": PRO}

    def test_edition_change_month_charges_the_old_configuration(self) -> None:
        state = change(pro_app(), at(2019, 2, 20), group_member_limit=250)
        state = change(state, at(2019, 3, 10), edition=Edition.ULTIMATE)
        march = month_bill(state, "2019-03")
        assert charged(march) == {"edition": PRO, "group_member_limit": 10_000}
        assert [line.level for line in march.lines] == ["EDITION_PRO", "false", "500", "250"]
        assert charged(month_bill(state, "2019-04")) == {"edition": ULTIMATE}

    def test_reverted_edition_change_still_makes_an_edition_change_month(self) -> None:
        state = change(pro_app(), at(2019, 3, 10), edition=Edition.ULTIMATE)
        state = change(state, at(2019, 3, 12), edition=Edition.PRO)
        assert "edition adjusted on 2019-03-10" in month_bill(state, "2019-03").lines[0].reason
        assert month_bill(state, "2019-03").total == PRO

    def test_downgrade_to_trial(self) -> None:
        state = change(pro_app(), at(2019, 3, 10), edition=Edition.TRIAL)
        assert charged(month_bill(state, "2019-03")) == {"edition": PRO}
        april = month_bill(state, "2019-04")
        assert april.total == 0 and april.lines[0].level == "EDITION_TRIAL"

    def test_deactivation_mid_month(self) -> None:
        state = change(pro_app(), at(2019, 3, 5), av_room_unlimited=True)
        state = plans.deactivate(state, at(2019, 3, 15))
        assert charged(month_bill(state, "2019-03")) == {"edition": PRO, "av_room_unlimited": AV}
        april = month_bill(state, "2019-04")
        assert april.total == 0 and "deactivated on 2019-03-15" in april.lines[0].reason

    def test_trial_app_is_always_free(self) -> None:
        state = plans.create_app(1, at(2019, 1, 2))
        for month in ("2019-01", "2019-06", "2026-11"):
            result = month_bill(state, month)
            assert result.total == 0 and len(result.lines) == 4

    def test_months_before_the_app_bill_nothing(self) -> None:
        result = month_bill(pro_app(), "2018-12")
        assert result.total == 0 and "created on 2019-01-02" in result.lines[0].reason

    def test_future_months_are_refused(self) -> None:
        with pytest.raises(FailedPrecondition, match="2026-12"):
            month_bill(pro_app(), "2026-12")

    def test_a_bill_always_has_four_lines_in_order(self) -> None:
        assert [line.item for line in month_bill(pro_app(), "2019-05").lines] == list(Item)

    def test_ultimate_limits_charged_above_ultimate_defaults(self) -> None:
        state = change(pro_app(), at(2019, 3, 1), edition=Edition.ULTIMATE, user_group_limit=1050)
        assert charged(month_bill(state, "2019-04")) == {"edition": ULTIMATE, "user_group_limit": 5_000}


class TestPriceList:
    def test_operator_prices_replace_defaults(self, tmp_path: Path) -> None:
        path = tmp_path / "prices.toml"
        path.write_text('currency = "USD"\n[editions]\nEDITION_PRO = "10.50"\n[av_room_unlimited]\nmonthly = "1"\n'
                        "[user_group_limit]\nstep = 10\nper_step = \"0.25\"\n"
                        "[group_member_limit]\nstep = 50\nper_step = \"2\"\n")
        prices = price_list.load(path)
        state = change(pro_app(), at(2019, 3, 1), user_group_limit=521)
        result = bill(state, Month(2019, 4), TZ, prices, NOW)
        assert (result.currency, result.total) == ("USD", 1_050 + 3 * 25)

    @pytest.mark.parametrize(("old", "new", "error"), [
        ('EDITION_PRO = "999.00"', 'EDITION_GOLD = "1"', "unknown edition"),
        ('EDITION_PRO = "999.00"', 'EDITION_PRO = "1.001"', "at most 2 decimals"),
        ('EDITION_PRO = "999.00"', 'EDITION_PRO = "abc"', "decimal amount"),
        ('monthly = "300.00"', "", "monthly: missing"),
        ("step = 100", "step = 0", "positive integer"),
        ("[editions]", "[editions", "not valid TOML"),
    ])
    def test_bad_price_lists_say_what_is_wrong(self, tmp_path: Path, old: str, new: str, error: str) -> None:
        default = (Path(price_list.__file__).parent / "default_prices.toml").read_text()
        assert old in default
        path = tmp_path / "prices.toml"
        path.write_text(default.replace(old, new, 1))
        with pytest.raises(PriceListError, match=error):
            price_list.load(path)


def _truncated(state: AppState, end: datetime) -> AppState:
    return AppState(state.app_id, tuple(event for event in state.events if event.at < end))


@settings(max_examples=200, deadline=None)
@given(operations)
def test_a_bill_depends_only_on_history_up_to_its_month_end(ops: list[tuple[str, PlanRequest, timedelta]]) -> None:
    state, _ = run(ops)
    last = Month.of(state.last_at, TZ)
    month = Month(2019, 1)
    while month <= last:
        end = month.next().start(TZ)
        assert bill(state, month, TZ, PRICES, last) == bill(_truncated(state, end), month, TZ, PRICES, last)
        month = month.next()


@settings(max_examples=200, deadline=None)
@given(operations)
def test_no_month_charges_a_level_the_app_never_held(ops: list[tuple[str, PlanRequest, timedelta]]) -> None:
    state, _ = run(ops)
    last = Month.of(state.last_at, TZ)
    month = Month(2019, 1)
    while month <= last:
        start, end = month.start(TZ), month.next().start(TZ)
        held = [plans.month_start_plan(state, month, TZ)] + [e.after for e in state.events if start <= e.at < end]
        for line in bill(state, month, TZ, PRICES, last).lines:
            if line.charged:
                assert line.level in {str(plan.value(line.item)) if line.item is not Item.EDITION
                                      else plan.edition.value for plan in held} | \
                    {"true" for plan in held if plan.av_room_unlimited}, (month, line)
        month = month.next()
