"""Which Redis connection a URL asks for."""

from __future__ import annotations

from typing import Any, Protocol

from imlimits_server.store.cluster import ClusterConnection
from imlimits_server.store.pipelined import PipelinedConnection


class Connection(Protocol):
    async def execute(self, *args: Any) -> Any: ...

    async def close(self) -> None: ...


def connect(url: str, timeout: float, max_pending: int = 10_000) -> PipelinedConnection | ClusterConnection:
    """redis+cluster://host:port[,host:port...] selects Redis Cluster; anything else is one Redis."""
    if url.startswith("redis+cluster://"):
        return ClusterConnection(url, timeout, max_pending)
    return PipelinedConnection(url, timeout, max_pending)
