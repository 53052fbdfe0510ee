"""The module's parts that need no homeserver: config, ids, the translation of events, refusals, import kinds."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from imlimits_client import CheckResult, GroupType, ImCode
from imlimits_synapse import config, ids, refusals, translate
from imlimits_synapse.importer import creation_kind
from imlimits_synapse.translate import RoomKind

# -- config -----------------------------------------------------------------------------------------------------


def test_config_defaults() -> None:
    parsed = config.parse({"target": "127.0.0.1:50051", "app_id": 1400000001})
    assert parsed == config.ModuleConfig("127.0.0.1:50051", 1400000001, None, 30, "deny", "")


def test_config_reads_the_token_file(tmp_path: Path) -> None:
    token = tmp_path / "check-token"
    token.write_text("s3cret-token-of-sixteen\n")
    assert config.parse({"target": "h:1", "app_id": 1, "token_file": str(token)}).token == "s3cret-token-of-sixteen"


@pytest.mark.parametrize(("raw", "key", "words"), [
    ({"app_id": 1}, "target", "required"),
    ({"target": "", "app_id": 1}, "target", "HOST:PORT"),
    ({"target": "a b:1", "app_id": 1}, "target", "without spaces"),
    ({"target": "h:1"}, "app_id", "required"),
    ({"target": "h:1", "app_id": 0}, "app_id", "from 1"),
    ({"target": "h:1", "app_id": "1400000001"}, "app_id", "whole number"),
    ({"target": "h:1", "app_id": True}, "app_id", "whole number"),
    ({"target": "h:1", "app_id": 2**64}, "app_id", "from 1"),
    ({"target": "h:1", "app_id": 1, "hold_seconds": 0}, "hold_seconds", "from 1 to 3600"),
    ({"target": "h:1", "app_id": 1, "hold_seconds": 3601}, "hold_seconds", "from 1 to 3600"),
    ({"target": "h:1", "app_id": 1, "hold_seconds": 2.5}, "hold_seconds", "whole number"),
    ({"target": "h:1", "app_id": 1, "on_unavailable": "raise"}, "on_unavailable", "deny or allow"),
    ({"target": "h:1", "app_id": 1, "admin_contact": 5}, "admin_contact", "URI"),
    ({"target": "h:1", "app_id": 1, "token_file": "/nonexistent/token"}, "token_file", "cannot read"),
    ({"target": "h:1", "app_id": 1, "hold_second": 5}, "hold_second", "unknown key"),
    ([1, 2], "config", "mapping"),
])
def test_config_problems_name_the_key_and_the_rule(raw: object, key: str, words: str) -> None:
    with pytest.raises(config.ConfigProblem) as problem:
        config.parse(raw)
    assert problem.value.key == key
    assert str(problem.value).startswith(f"{key}: ") and words in str(problem.value)


def test_an_empty_token_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("\n")
    with pytest.raises(config.ConfigProblem, match="one token on one line"):
        config.parse({"target": "h:1", "app_id": 1, "token_file": str(tmp_path / "token")})


# -- ids --------------------------------------------------------------------------------------------------------


def test_ids_that_fit_are_kept() -> None:
    assert ids.user_key("@alice:localhost") == "@alice:localhost"
    room_v12 = "!" + "a" * 43
    assert ids.group_key(room_v12) == room_v12


def test_long_ids_become_digests_within_bounds() -> None:
    user = "@firstname.lastname:chat.example.com"
    assert len(user.encode()) > 32
    key = ids.user_key(user)
    assert key.startswith("u:") and len(key) == 32
    assert ids.user_key(user) == key  # stable
    room = "!abcdefghijklmnopqr:a-rather-long-homeserver-name.example.org"
    assert ids.group_key(room).startswith("r:") and len(ids.group_key(room)) == 45


def test_ids_with_refused_characters_become_digests() -> None:
    assert ids.user_key("@a\u200bb:x").startswith("u:")  # a zero-width space (Cf)
    assert ids.user_key("@a\x07:x").startswith("u:")
    assert ids.user_key("@a\ud800:x").startswith("u:")  # a lone surrogate is not UTF-8


@given(st.text(min_size=1, max_size=80))
def test_every_id_maps_inside_the_bounds_and_never_onto_a_kept_id(matrix_id: str) -> None:
    for key, bound in ((ids.user_key(matrix_id), 32), (ids.group_key(matrix_id), 48)):
        assert 1 <= len(key.encode()) <= bound
        assert not any(unicodedata.category(c) in {"Cc", "Cf", "Zl", "Zp"} for c in key)
        assert key == matrix_id or key[:2] in ("u:", "r:")


@given(st.text(min_size=1, max_size=80), st.text(min_size=1, max_size=80))
def test_different_ids_get_different_digests(first: str, second: str) -> None:
    if first != second:
        assert ids.user_key("@" + first + ":x" * 20) != ids.user_key("@" + second + ":x" * 20)


# -- what a createRoom body makes ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("body", "kind"), [
    ({}, RoomKind.WORK),
    ({"preset": "private_chat"}, RoomKind.WORK),
    ({"preset": "trusted_private_chat"}, RoomKind.WORK),
    ({"preset": "public_chat"}, RoomKind.PUBLIC),
    ({"visibility": "public"}, RoomKind.PUBLIC),
    ({"visibility": "public", "preset": "private_chat"}, RoomKind.WORK),
    ({"initial_state": [{"type": "m.room.join_rules", "content": {"join_rule": "public"}}]}, RoomKind.PUBLIC),
    ({"preset": "public_chat", "initial_state": [{"type": "m.room.join_rules", "state_key": "",
                                                   "content": {"join_rule": "invite"}}]}, RoomKind.WORK),
    ({"creation_content": {"type": "m.space"}, "preset": "public_chat"}, RoomKind.COMMUNITY),
    ({"is_direct": True, "creation_content": {"type": "m.space"}}, RoomKind.DIRECT),
    ({"is_direct": False}, RoomKind.WORK),
])
def test_room_kinds(body: dict[str, object], kind: RoomKind) -> None:
    assert translate.room_kind(body) is kind


def test_group_types() -> None:
    assert RoomKind.DIRECT.group_type is None
    assert RoomKind.COMMUNITY.group_type is GroupType.COMMUNITY
    assert RoomKind.PUBLIC.group_type is GroupType.PUBLIC
    assert RoomKind.WORK.group_type is GroupType.WORK


# -- events -----------------------------------------------------------------------------------------------------


def local(user: str) -> bool:
    return user.endswith(":here")


def member(target: str, membership: str, sender: str | None = None) -> translate.Event:
    return translate.Event("m.room.member", "!r", sender or target, target, membership)


def test_the_create_event_of_a_local_creator_counts_a_room() -> None:
    create = translate.Event("m.room.create", "!r", "@a:here", "", None)
    assert translate.before(create, None, None, local) == translate.CountRoom("!r", "@a:here")
    assert translate.after(create, local) == translate.RoomPersisted("!r")
    remote = translate.Event("m.room.create", "!r", "@a:there", "", None)
    assert translate.before(remote, None, None, local) is None


@pytest.mark.parametrize(("before", "expected"), [
    (None, translate.CountJoin("!r", "@b:here")),
    ("invite", translate.CountJoin("!r", "@b:here")),
    ("leave", translate.CountJoin("!r", "@b:here")),
    ("knock", translate.CountJoin("!r", "@b:here")),
    ("join", None),  # a profile change
])
def test_joins(before: str | None, expected: translate.Before | None) -> None:
    assert translate.before(member("@b:here", "join"), before, "@a:here", local) == expected


def test_the_creators_own_join_is_not_a_second_count() -> None:
    assert translate.before(member("@a:here", "join"), None, "@a:here", local) is None
    # ... but the creator's return after leaving is a join
    back = translate.before(member("@a:here", "join"), "leave", "@a:here", local)
    assert back == translate.CountJoin("!r", "@a:here")


def test_remote_members_are_not_counted() -> None:
    assert translate.before(member("@b:there", "join"), None, "@a:here", local) is None
    assert translate.after(member("@b:there", "leave"), local) is None


@pytest.mark.parametrize("membership", ["leave", "ban"])
def test_leave_kick_and_ban_release(membership: str) -> None:
    kick = member("@b:here", membership, sender="@a:here")
    assert translate.before(kick, "join", "@a:here", local) == translate.Departing("!r", "@b:here")
    assert translate.before(kick, "invite", "@a:here", local) is None  # a rejected invite held nothing
    assert translate.after(kick, local) == translate.Release("!r", "@b:here")


def test_invites_knocks_and_messages_count_nothing() -> None:
    assert translate.before(member("@b:here", "invite", sender="@a:here"), None, "@a:here", local) is None
    assert translate.before(member("@b:here", "knock"), None, "@a:here", local) is None
    message = translate.Event("m.room.message", "!r", "@a:here", None, None)
    assert translate.before(message, None, "@a:here", local) is None
    assert translate.after(message, local) is None
    assert translate.after(member("@b:here", "invite", sender="@a:here"), local) is None


# -- refusals ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("code", "limit_type"), [
    (ImCode.USER_GROUP_LIMIT, "user_group_limit"),
    (ImCode.GROUP_MEMBER_LIMIT, "group_member_limit"),
    (ImCode.GROUP_FULL, "group_member_limit"),
    (ImCode.NOT_ULTIMATE, "community_groups"),
    (ImCode.APP_DISABLED, "app_deactivated"),
    (ImCode.SERVICE_UNAVAILABLE, "service_unavailable"),
    (10021, "room_id_in_use"),
    (12345, "im_code"),
])
def test_refusals_carry_spec_fields(code: int, limit_type: str) -> None:
    result = CheckResult(code, "info", False, limit=50, current=50)
    refusal = refusals.refusal(result, app_id=7, user_id="@b:here", admin_contact="mailto:ops@example.com")
    assert refusal.fields == {"admin_contact": "mailto:ops@example.com", "limit_type": limit_type,
                              "im_code": int(code)}
    assert refusal.message


def test_refusal_messages_name_the_limit_and_its_value() -> None:
    user = refusals.refusal(CheckResult(ImCode.USER_GROUP_LIMIT, "", False, ("@b:here",), 50, 50), app_id=7,
                            user_id="@b:here", admin_contact="")
    assert "user_group_limit 50" in user.message and "@b:here" in user.message
    room = refusals.refusal(CheckResult(ImCode.GROUP_MEMBER_LIMIT, "", False, limit=20, current=20), app_id=7,
                            user_id="@b:here", admin_contact="")
    assert "group_member_limit 20" in room.message
    gone = refusals.refusal(CheckResult(ImCode.APP_DISABLED, "", False), app_id=7, user_id="@b:here",
                            admin_contact="")
    assert "app 7 is deactivated" in gone.message


# -- import: the kind a room was created as -----------------------------------------------------------------------


def event(kind: str, sender: str = "@a:here", **content: object) -> dict[str, object]:
    return {"type": kind, "sender": sender, "content": content}


def test_import_reads_the_kind_from_the_rooms_first_events() -> None:
    joined = event("m.room.member", membership="join")
    assert creation_kind([joined, event("m.room.join_rules", join_rule="public")], "@a:here", None) \
        is RoomKind.PUBLIC
    # the first join rule is the one at creation
    history = [joined, event("m.room.join_rules", join_rule="invite"), event("m.room.join_rules", join_rule="public")]
    assert creation_kind(history, "@a:here", None) is RoomKind.WORK
    assert creation_kind([joined], "@a:here", "m.space") is RoomKind.COMMUNITY
    direct = [joined, event("m.room.join_rules", join_rule="invite"),
              event("m.room.member", membership="invite", is_direct=True)]
    assert creation_kind(direct, "@a:here", None) is RoomKind.DIRECT
    # an is_direct invite from someone other than the creator is not how createRoom makes a direct chat
    assert creation_kind([joined, event("m.room.member", "@x:here", membership="invite", is_direct=True)],
                         "@a:here", None) is RoomKind.WORK
