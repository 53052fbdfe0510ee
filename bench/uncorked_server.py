"""An attempt measured by bench/batch.py: the service writing each Redis command at once.

As shipped, commands sent in one turn of the event loop leave in one write
(store/pipelined.py). This server writes each as it is sent, as the service
did before: the comparison shows what corking costs a unary check (a lone
command per turn) and what it saves a Batch (one script call per app).
"""

from __future__ import annotations

import sys

from imlimits_server.main import main
from imlimits_server.store import pipelined


def _send_at_once(self: pipelined._RedisProtocol, command: bytes) -> None:
    assert self.transport is not None
    self.transport.write(command)


if __name__ == "__main__":
    pipelined._RedisProtocol.send = _send_at_once  # type: ignore[method-assign]
    sys.exit(main())
