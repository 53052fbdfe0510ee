"""A Synapse module that registers the callbacks imlimits_synapse registers, and does nothing in them.

For `make bench-synapse`: Synapse does work of its own for each registered
callback (it loads the state before an event for check_event_allowed, and the
current state after it for on_new_event), so this homeserver shows what
Synapse spends on that, apart from what the module's calls to imlimits add.
"""

from __future__ import annotations

from typing import Any

from synapse.module_api import EventBase, ModuleApi, Requester, StateMap


class IdleCallbacks:
    def __init__(self, config: dict[str, Any], api: ModuleApi) -> None:
        api.register_third_party_rules_callbacks(
            on_create_room=self.on_create_room, check_event_allowed=self.check_event_allowed,
            on_new_event=self.on_new_event, check_can_shutdown_room=self.check_can_shutdown_room)

    async def on_create_room(self, requester: Requester, body: dict[str, Any], is_requester_admin: bool) -> None:
        return None

    async def check_event_allowed(self, event: EventBase, state: StateMap[EventBase]) -> tuple[bool, None]:
        return True, None

    async def on_new_event(self, event: EventBase, state: StateMap[EventBase]) -> None:
        return None

    async def check_can_shutdown_room(self, user_id: str | None, room_id: str) -> bool:
        return True
