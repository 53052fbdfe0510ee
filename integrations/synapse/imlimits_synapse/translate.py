"""Synapse's events as imlimits checks: the one place where a room, a join or a leave becomes a check.

What Synapse calls, and when (read in matrix-synapse 1.163.2, and seen in the
tests' homeservers; paths are under synapse/):

- createRoom (handlers/room.py, RoomCreationHandler.create_room) calls
  `on_create_room(requester, config, is_requester_admin)` first, with the
  request body and for admins too, but before any room id exists. Then, for
  everyone but server admins, `user_may_create_room`. Then it builds the
  `m.room.create` event, and only there is the room id known: for room
  version 12 (Synapse's default) the id is the event's hash
  (`_generate_create_event_for_room_id`, which retries up to five times with
  another timestamp when the id is taken). Every event Synapse builds for a
  local client goes through `check_event_allowed(event, state_before)`
  (handlers/message.py, EventCreationHandler.create_new_client_event) before
  Synapse's own event auth, so an event it admits may still be refused.
- The creator's join follows the create event (`_send_events_for_new_room`)
  and skips `user_may_join_room` (handlers/room_member.py,
  update_membership_locked: `not new_room`); `check_event_allowed` sees it,
  with only the create event in the state before it.
- The room's join rule and the invites of a direct chat (`is_direct`) come
  after the create event; the preset decides the join rule
  (`_room_preset_config`: `public_chat`, the default for `visibility: public`,
  is the public join rule). So the kind of a room is read from the createRoom
  body in `on_create_room`, and carried to its create event in a context
  variable: Twisted runs the request's coroutines in one contextvars context
  (the tests check that every kind of room is recognised).
- `user_may_join_room` is skipped for server admins and the server notices
  user, and is also called for a profile change (a join over a join);
  `check_event_allowed` sees every local membership event. Over federation it
  sees only knocks (handlers/federation_event.py, on_send_membership_event):
  members of other homeservers never pass through it, and are not counted.
- `on_new_event(event, state_after)` runs after the event is persisted, in
  the background (handlers/message.py, persist_and_notify_client_events runs
  `_notify` with run_in_background; notifier.py, notify_new_room_events
  awaits each module in turn before waking /sync): the client's 200 may come
  first, and a slow callback delays every room's /sync. Its events carry no
  prev_content; `unsigned.replaces_state` names the event replaced.
- A leave, a kick (a leave sent by someone else) and a ban arrive as
  `m.room.member` events with membership `leave` or `ban`. A rejected invite
  is a leave too.
- DELETE /_synapse/admin/v2/rooms/{room} calls `check_can_shutdown_room`
  twice: in the servlet (rest/admin/rooms.py, RoomRestV2Servlet.on_DELETE)
  and again in the task (handlers/room.py, RoomShutdownHandler.shutdown_room),
  which then makes each local member leave. Nothing fires on purge.

So: the create event creates the group (room id = group id, creator = owner);
a local user's join, from any membership but join, is a JoinGroup; a local
user's leave or ban, once persisted, is a LeaveGroup; a shutdown destroys the
group. Server admins are counted and limited like everyone (docs/synapse.md).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from imlimits_client import GroupType


class RoomKind(enum.Enum):
    DIRECT = "direct chat"  # not counted
    COMMUNITY = "space"
    PUBLIC = "public room"
    WORK = "room"

    @property
    def group_type(self) -> GroupType | None:
        return _GROUP_TYPES.get(self)


_GROUP_TYPES = {RoomKind.COMMUNITY: GroupType.COMMUNITY, RoomKind.PUBLIC: GroupType.PUBLIC,
                RoomKind.WORK: GroupType.WORK}


def room_kind(create_room_body: Mapping[str, object]) -> RoomKind:
    """The kind of the room a createRoom body makes, in the order SPEC 7 gives: direct, space, public, other."""
    if create_room_body.get("is_direct"):
        return RoomKind.DIRECT
    creation_content = create_room_body.get("creation_content")
    if isinstance(creation_content, Mapping) and creation_content.get("type") == "m.space":
        return RoomKind.COMMUNITY
    return RoomKind.PUBLIC if _join_rule(create_room_body) == "public" else RoomKind.WORK


def _join_rule(body: Mapping[str, object]) -> object:
    initial_state = body.get("initial_state")
    for entry in initial_state if isinstance(initial_state, list) else ():
        if isinstance(entry, Mapping) and entry.get("type") == "m.room.join_rules" and not entry.get("state_key"):
            content = entry.get("content")
            return content.get("join_rule") if isinstance(content, Mapping) else None
    # handlers/room.py, _room_preset_config: the preset, else private_chat unless visibility is public.
    preset = body.get("preset", "private_chat" if body.get("visibility", "private") == "private" else "public_chat")
    return "public" if preset == "public_chat" else "invite"


def kind_of(room_type: object, join_rule: object) -> RoomKind:
    """A room known by its state rather than a createRoom body: its create type and its join rule."""
    if room_type == "m.space":
        return RoomKind.COMMUNITY
    return RoomKind.PUBLIC if join_rule == "public" else RoomKind.WORK


@dataclass(frozen=True)
class CountRoom:
    """A room is being created: CreateGroup with its creator as owner, held until the create event persists."""

    room_id: str
    creator: str


@dataclass(frozen=True)
class CountJoin:
    """A local user joins: JoinGroup, held until the join persists."""

    room_id: str
    user: str


@dataclass(frozen=True)
class Departing:
    """A local member leaves or is removed: the release follows once the event persists."""

    room_id: str
    user: str


@dataclass(frozen=True)
class RoomPersisted:
    room_id: str


@dataclass(frozen=True)
class JoinPersisted:
    room_id: str
    user: str


@dataclass(frozen=True)
class Release:
    room_id: str
    user: str


Before = CountRoom | CountJoin | Departing
After = RoomPersisted | JoinPersisted | Release


@dataclass(frozen=True)
class Event:
    """What the translation reads of a Synapse event."""

    type: str
    room_id: str
    sender: str
    state_key: str | None
    membership: object  # content.membership, for m.room.member


def before(event: Event, membership_before: str | None, room_creator: str | None,
           is_local: Callable[[str], bool]) -> Before | None:
    """What `check_event_allowed` must check; `membership_before` and `room_creator` come from the state before."""
    if event.type == "m.room.create" and event.state_key == "":
        return CountRoom(event.room_id, event.sender) if is_local(event.sender) else None
    if event.type != "m.room.member" or event.state_key is None or not is_local(event.state_key):
        return None
    user = event.state_key
    if event.membership == "join":
        if membership_before == "join":
            return None  # a profile change, not a join
        if membership_before is None and user == room_creator:
            return None  # the creator's join at creation: CreateGroup made the owner a member
        return CountJoin(event.room_id, user)
    if event.membership in ("leave", "ban") and membership_before == "join":
        return Departing(event.room_id, user)
    return None


def after(event: Event, is_local: Callable[[str], bool]) -> After | None:
    """What `on_new_event` must do once the event is persisted."""
    if event.type == "m.room.create" and event.state_key == "":
        return RoomPersisted(event.room_id) if is_local(event.sender) else None
    if event.type != "m.room.member" or event.state_key is None or not is_local(event.state_key):
        return None
    if event.membership == "join":
        return JoinPersisted(event.room_id, event.state_key)
    if event.membership in ("leave", "ban"):
        return Release(event.room_id, event.state_key)
    return None
