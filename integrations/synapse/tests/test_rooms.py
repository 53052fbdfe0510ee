"""Rooms, joins and departures through the Matrix client-server API, counted by a real imlimits server."""

from __future__ import annotations

import time

from homeserver import quote
from imlimits_client import GroupType, NotFound
from imlimits_synapse.ids import user_key
from sites import SLOW_LEAVE_SECONDS, Site, confirmed, eventually, fill, group_type, members, rooms_of


def test_a_room_is_a_group_owned_by_its_creator(deny: Site) -> None:
    alice = deny.user("alice")
    room_id = alice.create_room(name="team").expect(200)["room_id"]
    assert members(deny, room_id) == 1
    assert rooms_of(deny, alice) == 1
    assert group_type(deny, room_id) is GroupType.WORK
    public = alice.create_room(preset="public_chat").expect(200)["room_id"]
    assert group_type(deny, public) is GroupType.PUBLIC
    listed = alice.create_room(visibility="public").expect(200)["room_id"]  # the preset follows the visibility
    assert group_type(deny, listed) is GroupType.PUBLIC
    assert rooms_of(deny, alice) == 3
    # Held at the create event, confirmed once Synapse persisted it.
    eventually(lambda: all(confirmed(deny, room) for room in (room_id, public, listed)), 10, "creations confirmed")


def test_joins_count_and_the_21st_member_of_a_trial_room_is_refused(deny: Site) -> None:
    owner = deny.user("owner")
    room_id = owner.create_room(preset="public_chat").expect(200)["room_id"]
    fill(deny, room_id, 19)
    assert members(deny, room_id) == 20
    eventually(lambda: confirmed(deny, room_id), 10, "every join confirmed")
    late = deny.user("late")
    refused = late.join(room_id)
    assert refused.status == 403
    body = refused.json()
    assert body["errcode"] == "M_RESOURCE_LIMIT_EXCEEDED"
    assert body["limit_type"] == "group_member_limit"
    assert body["im_code"] == 10038
    assert body["admin_contact"] == "mailto:ops@example.com"
    assert "20" in body["error"] and "group_member_limit" in body["error"]
    assert late.user_id not in owner.joined_members(room_id)
    assert members(deny, room_id) == 20
    assert rooms_of(deny, late) == 0


def test_a_profile_change_is_not_a_join(deny: Site) -> None:
    owner = deny.user("owner")
    room_id = owner.create_room(preset="public_chat").expect(200)["room_id"]
    fill(deny, room_id, 19)
    # Synapse sends a join over the join into every room: a full room must not refuse it.
    owner.call("PUT", f"/_matrix/client/v3/profile/{quote(owner.user_id)}/displayname",
               {"displayname": "The Owner"}).expect(200)
    assert members(deny, room_id) == 20


def test_leave_kick_and_ban_release_the_membership(deny: Site) -> None:
    owner = deny.user("owner")
    room_id = owner.create_room(preset="public_chat").expect(200)["room_id"]
    leaver, kicked, banned = fill(deny, room_id, 3)
    assert members(deny, room_id) == 4
    leaver.leave(room_id).expect(200)
    owner.kick(room_id, kicked.user_id).expect(200)
    owner.ban(room_id, banned.user_id).expect(200)
    eventually(lambda: members(deny, room_id) == 1, 10, "three releases")
    for user in (leaver, kicked, banned):
        assert rooms_of(deny, user) == 0
    kicked.join(room_id).expect(200)  # a kicked user may come back, and counts again
    assert members(deny, room_id) == 2
    assert banned.join(room_id).status == 403  # Synapse refuses the banned
    eventually(lambda: members(deny, room_id) == 2, 10, "the banned user's refused join released")


def test_a_rejoin_before_the_leave_is_released_is_counted_once(deny: Site) -> None:
    owner = deny.user("owner")
    room_id = owner.create_room(preset="public_chat").expect(200)["room_id"]
    user = deny.user("slowleave")  # the module hears of this user's leaves late (sites.py)
    user.join(room_id).expect(200)
    user.leave(room_id).expect(200)
    user.join(room_id).expect(200)  # before the leave's on_new_event
    settled = time.monotonic() + SLOW_LEAVE_SECONDS + 2
    eventually(lambda: time.monotonic() > settled and confirmed(deny, room_id), 10, "the late leave handled")
    assert members(deny, room_id) == 2 and rooms_of(deny, user) == 1
    user.leave(room_id).expect(200)
    eventually(lambda: members(deny, room_id) == 1 and rooms_of(deny, user) == 0, 10, "released")


def test_a_direct_chat_is_not_counted(deny: Site) -> None:
    alice, bob = deny.users(2, "dm")
    room_id = alice.create_room(is_direct=True, preset="trusted_private_chat", invite=[bob.user_id])
    room_id = room_id.expect(200)["room_id"]
    bob.join(room_id).expect(200)
    try:
        members(deny, room_id)
        raise AssertionError("a direct chat became a group")
    except NotFound:
        pass
    assert rooms_of(deny, alice) == 0 and rooms_of(deny, bob) == 0


def test_a_space_needs_ultimate(deny: Site, allow: Site) -> None:
    refused = deny.user("spacer").create_room(creation_content={"type": "m.space"})
    assert refused.status == 403
    assert refused.json()["limit_type"] == "community_groups"
    assert refused.json()["im_code"] == 10059
    space = allow.user("spacer").create_room(creation_content={"type": "m.space"}).expect(200)["room_id"]
    assert group_type(allow, space) is GroupType.COMMUNITY


def test_server_admins_are_counted_and_limited(deny: Site) -> None:
    owner = deny.user("owner")
    room_id = owner.create_room(preset="public_chat").expect(200)["room_id"]
    fill(deny, room_id, 19)
    admin = deny.user("admin", admin=True)
    refused = admin.join(room_id)
    assert refused.status == 403 and refused.json()["limit_type"] == "group_member_limit"
    # The admin join API is a join like any other.
    joiner = deny.user("joiner")
    through_api = admin.call("POST", f"/_synapse/admin/v1/join/{quote(room_id)}", {"user_id": joiner.user_id})
    assert through_api.status == 403 and through_api.json()["limit_type"] == "group_member_limit"
    own = admin.create_room().expect(200)["room_id"]
    assert members(deny, own) == 1 and rooms_of(deny, admin) == 1


def test_admin_delete_destroys_the_group(deny: Site) -> None:
    owner = deny.user("owner")
    room_id = owner.create_room(preset="public_chat").expect(200)["room_id"]
    [member] = fill(deny, room_id, 1)
    admin = deny.user("admin", admin=True)
    admin.call("DELETE", f"/_synapse/admin/v2/rooms/{quote(room_id)}", {"purge": True}).expect(200)

    def destroyed() -> bool:
        try:
            members(deny, room_id)
        except NotFound:
            return True
        return False

    eventually(destroyed, 10, "the group destroyed")
    eventually(lambda: rooms_of(deny, owner) == 0 and rooms_of(deny, member) == 0, 10, "memberships released")


def test_an_upgraded_room_is_a_new_group_of_the_same_kind(deny: Site) -> None:
    owner = deny.user("owner")
    old = owner.create_room(preset="public_chat", room_version="11").expect(200)["room_id"]
    new = owner.call("POST", f"/_matrix/client/v3/rooms/{quote(old)}/upgrade", {"new_version": "12"})
    new_id = new.expect(200)["replacement_room"]
    assert group_type(deny, new_id) is GroupType.PUBLIC
    assert members(deny, new_id) == 1 and rooms_of(deny, owner) == 2


def test_a_user_at_their_room_limit_cannot_create_a_room(deny: Site) -> None:
    busy = deny.user("busy")
    for number in range(50):  # TRIAL: 50 rooms per user, counted here directly, as other servers of the app would
        deny.client.check.create_group(deny.app_id, f"elsewhere-{number}-{busy.user_id}"[:48], GroupType.WORK,
                                       owner=user_key(busy.user_id))
    alias = f"kept-{busy.user_id[1:].split(':')[0]}"
    refused = busy.create_room(room_alias_name=alias)
    assert refused.status == 403
    body = refused.json()
    assert body["errcode"] == "M_RESOURCE_LIMIT_EXCEEDED" and body["limit_type"] == "user_group_limit"
    assert body["im_code"] == 10037 and "user_group_limit 50" in body["error"] and busy.user_id in body["error"]
    assert busy.call("GET", "/_matrix/client/v3/joined_rooms").expect(200)["joined_rooms"] == []
    # Refused before Synapse wrote anything: the alias is still free.
    assert busy.call("GET", f"/_matrix/client/v3/directory/room/{quote('#' + alias + ':localhost')}").status == 404
    assert rooms_of(deny, busy) == 50
