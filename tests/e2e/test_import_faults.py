"""ImportGroups when Redis is slow or a reply is lost, and when the caller cuts the stream at each phase.

A lost reply is neither a refusal nor a success: a step sent again must learn
from Redis what its first attempt did. Faults are real: a Lua script that
keeps the test's own redis-server busy, or a TCP proxy (tests/redis_proxy.py)
that loses the reply of one exact command after Redis ran it, or holds the
commands from one on while the caller goes away.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import grpc
import pytest

from e2e.helpers import refused, wait_until
from e2e.test_onboarding import WORK, members_of, record
from harness import RedisProcess, ServerProcess
from imlimits.v1 import limit_pb2, plan_pb2
from imlimits.v1.limit_pb2_grpc import LimitServiceStub
from imlimits.v1.plan_pb2_grpc import PlanServiceStub
from imlimits_server.store.onboarding import IMPORT_BATCH_MEMBERSHIPS
from imlimits_server.store.redis_store import _load_scripts
from redis_proxy import Matcher, RedisProxy, script_call

Code = grpc.StatusCode
APP = 1_400_000_777
PUBLIC = limit_pb2.GROUP_TYPE_PUBLIC
SCRIPTS = _load_scripts()
# Keeps Redis busy for 0.4 s, as a slow Redis would be: a script blocks every other client until it ends.
BUSY_SCRIPT = """local start = redis.call('TIME')
repeat local now = redis.call('TIME')
until (now[1] - start[1]) * 1000000 + (now[2] - start[2]) > tonumber(ARGV[1])"""


@pytest.fixture
def proxy(own_redis: RedisProcess) -> Iterator[RedisProxy]:
    # Loaded beforehand, so that the EVALSHA a test loses the reply of is one that ran (not a NOSCRIPT).
    for script in SCRIPTS.values():
        own_redis.client().script_load(script.text)
    through = RedisProxy(own_redis.port)
    yield through
    through.close()


def _serve(redis_url: str, timeout: str) -> ServerProcess:
    return ServerProcess("--redis-url", redis_url, "--redis-timeout", timeout).start()


def _stubs(server: ServerProcess) -> tuple[grpc.Channel, PlanServiceStub, LimitServiceStub]:
    channel = grpc.insecure_channel(server.target)
    return channel, PlanServiceStub(channel), LimitServiceStub(channel)


def _refusal_stream(before_bad: threading.Event | None = None) -> Iterator[limit_pb2.ImportGroupsRequest]:
    """5 records; a record saying the Work group `T` is PUBLIC, then 5 more; then 5 more (issue 22's stream)."""
    yield limit_pb2.ImportGroupsRequest(app_id=APP, groups=[record(f"a{i}", ["x"]) for i in range(5)])
    if before_bad is not None:
        before_bad.set()
        time.sleep(0.05)  # the busy script reaches Redis first
    yield limit_pb2.ImportGroupsRequest(app_id=APP, groups=[record("T", type=PUBLIC),
                                                            *(record(f"b{i}", ["x"]) for i in range(5))])
    yield limit_pb2.ImportGroupsRequest(app_id=APP, groups=[record(f"c{i}", ["x"]) for i in range(5)])


def _expect_refusal_at_record_6(plans: PlanServiceStub, limits: LimitServiceStub, stream: object) -> None:
    refused(stream, Code.INVALID_ARGUMENT, "record 6 (group 'T'): type: group 'T' exists as GROUP_TYPE_WORK")
    assert [members_of(limits, APP, f"a{i}") for i in range(5)] == [1] * 5
    for group_id in [*(f"b{i}" for i in range(5)), *(f"c{i}" for i in range(5))]:
        refused(lambda: members_of(limits, APP, group_id), Code.NOT_FOUND)  # noqa: B023
    assert limits.GetUsage(limit_pb2.GetUsageRequest(app_id=APP, user="x")).user_groups == 5


def _app_with_group_t(plans: PlanServiceStub, limits: LimitServiceStub) -> None:
    plans.CreateApp(plan_pb2.CreateAppRequest(app_id=APP))
    limits.CreateGroup(limit_pb2.CreateGroupRequest(app_id=APP, group_id="T", type=WORK, owner="o"))


def test_a_refused_record_stays_refused_when_redis_stalls(own_redis: RedisProcess) -> None:
    """Issue 22's report: with Redis busy for 0.4 s just before the bad message, the import answered OK."""
    server = _serve(own_redis.url, "0.1")
    channel, plans, limits = _stubs(server)
    try:
        _app_with_group_t(plans, limits)
        before_bad = threading.Event()

        def stall() -> None:
            before_bad.wait()
            own_redis.client().eval(BUSY_SCRIPT, 0, 400_000)

        staller = threading.Thread(target=stall)
        staller.start()
        _expect_refusal_at_record_6(plans, limits, lambda: limits.ImportGroups(_refusal_stream(before_bad)))
        staller.join()
    finally:
        channel.close()
        server.stop()


def test_a_refused_step_whose_reply_was_lost_is_still_refused(proxy: RedisProxy) -> None:
    """The refusing step ran and set the stream's refusal; its reply was lost and the step sent again."""
    server = _serve(proxy.url, "5")
    channel, plans, limits = _stubs(server)
    try:
        _app_with_group_t(plans, limits)
        proxy.lose_reply_of(script_call(SCRIPTS["import_groups"].sha, "T"))
        _expect_refusal_at_record_6(plans, limits, lambda: limits.ImportGroups(_refusal_stream()))
        assert proxy.lost.is_set()
    finally:
        channel.close()
        server.stop()


def test_a_replaced_groups_last_slice_sent_again_keeps_the_named_members(proxy: RedisProxy) -> None:
    """The last replace slice ran (and dropped the stage set); sent again it must not release the named members."""
    server = _serve(proxy.url, "5")
    channel, plans, limits = _stubs(server)
    try:
        plans.CreateApp(plan_pb2.CreateAppRequest(app_id=APP))
        limits.ImportGroups(iter([limit_pb2.ImportGroupsRequest(
            app_id=APP, groups=[record("g", [f"u{i}" for i in range(10)])])]))
        proxy.lose_reply_of(script_call(SCRIPTS["replace_members"].sha, "g"))
        answer = limits.ImportGroups(iter([limit_pb2.ImportGroupsRequest(
            app_id=APP, groups=[record("g", ["u0", "u1", "new"])], replace=True)]))
        assert proxy.lost.is_set()
        assert (answer.memberships_added, answer.memberships_removed, answer.groups_updated) == (1, 8, 1)
        assert members_of(limits, APP, "g") == 3
        assert [limits.GetUsage(limit_pb2.GetUsageRequest(app_id=APP, user=user)).user_groups
                for user in ("u0", "u1", "new", "u2")] == [1, 1, 1, 0]
        assert limits.VerifyUsage(limit_pb2.VerifyUsageRequest(app_id=APP)).drifts == []
    finally:
        channel.close()
        server.stop()


# ---- A replacing import cut by its caller at each phase (issue 22, item 3) ----

GROUPS = [f"g{i}" for i in range(6)]
MEMBERS = [f"m{i}" for i in range(1200)]  # three replace slices a group


def _imp_keys(redis_process: RedisProcess) -> list[str]:
    return list(redis_process.client().scan_iter(f"{{im:{APP}}}:imp:*"))


def _cut_import(proxy: RedisProxy, own_redis: RedisProcess, limits: LimitServiceStub,
                names: dict[str, list[str]], hold: Matcher, *, ended: bool) -> None:
    """Start a replacing import of `names` (its stream `ended` or left open), wait until the proxy holds the
    server at `hold`, cancel the call, then let Redis go on and wait until the server is done with the stream
    (its state gone)."""
    cancelled = threading.Event()

    def stream() -> Iterator[limit_pb2.ImportGroupsRequest]:
        for group_id, members in names.items():
            yield limit_pb2.ImportGroupsRequest(app_id=APP, groups=[record(group_id, members)], replace=True)
        if not ended:
            cancelled.wait()

    proxy.hold_from(hold)
    call = limits.ImportGroups.future(stream())
    assert proxy.held.wait(30), "the import never reached the phase"
    call.cancel()
    time.sleep(0.3)  # the cancellation reaches the server while it waits on Redis
    proxy.release()
    with pytest.raises(grpc.FutureCancelledError):
        call.result()
    wait_until(lambda: not _imp_keys(own_redis))
    cancelled.set()


@pytest.fixture
def cut_server(proxy: RedisProxy) -> Iterator[tuple[PlanServiceStub, LimitServiceStub]]:
    server = _serve(proxy.url, "5")
    channel, plans, limits = _stubs(server)
    plans.CreateApp(plan_pb2.CreateAppRequest(app_id=APP))
    plans.Upgrade(plan_pb2.UpgradeRequest(app_id=APP, edition=plan_pb2.EDITION_ULTIMATE))
    limits.ImportGroups(iter([limit_pb2.ImportGroupsRequest(app_id=APP, groups=[record(group_id, MEMBERS)])
                              for group_id in GROUPS]))
    yield plans, limits
    channel.close()
    server.stop()


def _sizes(limits: LimitServiceStub) -> list[int]:
    return [members_of(limits, APP, group_id) for group_id in GROUPS]


def test_a_stream_cut_during_its_replace_phase_is_replaced_whole(
        proxy: RedisProxy, own_redis: RedisProcess, cut_server: tuple[PlanServiceStub, LimitServiceStub]) -> None:
    _, limits = cut_server
    _cut_import(proxy, own_redis, limits, {group_id: ["m0"] for group_id in GROUPS},
                script_call(SCRIPTS["replace_members"].sha), ended=True)
    assert _sizes(limits) == [1] * len(GROUPS)
    assert limits.GetUsage(limit_pb2.GetUsageRequest(app_id=APP, user="m1")).user_groups == 0
    assert limits.VerifyUsage(limit_pb2.VerifyUsageRequest(app_id=APP)).drifts == []


def test_a_stream_cut_during_its_over_limit_report_is_replaced_whole(
        proxy: RedisProxy, own_redis: RedisProcess, cut_server: tuple[PlanServiceStub, LimitServiceStub]) -> None:
    _, limits = cut_server
    _cut_import(proxy, own_redis, limits, {group_id: ["m0"] for group_id in GROUPS},
                script_call(SCRIPTS["over_limit"].sha), ended=True)
    assert _sizes(limits) == [1] * len(GROUPS)
    assert limits.VerifyUsage(limit_pb2.VerifyUsageRequest(app_id=APP)).drifts == []


def test_a_stream_cut_before_its_end_replaces_nothing(
        proxy: RedisProxy, own_redis: RedisProcess, cut_server: tuple[PlanServiceStub, LimitServiceStub]) -> None:
    _, limits = cut_server
    # The records of the message being applied when the cut came are applied; nothing is replaced.
    _cut_import(proxy, own_redis, limits, {"g0": ["m0", "extra"], "g1": ["m0"]},
                script_call(SCRIPTS["import_groups"].sha, "g1"), ended=False)
    assert _sizes(limits) == [len(MEMBERS) + 1, *[len(MEMBERS)] * (len(GROUPS) - 1)]
    assert limits.VerifyUsage(limit_pb2.VerifyUsageRequest(app_id=APP)).drifts == []


def test_a_record_cut_between_its_slices_is_applied_whole(
        proxy: RedisProxy, own_redis: RedisProcess, cut_server: tuple[PlanServiceStub, LimitServiceStub]) -> None:
    """A record of 10,000 members is applied in several bounded calls, and stays one record when the caller goes
    away between them (nothing is replaced: the stream was cut before its end)."""
    _, limits = cut_server
    big = [f"big-{i}" for i in range(10_000)]
    _cut_import(proxy, own_redis, limits, {"g0": big}, script_call(SCRIPTS["import_groups"].sha, "c", "big-5000"),
                ended=False)
    assert members_of(limits, APP, "g0") == len(MEMBERS) + len(big)
    assert limits.GetUsage(limit_pb2.GetUsageRequest(app_id=APP, user="big-9999")).user_groups == 1
    assert limits.VerifyUsage(limit_pb2.VerifyUsageRequest(app_id=APP)).drifts == []


def test_a_10000_member_record_is_applied_in_bounded_calls(proxy: RedisProxy) -> None:
    """Issue 22, item 2: a record of 10,000 members (the export's format) was one script call of 35-174 ms."""
    server = _serve(proxy.url, "5")
    channel, plans, limits = _stubs(server)
    try:
        plans.CreateApp(plan_pb2.CreateAppRequest(app_id=APP))
        members = [f"member-{i}" for i in range(10_000)]
        answer = limits.ImportGroups(iter([limit_pb2.ImportGroupsRequest(
            app_id=APP, groups=[record("big-1", members, owner="boss"), record("big-2", members)])]))
        assert (answer.groups_created, answer.memberships_added) == (2, 20_001)
        steps = [command for command in proxy.commands
                 if command[:2] == [b"EVALSHA", SCRIPTS["import_groups"].sha.encode()]]
        # Each call carries at most one step's memberships (its keys and other arguments are a few dozen).
        assert len(steps) >= 20_000 // IMPORT_BATCH_MEMBERSHIPS
        assert max(len(command) for command in steps) < IMPORT_BATCH_MEMBERSHIPS + 50
        assert (members_of(limits, APP, "big-1"), members_of(limits, APP, "big-2")) == (10_001, 10_000)
        assert limits.VerifyUsage(limit_pb2.VerifyUsageRequest(app_id=APP)).drifts == []
    finally:
        channel.close()
        server.stop()
