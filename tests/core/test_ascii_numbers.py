"""SPEC section 3: numbers in text fields are ASCII digits.

Python's \\d and int() also accept Arabic-Indic, fullwidth, Devanagari and every
other Unicode decimal digit, so "٢٠٢٠-٠١" read as 2020-01. Each parse of text
into a number, on the server and in the command line, must refuse them.
"""

# ruff: noqa: RUF001, RUF002 -- the non-ASCII digits are what these tests are about

from __future__ import annotations

import re
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from imlimits_client import cli
from imlimits_server import price_list, settings
from imlimits_server.core.months import Month

# Every decimal digit other than 0-9 that int() understands (category Nd).
NON_ASCII_DIGITS = [chr(code) for code in range(0x80, 0x20000)
                    if unicodedata.category(chr(code)) == "Nd"]
FOREIGN_2020_01 = ["٢٠٢٠-٠١", "２０２０-０１", "۲۰۲۰-۰۱", "२०२०-०१", "2020-٠١", "٢020-01", "২০২০-০১"]


def test_there_are_digits_to_refuse() -> None:
    assert int("٢٠٢٠") == 2020 and len(NON_ASCII_DIGITS) > 500


@pytest.mark.parametrize("text", FOREIGN_2020_01)
def test_a_month_in_other_digits_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="YYYY-MM"):
        Month.parse(text)


@given(st.text(alphabet=st.sampled_from("0123456789"), min_size=6, max_size=6),
       st.integers(min_value=0, max_value=5), st.sampled_from(NON_ASCII_DIGITS))
def test_one_foreign_digit_anywhere_makes_a_month_malformed(digits: str, position: int, foreign: str) -> None:
    text = digits[:4] + "-" + digits[4:]
    index = position if position < 4 else position + 1
    with pytest.raises(ValueError):
        Month.parse(text[:index] + foreign + text[index + 1:])


def test_ascii_months_still_parse() -> None:
    assert Month.parse("2020-01") == Month(2020, 1)


@pytest.mark.parametrize(("flag", "value"), [
    ("--workers", "٢"), ("--workers", "２"), ("--redis-max-pending", "١٠٠"), ("--redis-timeout", "٠.٥"),
    ("--shutdown-grace", "５"), ("--metrics-listen", "127.0.0.1:٩٤٦٤"),
])
def test_server_flags_take_ascii_numbers(flag: str, value: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        settings.parse([flag, value], environ={})
    assert "ASCII digits" in capsys.readouterr().err


def test_environment_numbers_are_ascii_too(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        settings.parse([], environ={"IMLIMITS_WORKERS": "٣"})
    assert "--workers" in capsys.readouterr().err
    assert settings.parse([], environ={"IMLIMITS_WORKERS": "3", "IMLIMITS_REDIS_TIMEOUT": "0.25"}).workers == 3


def test_a_price_in_other_digits_is_refused() -> None:
    default = price_list.load(None)
    text = '''
currency = "CNY"
[editions]
EDITION_PRO = "٩٩٩.٠٠"
EDITION_ULTIMATE = "2999.00"
[av_room_unlimited]
monthly = "300.00"
[user_group_limit]
step = 100
per_step = "50.00"
[group_member_limit]
step = 100
per_step = "100.00"
'''
    with pytest.raises(price_list.PriceListError, match="EDITION_PRO: must be a decimal amount"):
        price_list.parse(text)
    assert price_list.parse(text.replace("٩٩٩.٠٠", "999.00")) == default


@pytest.mark.parametrize("argv", [
    ["app", "create", "١٤٠٠٠٠٠٠٠١"],
    ["app", "upgrade", "1400000001", "--edition", "pro", "--user-groups", "８００"],
    ["app", "upgrade", "1400000001", "--edition", "pro", "--group-members", "३००"],
    ["check", "create-group", "1400000001", "g", "--max-members", "٥"],
    ["app", "create", "1400000001", "--timeout", "٢"],
])
def test_command_line_numbers_are_ascii(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(argv) == cli.EXIT_USAGE
    assert re.search(r"must be a whole number from \d+ to \d+|in ASCII digits", capsys.readouterr().err)


def test_command_line_times_are_ascii(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["app", "change", "1400000001", "--at", "٢٠١٩-03-01T00:00+08:00"]) == cli.EXIT_USAGE
    assert "not an ISO 8601 time" in capsys.readouterr().err
