"""The stored form of an app's plan history (JSON), and back."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from imlimits_server.core.editions import Edition, Item, Plan
from imlimits_server.core.plans import AppState, Operation, PlanEvent


def _plan_to_list(plan: Plan) -> list[Any]:
    return [plan.edition.value, plan.av_room_unlimited, plan.user_group_limit, plan.group_member_limit]


def _plan_from_list(values: list[Any]) -> Plan:
    return Plan(Edition(values[0]), bool(values[1]), int(values[2]), int(values[3]))


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def encode_state(state: AppState) -> str:
    events = [
        {
            "at": (event.at - _EPOCH) // _MICROSECOND,
            "op": event.operation.value,
            "before": _plan_to_list(event.before),
            "after": _plan_to_list(event.after),
            "named": sorted(item.value for item in event.named),
            "rid": event.request_id,
        }
        for event in state.events
    ]
    return json.dumps({"app_id": state.app_id, "events": events}, separators=(",", ":"))


def decode_state(text: str) -> AppState:
    data = json.loads(text)
    events = tuple(
        PlanEvent(
            at=_EPOCH + raw["at"] * _MICROSECOND,
            operation=Operation(raw["op"]),
            before=_plan_from_list(raw["before"]),
            after=_plan_from_list(raw["after"]),
            named=frozenset(Item(name) for name in raw["named"]),
            request_id=raw["rid"],
        )
        for raw in data["events"]
    )
    return AppState(int(data["app_id"]), events)

