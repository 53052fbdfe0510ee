"""An attempt measured by bench/batch.py: the service with its Redis writes corked for one loop turn.

Commands issued in the same turn of the event loop (the checks of many
concurrent calls) leave in one send() instead of one each.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from imlimits_server.main import main
from imlimits_server.store import pipelined


class CorkedTransport:
    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._chunks: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not self._chunks:
            asyncio.get_running_loop().call_soon(self._flush)
        self._chunks.append(data)

    def _flush(self) -> None:
        chunks, self._chunks = self._chunks, []
        if not self._transport.is_closing():
            self._transport.write(b"".join(chunks))

    def abort(self) -> None:
        self._transport.abort()


def _connection_made(self: Any, transport: asyncio.BaseTransport) -> None:
    self.transport = CorkedTransport(transport)  # type: ignore[arg-type]


if __name__ == "__main__":
    pipelined._RedisProtocol.connection_made = _connection_made  # type: ignore[method-assign]
    sys.exit(main())
