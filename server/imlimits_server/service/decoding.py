"""Requests whose bytes do not parse answer INVALID_ARGUMENT, on every RPC of every service.

grpc decodes a request before any handler runs, and a DecodeError there reaches
the caller as UNKNOWN "Unexpected <class 'DecodeError'>". SPEC section 3 allows
no such status: corrupt protobuf and strings that are not UTF-8 are malformed
input. `StrictDecodingServer` wraps every handler registered on it, so an RPC
added later, unary or streaming, gets the rule without doing anything.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import grpc
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import DecodeError

_Decode = Callable[[bytes], Any]
_VARINT_MAX_BYTES = 10


class MalformedRequest(Exception):
    """A streamed request message did not parse; the handler's guard answers INVALID_ARGUMENT."""


class StrictDecodingServer(grpc.aio.Server):  # type: ignore[misc]
    """A grpc.aio.Server whose registered handlers refuse undecodable requests with INVALID_ARGUMENT."""

    def __init__(self, server: grpc.aio.Server) -> None:
        self._server = server

    def add_generic_rpc_handlers(self, generic_rpc_handlers: Sequence[grpc.GenericRpcHandler]) -> None:
        self._server.add_generic_rpc_handlers([_StrictGenericHandler(handler) for handler in generic_rpc_handlers])

    def add_registered_method_handlers(self, service_name: str,
                                       method_handlers: dict[str, grpc.RpcMethodHandler]) -> None:
        self._server.add_registered_method_handlers(
            service_name, {method: strict_handler(handler) for method, handler in method_handlers.items()})

    def add_insecure_port(self, address: str) -> int:
        return int(self._server.add_insecure_port(address))

    def add_secure_port(self, address: str, server_credentials: grpc.ServerCredentials) -> int:
        return int(self._server.add_secure_port(address, server_credentials))

    async def start(self) -> None:
        await self._server.start()

    async def stop(self, grace: float | None) -> None:
        await self._server.stop(grace)

    async def wait_for_termination(self, timeout: float | None = None) -> bool:
        return bool(await self._server.wait_for_termination(timeout))


class _StrictGenericHandler(grpc.GenericRpcHandler):  # type: ignore[misc]
    def __init__(self, inner: grpc.GenericRpcHandler) -> None:
        self._inner = inner
        self._wrapped: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        handler = self._inner.service(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        cached = self._wrapped.get(method)
        if cached is None or cached[0] is not handler:
            cached = self._wrapped[method] = (handler, strict_handler(handler))
        return cached[1]


def strict_handler(handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
    """The same RPC, answering INVALID_ARGUMENT naming the problem when a request does not parse.

    A unary request is decoded inside the handler (grpc passes the raw bytes),
    where the call can still be aborted with a status; a streamed request is
    decoded as the handler reads it, and the guard turns the decoder's
    MalformedRequest into the status.
    """
    decode: _Decode | None = handler.request_deserializer
    if decode is None:
        return handler
    kind = ("stream" if handler.request_streaming else "unary") + "_" + \
        ("stream" if handler.response_streaming else "unary")
    behaviour = getattr(handler, kind)
    if not (inspect.iscoroutinefunction(behaviour) or inspect.isasyncgenfunction(behaviour)):
        # Every imlimits handler is async. A synchronous one (grpc_health's unserved List) runs in a
        # thread pool with another kind of context and is left as registered.
        return handler
    if handler.request_streaming:
        return handler._replace(request_deserializer=_raising(decode), **{kind: _guard(behaviour, None)})
    return handler._replace(request_deserializer=None, **{kind: _guard(behaviour, decode)})


def _raising(decode: _Decode) -> _Decode:
    def decode_or_raise(raw: bytes) -> Any:
        try:
            return decode(raw)
        except DecodeError as error:
            raise MalformedRequest(describe(decode, raw, error)) from None

    return decode_or_raise


def _guard(behaviour: Callable[..., Any], decode: _Decode | None) -> Callable[..., Any]:
    """Wraps `behaviour` keeping its kind (coroutine or async generator), which grpc dispatches on.

    `decode` parses a unary request's raw bytes in place (no coroutine of its
    own: this runs on every call); a streamed request comes already decoded
    by `_raising`, and `decode` is None.
    """
    if inspect.isasyncgenfunction(behaviour):
        async def streaming(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            if decode is not None:
                try:
                    request = decode(request)
                except DecodeError as error:
                    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, describe(decode, request, error))
            try:
                async for response in behaviour(request, context):
                    yield response
            except MalformedRequest as error:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))

        return streaming

    async def single(request: Any, context: grpc.aio.ServicerContext) -> Any:
        if decode is not None:
            try:
                request = decode(request)
            except DecodeError as error:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, describe(decode, request, error))
        try:
            return await behaviour(request, context)
        except MalformedRequest as error:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))

    return single


def describe(decode: _Decode, raw: bytes, error: DecodeError) -> str:
    """What INVALID_ARGUMENT says: the message type and, where it can be found, the field and the fault."""
    message_type: Descriptor | None = getattr(getattr(decode, "__self__", None), "DESCRIPTOR", None)
    if not isinstance(message_type, Descriptor):
        return f"the request does not parse: {error}"
    try:
        problem = _first_problem(message_type, raw, "")
    except _Corrupt as corrupt:
        problem = str(corrupt)
    return f"the request is not a valid {message_type.full_name}: {problem or error}"


class _Corrupt(Exception):
    pass


def _varint(data: bytes, position: int, what: str) -> tuple[int, int]:
    value = 0
    for index in range(_VARINT_MAX_BYTES):
        if position + index >= len(data):
            raise _Corrupt(f"{what}: truncated varint at byte {position}")
        byte = data[position + index]
        value |= (byte & 0x7F) << (7 * index)
        if not byte & 0x80:
            return value, position + index + 1
    raise _Corrupt(f"{what}: varint longer than {_VARINT_MAX_BYTES} bytes at byte {position}")


def _first_problem(message_type: Descriptor, data: bytes, path: str) -> str | None:
    """The first fault of the wire format that keeps `data` from parsing, named by its field path.

    Groups (wire types 3 and 4, unused by proto3) end the search: the caller
    then quotes the parser's own message.
    """
    seen: dict[int, int] = {}
    position = 0
    prefix = f"{path}." if path else ""
    while position < len(data):
        key, position = _varint(data, position, f"{prefix}field key")
        number, wire_type = key >> 3, key & 7
        field: FieldDescriptor | None = message_type.fields_by_number.get(number)
        name = prefix + (field.name if field else f"field {number}")
        if field is not None and field.is_repeated:
            name += f"[{seen.get(number, 0)}]"
            seen[number] = seen.get(number, 0) + 1
        if number == 0:
            return f"{prefix}field number 0 is not allowed"
        if wire_type == 0:
            _, position = _varint(data, position, name)
        elif wire_type in (1, 5):
            position += 8 if wire_type == 1 else 4
            if position > len(data):
                return f"{name}: truncated fixed-width value"
        elif wire_type == 2:
            length, position = _varint(data, position, f"{name}: length")
            end = position + length
            if end > len(data):
                return f"{name}: length {length} runs past the end of the message"
            problem = _length_delimited(field, data[position:end], name)
            if problem:
                return problem
            position = end
        elif wire_type in (3, 4):
            return None
        else:
            return f"{name}: invalid wire type {wire_type}"
    return None


def _length_delimited(field: FieldDescriptor | None, chunk: bytes, name: str) -> str | None:
    if field is None:
        return None
    if field.type == FieldDescriptor.TYPE_STRING:
        try:
            chunk.decode("utf-8")
        except UnicodeDecodeError as error:
            return f"{name}: not valid UTF-8 (byte 0x{chunk[error.start]:02x} at offset {error.start})"
    if field.type == FieldDescriptor.TYPE_MESSAGE and field.message_type is not None:
        return _first_problem(field.message_type, chunk, name)
    return None

