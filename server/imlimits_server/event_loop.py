"""The event loop a server process runs on: uvloop by default, asyncio's own on request.

`make bench` measured both servers (the service and its no-op baseline) on
each loop in the same run: on uvloop the service spent 4-15 % less CPU per
check in every run and answered up to 16 % more checks/s (docs/capacity.md).
asyncio stays for debugging (PYTHONASYNCIODEBUG) and for platforms uvloop
does not build on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, Literal, TypeVar

import uvloop

EventLoop = Literal["uvloop", "asyncio"]
EVENT_LOOPS: tuple[EventLoop, ...] = ("uvloop", "asyncio")
DEFAULT_EVENT_LOOP: EventLoop = "uvloop"
T = TypeVar("T")


def run(main: Coroutine[Any, Any, T], loop: EventLoop) -> T:
    return uvloop.run(main) if loop == "uvloop" else asyncio.run(main)
