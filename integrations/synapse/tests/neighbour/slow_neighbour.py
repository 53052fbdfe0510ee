"""A Synapse module for the tests, loaded before imlimits_synapse: it is slow in on_new_event for some users.

Synapse awaits each module's on_new_event in turn (notifier.py,
notify_new_room_events), so a slow module ahead of ours delays our
confirmation: the way to make a hold lapse after the join was persisted.
Joins of users whose localpart starts with `slow-`, and the create events of
rooms made by users whose localpart starts with `slowroom-`, are delayed
`seconds`; leaves of users whose localpart starts with `slowleave-`,
`leave_seconds`.
"""

from __future__ import annotations

from typing import Any

from synapse.module_api import EventBase, ModuleApi, StateMap


class SlowNeighbour:
    def __init__(self, config: dict[str, Any], api: ModuleApi) -> None:
        self._api = api
        self._seconds = float(config["seconds"])
        self._leave_seconds = float(config["leave_seconds"])
        api.register_third_party_rules_callbacks(on_new_event=self.on_new_event)

    async def on_new_event(self, event: EventBase, state: StateMap[EventBase]) -> None:
        if event.type == "m.room.create" and event.sender.startswith("@slowroom-"):
            await self._api.sleep(self._seconds)
        if event.type != "m.room.member":
            return
        user, membership = event.get_state_key() or "", event.content.get("membership")
        if membership == "join" and user.startswith("@slow-"):
            await self._api.sleep(self._seconds)
        elif membership == "leave" and user.startswith("@slowleave-"):
            await self._api.sleep(self._leave_seconds)
