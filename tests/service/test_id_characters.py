"""Ids carry no control, format or separator characters (SPEC section 3): the rule, for any text."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from imlimits_server.core.errors import InvalidArgument
from imlimits_server.service import validation

REFUSED = {"Cc", "Cf", "Zl", "Zp"}


@given(st.text(min_size=1, max_size=8))
def test_an_id_is_accepted_exactly_when_no_character_is_refused(text: str) -> None:
    allowed = not any(unicodedata.category(character) in REFUSED for character in text)
    if len(text.encode()) > validation.GROUP_ID_MAX_BYTES:
        return
    try:
        validation.group_id("group_id", text)
        accepted = True
    except InvalidArgument as error:
        assert error.field == "group_id"
        accepted = False
    assert accepted == allowed


@pytest.mark.parametrize("character", ["\u202e", "\u200b", "\u2028", "\u2029", "\ufeff", "\u0085", "\x00", "\x7f"])
def test_spoofing_characters_are_named(character: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        validation.user_id("members[1]", f"admin{character}")
    assert refused.value.message == (f"members[1]: must not contain control, format or separator characters, "
                                     f"got U+{ord(character):04X}")
