"""SPEC section 3: a request whose bytes do not parse is INVALID_ARGUMENT, never UNKNOWN or INTERNAL.

Raw bytes go over a real channel with identity serializers, to every RPC the
protos declare (unary and streaming, served or not yet), and to health
checking: corrupt framing inside a well-formed gRPC message, and a string field
that is not UTF-8, for every string field a request can carry, nested ones
included. The answer names the problem.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import grpc
import pytest
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor
from google.protobuf.message import DecodeError, Message
from google.protobuf.symbol_database import Default as default_symbols

from harness import ServerProcess
from imlimits.v1 import limit_pb2, limit_pb2_grpc, plan_pb2
from imlimits_server.main import create_grpc_server

METHODS: list[MethodDescriptor] = [
    method
    for file in (plan_pb2.DESCRIPTOR, limit_pb2.DESCRIPTOR)
    for service in file.services_by_name.values()
    for method in service.methods
]

# Wire-format faults, each with what the answer must name.
CORRUPT_FRAMING = [
    (b"\xff", "field key: truncated varint"),
    (b"\x08\xff\xff", "truncated varint"),
    (b"\x12\x05ab", "runs past the end"),
    (b"\x0f", "invalid wire type 7"),
    (b"\x00", "field number 0"),
    (b"\x08" + b"\x80" * 10 + b"\x01", "varint longer than 10 bytes"),
    (b"\x0d\x01\x02", "truncated fixed-width value"),
]
# 0xff never appears in UTF-8; ED A0 80 is a UTF-16 surrogate; C0 AF an overlong "/".
NOT_UTF8 = [b"\xff", b"ok\xed\xa0\x80", b"\xc0\xaf"]


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _length_delimited(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def string_fields(message: Descriptor, path: str = "", depth: int = 0) -> Iterator[tuple[str, list[int]]]:
    """Every string field reachable from `message`: its path as the answer names it, and the field numbers to it."""
    for field in message.fields:
        name = f"{path}{field.name}" + ("[0]" if field.is_repeated else "")
        if field.type == FieldDescriptor.TYPE_STRING:
            yield name, [field.number]
        elif field.type == FieldDescriptor.TYPE_MESSAGE and field.message_type is not None and depth < 3:
            for inner, numbers in string_fields(field.message_type, f"{name}.", depth + 1):
                yield inner, [field.number, *numbers]


def with_bad_string(numbers: list[int], bad: bytes) -> bytes:
    payload = bad
    for number in reversed(numbers):
        payload = _length_delimited(number, payload)
    return payload


def message_class(descriptor: Descriptor) -> type[Message]:
    return default_symbols().GetSymbol(descriptor.full_name)


def call(channel: grpc.Channel, method: MethodDescriptor, raw: bytes) -> tuple[grpc.StatusCode, str]:
    """One call with `raw` as the request (the only message of a stream); identity serializers send it as is."""
    path = f"/{method.containing_service.full_name}/{method.name}"
    try:
        if method.client_streaming and method.server_streaming:
            list(channel.stream_stream(path)(iter([raw]), timeout=10))
        elif method.client_streaming:
            channel.stream_unary(path)(iter([raw]), timeout=10)
        elif method.server_streaming:
            list(channel.unary_stream(path)(raw, timeout=10))
        else:
            channel.unary_unary(path)(raw, timeout=10)
    except grpc.RpcError as error:
        return error.code(), error.details() or ""
    return grpc.StatusCode.OK, ""


def assert_invalid_argument(channel: grpc.Channel, method: MethodDescriptor, raw: bytes, named: str) -> None:
    status, details = call(channel, method, raw)
    if status is grpc.StatusCode.UNIMPLEMENTED:
        # A placeholder that never reads its request stream answers before any byte is decoded; once the
        # RPC is served, it must read, and then this rule applies to it.
        assert call(channel, method, b"")[0] is grpc.StatusCode.UNIMPLEMENTED, (method.name, details)
        assert method.client_streaming, (method.name, details)
        return
    assert status is grpc.StatusCode.INVALID_ARGUMENT, (method.full_name, raw, status, details)
    assert method.input_type.full_name in details and named in details, (method.full_name, raw, details)


def test_every_rpc_is_covered() -> None:
    names = {method.name for method in METHODS}
    assert {"CreateApp", "ChangePlan", "GetBill", "JoinGroup", "DestroyGroup", "Batch", "Stream", "ImportGroups",
            "ExportGroups", "ListApps", "PreviewPlanChange"} <= names


@pytest.mark.parametrize("method", METHODS, ids=lambda method: method.name)
def test_corrupt_framing_is_invalid_argument(server: ServerProcess, channel: grpc.Channel,
                                             method: MethodDescriptor) -> None:
    for raw, named in CORRUPT_FRAMING:
        with pytest.raises(DecodeError):
            message_class(method.input_type).FromString(raw)
        assert_invalid_argument(channel, method, raw, named)
    assert server.process is not None and server.process.poll() is None


@pytest.mark.parametrize("method", METHODS, ids=lambda method: method.name)
def test_a_string_that_is_not_utf8_is_invalid_argument(channel: grpc.Channel, method: MethodDescriptor) -> None:
    fields = list(string_fields(method.input_type))
    for path, numbers in fields:
        for bad in NOT_UTF8:
            raw = with_bad_string(numbers, bad)
            with pytest.raises(DecodeError):
                message_class(method.input_type).FromString(raw)
            assert_invalid_argument(channel, method, raw, f"{path}: not valid UTF-8")


def test_the_requests_that_carry_strings_are_all_reached() -> None:
    fields = {method.name: [path for path, _ in string_fields(method.input_type)] for method in METHODS}
    assert fields["JoinGroup"] == ["group_id", "users[0]", "request_id"]
    assert fields["ConfirmHold"] == fields["CancelHold"] == ["hold_id"]
    assert "confirm_hold.hold_id" in fields["Stream"]
    assert "checks[0].join_group.users[0]" in fields["Batch"]
    assert "join_group.users[0]" in fields["Stream"]
    assert "groups[0].members[0]" in fields["ImportGroups"]


def test_health_checking_answers_invalid_argument_too(channel: grpc.Channel) -> None:
    path = "/grpc.health.v1.Health/Check"
    with pytest.raises(grpc.RpcError) as caught:
        channel.unary_unary(path)(_length_delimited(1, b"\xff"), timeout=10)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "service: not valid UTF-8" in (caught.value.details() or "")


class _ReadingLimits(limit_pb2_grpc.LimitServiceServicer):
    """Streaming handlers that read their requests both ways grpc offers: an iterator, and context.read()."""

    async def Stream(self, request_iterator: AsyncIterator[limit_pb2.Check],
                     context: grpc.aio.ServicerContext) -> AsyncIterator[limit_pb2.CheckResult]:
        async for check in request_iterator:
            yield limit_pb2.CheckResult(check=limit_pb2.CheckResponse(info=check.WhichOneof("kind") or ""))

    async def ImportGroups(self, request_iterator: AsyncIterator[limit_pb2.ImportGroupsRequest],
                           context: grpc.aio.ServicerContext) -> limit_pb2.ImportGroupsResponse:
        groups = 0
        while (request := await context.read()) is not grpc.aio.EOF:
            groups += len(request.groups)
        return limit_pb2.ImportGroupsResponse(groups_created=groups)


def test_a_bad_message_in_the_middle_of_a_stream_is_invalid_argument() -> None:
    good_check = limit_pb2.Check(join_group=limit_pb2.JoinGroupRequest(app_id=1, group_id="g", users=["a"]))
    bad_check = with_bad_string([3, 3], b"\xff")  # Check.join_group.users[0]
    good_import = limit_pb2.ImportGroupsRequest(app_id=1, groups=[limit_pb2.GroupRecord(group_id="g")])
    bad_import = with_bad_string([2, 4], b"\xff")  # ImportGroupsRequest.groups[0].members[0]

    async def scenario() -> None:
        server = create_grpc_server()
        # Only the two streaming methods are served here; the others stay unimplemented.
        limit_pb2_grpc.add_LimitServiceServicer_to_server(_ReadingLimits(), server)  # type: ignore[abstract]
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                stream = channel.stream_stream("/imlimits.v1.LimitService/Stream")(
                    iter([good_check.SerializeToString(), bad_check]), timeout=10)
                first = limit_pb2.CheckResult.FromString(await stream.read())
                assert first.check.info == "join_group"
                with pytest.raises(grpc.aio.AioRpcError) as caught:
                    await stream.read()
                assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
                assert "join_group.users[0]: not valid UTF-8" in (caught.value.details() or "")

                with pytest.raises(grpc.aio.AioRpcError) as caught:
                    await channel.stream_unary("/imlimits.v1.LimitService/ImportGroups")(
                        iter([good_import.SerializeToString(), bad_import]), timeout=10)
                assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
                assert "groups[0].members[0]: not valid UTF-8" in (caught.value.details() or "")

                answer = await channel.stream_unary("/imlimits.v1.LimitService/ImportGroups")(
                    iter([good_import.SerializeToString()] * 2), timeout=10)
                assert limit_pb2.ImportGroupsResponse.FromString(answer).groups_created == 2
        finally:
            await server.stop(None)

    asyncio.run(scenario())
