"""Onboarding: a homeserver's rooms and their joined local members, read through Synapse's admin API.

The records follow the module's mapping exactly (translate.py), from what
the room's history says about its creation: the creator (a local user) owns
it; the first join rule decides Public or Work, the create event's type a
space; an invite with `is_direct` from the creator marks a direct chat, which
is not counted. Rooms created on other homeservers are not groups. Members are
the room's joined local users now; the owner is named only while joined, since
imlimits makes the owner a member.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from imlimits_client import GroupRecord
from imlimits_synapse.ids import group_key, user_key
from imlimits_synapse.translate import RoomKind, kind_of

ROOMS_PAGE = 500
# Creation events come first in a room's history: its create event, the creator's join, the initial state
# (join rule included) and then the invites of createRoom. This many member and join-rule events cover them.
CREATION_EVENTS = 50


class AdminApiError(RuntimeError):
    """Synapse's admin API answered an error, or could not be reached; the message says which call."""


@dataclass(frozen=True)
class Room:
    room_id: str
    kind: RoomKind
    creator: str
    members: tuple[str, ...]  # joined local users, Matrix ids

    def record(self) -> GroupRecord:
        group_type = self.kind.group_type
        assert group_type is not None, "direct chats are not imported"
        owner = self.creator if self.creator in self.members else ""
        return GroupRecord(group_key(self.room_id), group_type, user_key(owner) if owner else "",
                           tuple(user_key(member) for member in self.members if member != owner))


class AdminApi:
    """Synapse's client and admin APIs over HTTP with a server admin's access token."""

    def __init__(self, homeserver: str, token: str, timeout: float = 30.0) -> None:
        self._base = homeserver.rstrip("/")
        self._token = token
        self._timeout = timeout

    def get(self, path: str, query: Mapping[str, Any] | None = None) -> Any:
        url = self._base + path + ("?" + urllib.parse.urlencode(query) if query else "")
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {self._token}"})
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            detail = error.read().decode(errors="replace")
            raise AdminApiError(f"GET {path}: HTTP {error.code} {detail}") from None
        except (OSError, ValueError) as error:
            raise AdminApiError(f"GET {path}: {error}") from None

    def server_name(self) -> str:
        """The homeserver's name, from the admin's own user id (@admin:NAME)."""
        user_id: str = self.get("/_matrix/client/v3/account/whoami")["user_id"]
        return user_id.split(":", 1)[1]


def rooms(api: AdminApi) -> Iterator[Room]:
    """Every room created by a local user that is not a direct chat, each once."""
    server = api.server_name()
    seen: set[str] = set()
    offset: int | None = 0
    while offset is not None:
        page = api.get("/_synapse/admin/v1/rooms", {"from": offset, "limit": ROOMS_PAGE, "order_by": "creator"})
        for entry in page["rooms"]:
            room_id, creator = entry["room_id"], entry.get("creator") or ""
            if room_id in seen or not _is_local(creator, server):
                continue
            seen.add(room_id)
            room = _room(api, room_id, creator, entry.get("room_type"), server)
            if room is not None and room.kind is not RoomKind.DIRECT:
                yield room
        offset = page.get("next_batch")


def _room(api: AdminApi, room_id: str, creator: str, room_type: object, server: str) -> Room | None:
    quoted = urllib.parse.quote(room_id, safe="")
    try:
        joined = api.get(f"/_synapse/admin/v1/rooms/{quoted}/members")["members"]
        history = api.get(f"/_synapse/admin/v1/rooms/{quoted}/messages",
                          {"dir": "f", "limit": CREATION_EVENTS,
                           "filter": json.dumps({"types": ["m.room.join_rules", "m.room.member"]})})["chunk"]
    except AdminApiError as error:
        if "HTTP 404" in str(error):
            return None  # deleted while we read
        raise
    return Room(room_id, creation_kind(history, creator, room_type),
                creator, tuple(sorted(user for user in joined if _is_local(user, server))))


def creation_kind(history: list[dict[str, Any]], creator: str, room_type: object) -> RoomKind:
    """The kind the module gave the room when it was created, from its first events."""
    first_join_rule = None
    for event in history:
        content = event.get("content") or {}
        if event.get("type") == "m.room.member" and content.get("membership") == "invite" \
                and content.get("is_direct") and event.get("sender") == creator:
            return RoomKind.DIRECT
        if event.get("type") == "m.room.join_rules" and first_join_rule is None:
            first_join_rule = content.get("join_rule")
    return kind_of(room_type, first_join_rule)


def _is_local(user_id: str, server: str) -> bool:
    return user_id.startswith("@") and user_id.partition(":")[2] == server
