"""A bounded flood of unauthenticated calls, run in its own process: `python tests/flood.py TARGET ...`.

Rounds of `concurrency` calls at once, each carrying `size` bytes, spread
over `connections` HTTP/2 connections. Prints one JSON line with how the
calls ended; the server's answers do not matter, only what it survives.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json

import grpc

# A real RPC: the payload reaches the server's handlers, not only gRPC's router.
METHOD = "/imlimits.v1.LimitService/JoinGroup"


async def _round(channels: list[grpc.aio.Channel], concurrency: int, payload: bytes,
                 outcomes: collections.Counter[str]) -> None:
    async def one(index: int) -> None:
        call = channels[index % len(channels)].unary_unary(METHOD)
        try:
            await call(payload, timeout=20)
            outcomes["OK"] += 1
        except grpc.aio.AioRpcError as error:
            outcomes[error.code().name] += 1

    await asyncio.gather(*(one(index) for index in range(concurrency)))


async def flood(target: str, rounds: int, concurrency: int, size: int, connections: int) -> dict[str, int]:
    # A distinct argument per channel gives each its own connection.
    channels = [grpc.aio.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1),
                                                           ("imlimits.flood_connection", index)])
                for index in range(connections)]
    outcomes: collections.Counter[str] = collections.Counter()
    payload = b"\x0a" + b"\xff" * (size - 1)
    try:
        for _ in range(rounds):
            await _round(channels, concurrency, payload, outcomes)
    finally:
        for channel in channels:
            await channel.close()
    return dict(outcomes)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("target")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--size", type=int, default=4_000_000)
    parser.add_argument("--connections", type=int, default=4)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(flood(args.target, args.rounds, args.concurrency, args.size, args.connections))))


if __name__ == "__main__":
    main()
