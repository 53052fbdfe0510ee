"""An attempt measured by bench/batch.py: the service unchanged, on uvloop's event loop instead of asyncio's."""

from __future__ import annotations

import asyncio
import sys

import uvloop

from imlimits_server.main import main

if __name__ == "__main__":
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    sys.exit(main())
