"""Which Redis connection a URL asks for."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any, Protocol

from imlimits_server.store.cluster import ClusterConnection
from imlimits_server.store.pipelined import PipelinedConnection


class Connection(Protocol):
    async def execute(self, *args: Any) -> Any: ...

    async def close(self) -> None: ...


def connect(url: str, timeout: float, max_pending: int = 10_000, password: str | None = None,
            tls_ca: Path | None = None) -> PipelinedConnection | ClusterConnection:
    """redis+cluster://host:port[,host:port...] selects Redis Cluster; anything else is one Redis.

    `tls_ca` verifies a Redis served over TLS by a private CA (and makes cluster nodes use TLS).
    """
    context = ssl.create_default_context(cafile=str(tls_ca)) if tls_ca else None
    if url.startswith("redis+cluster://"):
        return ClusterConnection(url, timeout, max_pending, password, context)
    return PipelinedConnection(url, timeout, max_pending, password, context)
