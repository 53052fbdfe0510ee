"""imlimits stopped or hung under each on_unavailable policy: the Matrix client has its answer within 2 s."""

from __future__ import annotations

from homeserver import Answer, Matrix, quote
from sites import HOLD_SECONDS, Site, eventually, imlimits_down, members, rooms_of

# SPEC section 7: under either policy the client has its answer within 2 seconds.
ANSWER_WITHIN = 2.0


def answered_in_time(answer: Answer) -> Answer:
    assert answer.seconds < ANSWER_WITHIN, f"answered after {answer.seconds:.2f} s: {answer.body!r}"
    return answer


def until_counted_again(site: Site, user: Matrix, room_id: str) -> None:
    """After an outage the channel reconnects with backoff: joins are counted again soon, not at once."""
    def joined() -> bool:
        answer = user.join(room_id)
        return answer.status == 200

    eventually(joined, 30, "imlimits answering again")


def test_deny_refuses_within_2s_while_imlimits_is_stopped_or_hung(deny: Site) -> None:
    owner = deny.user("owner")
    room_id = owner.create_room(preset="public_chat").expect(200)["room_id"]
    for how in ("stopped", "paused"):
        joiner, creator = deny.user("joiner"), deny.user("creator")
        with imlimits_down(deny, how):
            refused = answered_in_time(joiner.join(room_id))
            assert refused.status == 403, how
            assert refused.json()["errcode"] == "M_RESOURCE_LIMIT_EXCEEDED"
            assert refused.json()["limit_type"] == "service_unavailable"
            assert refused.json()["im_code"] == -1
            assert answered_in_time(creator.create_room()).status == 403, how
            # Neither messages nor profile changes (a join over a join, in every room) ask imlimits.
            owner.send(room_id, "messages do not ask imlimits").expect(200)
            owner.call("PUT", f"/_matrix/client/v3/profile/{quote(owner.user_id)}/displayname",
                       {"displayname": f"Owner ({how})"}).expect(200)
            member = f"/_matrix/client/v3/rooms/{quote(room_id)}/state/m.room.member/{quote(owner.user_id)}"
            eventually(lambda: owner.call("GET", member).json().get("displayname") == f"Owner ({how})",  # noqa: B023
                       10, "the room's join event with the new name")
        assert joiner.user_id not in owner.joined_members(room_id)
        until_counted_again(deny, joiner, room_id)
    assert members(deny, room_id) == 3


def test_allow_admits_uncounted_within_2s_while_imlimits_is_stopped_or_hung(allow: Site) -> None:
    owner = allow.user("owner")
    room_id = owner.create_room(preset="public_chat").expect(200)["room_id"]
    for how in ("stopped", "paused"):
        joiner, creator = allow.user("joiner"), allow.user("creator")
        with imlimits_down(allow, how):
            answered_in_time(joiner.join(room_id)).expect(200)
            answered_in_time(creator.create_room()).expect(200)
        assert joiner.user_id in owner.joined_members(room_id)
        # Admitted, not counted. A hung imlimits still runs the checks it had queued once it wakes up: they were
        # held and are never confirmed, so they expire.
        def uncounted(joiner: Matrix = joiner, creator: Matrix = creator) -> bool:
            return rooms_of(allow, joiner) == 0 and rooms_of(allow, creator) == 0

        eventually(uncounted, HOLD_SECONDS + 2, f"nothing counted ({how})")
    assert members(allow, room_id) == 1
