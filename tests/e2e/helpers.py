"""Small builders for end-to-end tests."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from google.rpc import error_details_pb2
from grpc_status import rpc_status

TZ = ZoneInfo("Asia/Shanghai")


def ts(*parts: int) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(datetime(*parts, tzinfo=TZ))
    return stamp


def refused(call: object, code: grpc.StatusCode, match: str = "") -> grpc.RpcError:
    """Assert that calling `call` fails with `code` and a message containing `match`."""
    with pytest.raises(grpc.RpcError) as caught:
        call()  # type: ignore[operator]
    error = caught.value
    assert error.code() == code, error.details()
    assert match in error.details(), error.details()
    return error


def precondition_failure(error: grpc.RpcError) -> error_details_pb2.PreconditionFailure:
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None
    failure = error_details_pb2.PreconditionFailure()
    assert status.details[0].Unpack(failure)
    return failure
