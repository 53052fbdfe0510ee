"""Fixtures shared by store and end-to-end tests: one real redis-server and one real server per session."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator

import grpc
import pytest
from hypothesis import Phase, settings

from harness import ClusterProcess, RedisProcess, ServerProcess, temp_dirs_removed
from imlimits.v1 import limit_pb2_grpc, plan_pb2_grpc

_app_ids = itertools.count(1_400_000_001)

# `make mutate` (tools/mutate.py) needs a verdict per mutant, not a minimal failing example: no shrinking.
settings.register_profile("mutate", phases=(Phase.explicit, Phase.reuse, Phase.generate), database=None)


# Each scope removes the temporary directories its own fixtures and tests made, also when a test fails, so
# no imlimits-test-* directory outlives the test, module or session that needed it.
@pytest.fixture(scope="session", autouse=True)
def _session_temp_dirs() -> Iterator[None]:
    with temp_dirs_removed():
        yield


@pytest.fixture(scope="module", autouse=True)
def _module_temp_dirs() -> Iterator[None]:
    with temp_dirs_removed():
        yield


@pytest.fixture(autouse=True)
def _test_temp_dirs() -> Iterator[None]:
    with temp_dirs_removed():
        yield


# IMLIMITS_TEST_REDIS=cluster runs every test that uses this fixture against a 3-master Redis Cluster.
CLUSTER = os.environ.get("IMLIMITS_TEST_REDIS") == "cluster"


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisProcess | ClusterProcess]:
    server = ClusterProcess().start() if CLUSTER else RedisProcess().start()
    yield server
    server.stop()


@pytest.fixture
def own_redis() -> Iterator[RedisProcess]:
    """A single redis-server for one test, which it may stop and restart."""
    server = RedisProcess().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def server(redis_server: RedisProcess | ClusterProcess) -> Iterator[ServerProcess]:
    """The service as migrations and tests run it: `at` is honoured."""
    process = ServerProcess("--redis-url", redis_server.url, "--trust-client-time", "--redis-timeout", "1").start()
    yield process
    process.stop()


@pytest.fixture(scope="session")
def channel(server: ServerProcess) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(server.target) as chan:
        yield chan


@pytest.fixture
def plans(channel: grpc.Channel) -> plan_pb2_grpc.PlanServiceStub:
    return plan_pb2_grpc.PlanServiceStub(channel)


@pytest.fixture
def limits(channel: grpc.Channel) -> limit_pb2_grpc.LimitServiceStub:
    return limit_pb2_grpc.LimitServiceStub(channel)


@pytest.fixture
def app_id() -> int:
    """A fresh SDKAppID for each test, so tests share one Redis without sharing state."""
    return next(_app_ids)
