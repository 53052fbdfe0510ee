"""Small builders for end-to-end tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from google.rpc import error_details_pb2
from grpc_status import rpc_status

TZ = ZoneInfo("Asia/Shanghai")


def ts(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> Timestamp:
    """A timestamp given in the deployment's default time zone."""
    stamp = Timestamp()
    stamp.FromDatetime(datetime(year, month, day, hour, minute, tzinfo=TZ))
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
    status = rpc_status.from_call(error)
    assert status is not None
    failure = error_details_pb2.PreconditionFailure()
    assert status.details[0].Unpack(failure)
    return failure


def wait_until(condition: Callable[[], bool], seconds: float = 30.0) -> None:
    """Poll `condition` until it holds; the bound is generous because speed is measured in the bench, not here."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"still not true after {seconds} s"
        time.sleep(0.02)
