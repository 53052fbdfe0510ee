"""A plan change whose commit reply was lost: the server learns from Redis what the commit did (issue 22, item 1).

Before, the change was made but the call answered UNAVAILABLE, and the audit
trail never had it: the caller's retry with the same request id replayed the
answer, and a replay writes no audit line.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import grpc
import pytest

from e2e.helpers import wait_until
from harness import RedisProcess, ServerProcess
from imlimits.v1 import plan_pb2
from imlimits.v1.plan_pb2_grpc import PlanServiceStub
from imlimits_server.store.redis_store import _load_scripts
from redis_proxy import RedisProxy, script_call

APP = 1_400_000_778
COMMIT = _load_scripts()["commit_app"]


@pytest.fixture
def served(own_redis: RedisProcess) -> Iterator[tuple[RedisProxy, ServerProcess, PlanServiceStub]]:
    own_redis.client().script_load(COMMIT.text)  # so that the lost reply is of a commit that ran
    proxy = RedisProxy(own_redis.port)
    server = ServerProcess("--redis-url", proxy.url, "--redis-timeout", "5").start()
    with grpc.insecure_channel(server.target) as channel:
        yield proxy, server, PlanServiceStub(channel)
    server.stop()
    proxy.close()


def _audited(server: ServerProcess) -> list[dict[str, object]]:
    return [json.loads(line.split("imlimits.audit: ", 1)[1]) for line in server.output if "imlimits.audit: " in line]


@pytest.mark.parametrize("request_id", ["upgrade-1", ""])
def test_a_commit_whose_reply_was_lost_answers_and_is_audited_once(
        served: tuple[RedisProxy, ServerProcess, PlanServiceStub], request_id: str) -> None:
    proxy, server, plans = served
    plans.CreateApp(plan_pb2.CreateAppRequest(app_id=APP))
    proxy.lose_reply_of(script_call(COMMIT.sha))
    upgrade = plan_pb2.UpgradeRequest(app_id=APP, edition=plan_pb2.EDITION_PRO, request_id=request_id)
    answer = plans.Upgrade(upgrade, timeout=30)
    assert proxy.lost.is_set()
    assert answer.edition == plan_pb2.EDITION_PRO
    changes = plans.ListPlanChanges(plan_pb2.ListPlanChangesRequest(app_id=APP)).changes
    assert [(change.operation, change.new_value) for change in changes if change.item == "edition"] == \
        [("Upgrade", "EDITION_PRO")]

    def upgrades() -> list[tuple[object, object]]:
        return [(line["app_id"], line["request_id"]) for line in _audited(server) if line["operation"] == "Upgrade"]

    wait_until(lambda: bool(upgrades()))  # the server's output is read by a thread of the test
    assert upgrades() == [(APP, request_id)]
