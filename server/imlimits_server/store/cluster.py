"""Redis Cluster: route each command to the master of its key's slot, follow redirections.

Every key of an app shares one hash tag, so every script touches one slot and
runs unchanged. MOVED updates the slot map; ASK sends ASKING and the command
to the importing node; TRYAGAIN (a slot half-moved under a multi-key script)
and CLUSTERDOWN are retried after a pause. None of these ran the command, so
retrying is safe. A connection lost after a command was sent is not retried
here: the command may have run, and the caller decides (checks and plan
calls are idempotent or say 10025).
"""

from __future__ import annotations

import asyncio
import ssl
import time
from typing import Any
from urllib.parse import urlparse

from redis.crc import key_slot

from imlimits_server.redaction import redact
from imlimits_server.store.pipelined import ConnectionLost, NotConnected, PipelinedConnection, ReplyError

SLOTS = 16384
_KEYLESS = {"PING", "CLUSTER", "INFO"}
# Longest a slot migration may keep a command waiting before it answers UNAVAILABLE.
_MIN_RETRY_SECONDS = 2.0


class ClusterConnection:
    def __init__(self, url: str, timeout: float, max_pending: int = 10_000, password: str | None = None,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        parsed = urlparse(url)
        if parsed.scheme != "redis+cluster":
            raise ValueError(f"not a cluster url: {redact(url)!r}")
        credentials, _, hosts = parsed.netloc.rpartition("@")
        self._credentials = f"{credentials}@" if credentials else ""
        self._seeds = [host.strip() for host in hosts.split(",") if host.strip()]
        if not self._seeds:
            raise ValueError("redis+cluster:// needs at least one host:port")
        self._timeout = timeout
        self._max_pending = max_pending
        self._password = password
        self._ssl_context = ssl_context
        self._nodes: dict[str, PipelinedConnection] = {}
        self._slots: list[str | None] = [None] * SLOTS
        self._refreshing: asyncio.Task[None] | None = None

    async def execute(self, *args: Any) -> Any:
        slot = self._slot_of(args)
        if slot is not None and self._slots[slot] is None:
            await self._refresh()
        deadline = time.monotonic() + max(_MIN_RETRY_SECONDS, 4 * self._timeout)
        asking, address, pause = False, self._address(slot), 0.005
        while True:
            try:
                return await self._node(address).execute(*args, asking=asking)
            except ReplyError as error:
                kind, _, rest = str(error).partition(" ")
                if kind == "MOVED":
                    moved_slot, address = rest.split()
                    self._slots[int(moved_slot)] = address
                    asking = False
                    continue
                if kind == "ASK":
                    address, asking = rest.split()[1], True
                    continue
                if kind not in ("TRYAGAIN", "CLUSTERDOWN"):
                    raise
                retry = f"cluster answered {kind}"
            except NotConnected as error:
                retry = str(error)  # the node is gone (failover): learn the new map
                await self._refresh()
            if time.monotonic() + pause > deadline:
                raise ConnectionLost(f"redis cluster unavailable: {retry}")
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.1)
            asking, address = False, self._address(slot)

    async def close(self) -> None:
        for node in self._nodes.values():
            await node.close()

    def _slot_of(self, args: tuple[Any, ...]) -> int | None:
        command = str(args[0]).upper()
        if command in ("EVALSHA", "EVAL"):
            key = args[3] if int(args[2]) > 0 else None
        elif command in _KEYLESS:
            key = None
        else:
            key = args[1]
        return None if key is None else key_slot(str(key).encode())

    def _address(self, slot: int | None) -> str:
        if slot is not None and self._slots[slot] is not None:
            return self._slots[slot]  # type: ignore[return-value]
        known = [address for address in self._slots if address is not None]
        return known[0] if known else self._seeds[0]

    def _node(self, address: str) -> PipelinedConnection:
        if address not in self._nodes:
            scheme = "rediss" if self._ssl_context else "redis"
            self._nodes[address] = PipelinedConnection(f"{scheme}://{self._credentials}{address}/0", self._timeout,
                                                       self._max_pending, self._password, self._ssl_context)
        return self._nodes[address]

    async def _refresh(self) -> None:
        """Read the slot map from the first node that answers; concurrent callers share one refresh."""
        if self._refreshing is None or self._refreshing.done():
            self._refreshing = asyncio.ensure_future(self._read_slot_map())
        await asyncio.shield(self._refreshing)

    async def _read_slot_map(self) -> None:
        errors = []
        for address in dict.fromkeys([*self._nodes, *self._seeds]):
            try:
                ranges = await self._node(address).execute("CLUSTER", "SLOTS")
            except (ConnectionLost, ReplyError) as error:
                errors.append(f"{address}: {error}")
                continue
            slots: list[str | None] = [None] * SLOTS
            for start, end, master, *_ in ranges:
                host = master[0] or address.rpartition(":")[0]
                slots[start:end + 1] = [f"{host}:{master[1]}"] * (end - start + 1)
            self._slots = slots
            return
        raise NotConnected("no cluster node answered CLUSTER SLOTS: " + "; ".join(errors))
