"""What one caller can make a server process hold: message size, concurrent calls, idle connections.

Each bound is derived from the contract or chosen for a stated reason, so
that memory stays bounded whoever connects (see docs/security.md).
"""

from __future__ import annotations

from imlimits.v1 import limit_pb2
from imlimits_server.service import validation

# SPEC section 4: a GroupRecord carries at most 10,000 members.
MEMBERS_PER_RECORD = 10_000
# How many full records one ImportGroupsRequest may carry; importers send more
# records as more messages of the stream.
FULL_RECORDS_PER_MESSAGE = 3
# HTTP/2 streams one connection may have open: half a process's call budget,
# so one connection cannot take all of it. A client's further calls wait on
# its side for a free stream. Not lower: a client bursting on a fresh
# connection (before it has the server's settings), or running close to the
# limit, gets streams refused (REFUSED_STREAM), which gRPC clients report as
# UNAVAILABLE; IM backends burst hundreds of checks at once on one channel.
MAX_CONCURRENT_STREAMS = 1000
# Calls one process answers at once, over all connections, health checks
# not counted (call_limits.py); past it a call is answered RESOURCE_EXHAUSTED
# at once, before its request is read. A process answers some thousands of
# checks a second, so more calls than this in flight would wait past the
# client's 200 ms check deadline anyway.
DEFAULT_MAX_CONCURRENT_RPCS = 2000
# Streaming calls (Stream, ImportGroups, ExportGroups) one caller may hold
# open on one process: a quarter of the call budget, so that a caller with
# thousands of long-lived Streams leaves calls for the others. A caller is
# its token's name (with tokens) or its address; a fleet sharing one token
# shares this bound, per replica.
DEFAULT_MAX_STREAMS_PER_CALLER = 500
# A connection with no call for this long is closed (clients reconnect on their next call).
DEFAULT_IDLE_TIMEOUT_SECONDS = 300.0
# A connection must finish its HTTP/2 (and TLS) handshake within this.
HANDSHAKE_TIMEOUT_MS = 10_000
# Ping a connection silent for this long and drop it if the ping is not answered:
# a vanished peer must not hold its streams forever.
KEEPALIVE_TIME_MS = 60_000
KEEPALIVE_TIMEOUT_MS = 20_000


def _largest_record() -> limit_pb2.GroupRecord:
    return limit_pb2.GroupRecord(
        group_id="g" * validation.GROUP_ID_MAX_BYTES, type=max(limit_pb2.GroupType.values()),
        owner="o" * validation.USER_ID_MAX_BYTES,
        members=[f"{index:0{validation.USER_ID_MAX_BYTES}d}" for index in range(MEMBERS_PER_RECORD)],
        max_members=2**32 - 1)


def largest_import_message_bytes() -> int:
    """The encoded size of the largest valid ImportGroupsRequest: every field at its bound."""
    record = _largest_record()
    request = limit_pb2.ImportGroupsRequest(app_id=2**64 - 1, groups=[record] * FULL_RECORDS_PER_MESSAGE,
                                            replace=True)
    return int(request.ByteSize())


# The largest valid request is an import message (about 1 MB); anything
# bigger is refused with RESOURCE_EXHAUSTED before it is buffered whole.
MAX_RECEIVE_MESSAGE_BYTES = largest_import_message_bytes()


def server_options(idle_timeout: float) -> list[tuple[str, int]]:
    return [
        ("grpc.max_receive_message_length", MAX_RECEIVE_MESSAGE_BYTES),
        ("grpc.max_concurrent_streams", MAX_CONCURRENT_STREAMS),
        ("grpc.max_connection_idle_ms", int(idle_timeout * 1000)),
        ("grpc.server_handshake_timeout_ms", HANDSHAKE_TIMEOUT_MS),
        ("grpc.keepalive_time_ms", KEEPALIVE_TIME_MS),
        ("grpc.keepalive_timeout_ms", KEEPALIVE_TIMEOUT_MS),
        ("grpc.http2.bdp_probe", 0),
    ]
