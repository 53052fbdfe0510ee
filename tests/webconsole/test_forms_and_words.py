"""The dialogs' fields and the language choice, without a browser."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from starlette.datastructures import FormData

from imlimits_client import App, AppStatus, Edition, Limits
from imlimits_console import forms, words
from imlimits_console.forms import FormError, PlanChangeForm

PRO_APP = App(1400000001, Edition.PRO, AppStatus.ACTIVE, False, 800, 200, (), Limits(800, 200, 50, False))


def form(**fields: str) -> FormData:
    return FormData(list(fields.items()))


def test_change_names_only_what_the_operator_changed() -> None:
    unchanged = form(edition="PRO", av_room_unlimited="false", user_group_limit="800", group_member_limit="200")
    assert forms.change(unchanged, PRO_APP) == PlanChangeForm()
    edited = form(edition="ULTIMATE", av_room_unlimited="false", user_group_limit="800", group_member_limit="300")
    change = forms.change(edited, PRO_APP)
    # The limit left at 800 is not named, so it follows the new edition as the service decides.
    assert change == PlanChangeForm(edition=Edition.ULTIMATE, group_member_limit=300)
    assert change.hidden_fields() == [("edition", "ULTIMATE"), ("group_member_limit", "300")]
    assert forms.confirmed(FormData(dict(change.hidden_fields()))) == change


def test_upgrade_needs_a_paid_edition_and_names_only_given_add_ons() -> None:
    assert forms.upgrade(form(edition="PRO", av_room_unlimited="false", user_group_limit="")) == \
        PlanChangeForm(edition=Edition.PRO)
    assert forms.upgrade(form(edition="PRO", av_room_unlimited="true", user_group_limit=" 900 ")) == \
        PlanChangeForm(edition=Edition.PRO, av_room_unlimited=True, user_group_limit=900)
    for edition in ("", "TRIAL", "EDITION_PRO", "<b>"):
        with pytest.raises(FormError):
            forms.upgrade(form(edition=edition))


@pytest.mark.parametrize("value", ["-1", "1.5", "abc", "٣٠٠", "4294967296", "1e3"])
def test_a_limit_must_be_a_whole_number(value: str) -> None:
    with pytest.raises(FormError) as caught:
        forms.change(form(user_group_limit=value), PRO_APP)
    assert caught.value.values == {"item": "user_group_limit"}


@pytest.mark.parametrize("cookie, accept, chosen", [
    (None, None, "zh"),
    (None, "en-US,en;q=0.9", "en"),
    (None, "zh-CN,zh;q=0.9,en;q=0.8", "zh"),
    (None, "fr-FR, en;q=0.5, zh;q=0.4", "en"),
    (None, "de, zh-TW;q=0.8, en;q=0.8", "zh"),
    (None, "en;q=bogus, zh;q=0.1", "zh"),
    ("en", "zh-CN", "en"),
    ("xx", "en", "en"),
])
def test_language_from_the_switch_then_accept_language(cookie: str | None, accept: str | None,
                                                       chosen: str) -> None:
    assert words.negotiate(cookie, accept) == chosen


def test_every_word_has_both_languages_and_the_consoles_own_words() -> None:
    zh, en = words.translator("zh"), words.translator("en")
    assert [zh(key) for key in ("upgrade", "change", "deactivate", "edition")] == ["升级", "变配", "停用", "业务版本"]
    assert en("upgrade") == "Upgrade"
    assert zh("opens_on", day="2026-12-01") == "2026-12-01 起可再次变配"


def test_every_word_a_template_names_exists() -> None:
    """A missing word would show its key ("upgrade.title") to the operator."""
    templates = Path(words.__file__).parent / "templates"
    named = {key for page in templates.glob("*.html")
             for key in re.findall(r"\bt\('([a-z_.0-9]+)'", page.read_text())}
    # A key made of a prefix and a name ("group_type." ~ type) needs a word for every name.
    prefixes = {key for key in named if key.endswith(".")}
    assert {"group_type."} <= prefixes
    named |= {f"group_type.{name}" for name in ("WORK", "PUBLIC", "MEETING", "AVCHATROOM", "COMMUNITY")}
    assert named and not named - prefixes - set(words._WORDS)
