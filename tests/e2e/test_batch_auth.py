"""Batch and Stream take the same tokens as the unary checks: a check token suffices, no token is refused."""

from __future__ import annotations

import grpc
import pytest

from e2e.test_security import ADMIN, CHECK, secured  # noqa: F401  (the fixture)
from harness import ServerProcess
from imlimits.v1 import limit_pb2, limit_pb2_grpc


@pytest.mark.parametrize(("header", "expected"), [
    (None, grpc.StatusCode.UNAUTHENTICATED),
    ("Bearer not-a-token-at-all-000", grpc.StatusCode.UNAUTHENTICATED),
    (f"Bearer {CHECK}", grpc.StatusCode.OK),
    (f"Bearer {ADMIN}", grpc.StatusCode.OK),
])
def test_batch_and_stream_by_token(secured: ServerProcess, app_id: int,  # noqa: F811
                                   header: str | None, expected: grpc.StatusCode) -> None:
    metadata = (("authorization", header),) if header else ()
    checks = [limit_pb2.Check(create_room=limit_pb2.CreateRoomRequest(app_id=app_id, room_id="r"))]
    with grpc.insecure_channel(secured.target) as channel:
        stub = limit_pb2_grpc.LimitServiceStub(channel)

        def batch() -> list[limit_pb2.CheckResult]:
            return list(stub.Batch(limit_pb2.BatchRequest(checks=checks), metadata=metadata, timeout=10).results)

        def stream() -> list[limit_pb2.CheckResult]:
            return list(stub.Stream(iter(checks), metadata=metadata, timeout=10))

        for call in (batch, stream):
            try:
                answers = call()
            except grpc.RpcError as error:
                assert error.code() == expected
            else:
                assert expected == grpc.StatusCode.OK
                assert len(answers) == 1 and not answers[0].HasField("error")
