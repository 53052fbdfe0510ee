"""PlanService.ListApps: every app once, by ascending app_id, in pages tied together by tokens the server issued."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import grpc

from e2e.helpers import refused
from harness import RedisProcess, ServerProcess
from imlimits.v1 import plan_pb2
from imlimits.v1.plan_pb2_grpc import PlanServiceStub

Code = grpc.StatusCode


def _all_pages(plans: PlanServiceStub, page_size: int) -> Iterator[plan_pb2.ListAppsResponse]:
    token = ""
    while True:
        page = plans.ListApps(plan_pb2.ListAppsRequest(page_size=page_size, page_token=token))
        yield page
        if not page.next_page_token:
            return
        token = page.next_page_token


def test_pages_list_every_app_once_in_ascending_order(plans: PlanServiceStub, app_id: int) -> None:
    # Created out of order, one deactivated: a listing is by id and shows every status.
    # Ids of their own range (the fixture's next ids belong to other tests).
    base = app_id * 1000
    created = [base + offset for offset in (40, 0, 20, 10, 30)]
    for created_id in created:
        plans.CreateApp(plan_pb2.CreateAppRequest(app_id=created_id))
    plans.Deactivate(plan_pb2.DeactivateRequest(app_id=base + 20, confirm=True))
    pages = list(_all_pages(plans, page_size=2))
    listed = [app for page in pages for app in page.apps]
    ids = [app.app_id for app in listed]
    assert ids == sorted(set(ids)), "each app once, ascending across pages"
    assert [i for i in ids if i in created] == sorted(created)
    assert all(len(page.apps) == 2 for page in pages[:-1]) and 1 <= len(pages[-1].apps) <= 2
    for app in listed:
        if app.app_id in created:
            assert app == plans.GetApp(plan_pb2.GetAppRequest(app_id=app.app_id))
    assert {app.app_id: app.status for app in listed}[base + 20] == plan_pb2.APP_STATUS_DEACTIVATED


def test_a_token_the_server_did_not_issue_is_invalid_argument(plans: PlanServiceStub, app_id: int) -> None:
    for offset in range(3):
        plans.CreateApp(plan_pb2.CreateAppRequest(app_id=app_id * 1000 + offset))
    issued = plans.ListApps(plan_pb2.ListAppsRequest(page_size=1)).next_page_token
    assert issued
    version, after, signature = base64.urlsafe_b64decode(issued).decode().split(".")
    moved = base64.urlsafe_b64encode(f"{version}.{int(after) + 1}.{signature}".encode()).decode()
    for token in ("not-a-token", "x" * 300, issued[:-2], moved, issued + "=="):
        refused(lambda: plans.ListApps(plan_pb2.ListAppsRequest(page_token=token)),  # noqa: B023 (called at once)
                Code.INVALID_ARGUMENT,
                "page_token")
    refused(lambda: plans.ListApps(plan_pb2.ListAppsRequest(page_size=1001)), Code.INVALID_ARGUMENT, "page_size")


def test_page_sizes_tokens_across_replicas_and_deployments(own_redis: RedisProcess) -> None:
    """0 means 100 and 1000 is served; a token of one replica is good on another, not on another deployment."""
    first, second = (ServerProcess("--redis-url", own_redis.url, "--redis-timeout", "1").start() for _ in range(2))
    other_redis = RedisProcess().start()
    other = ServerProcess("--redis-url", other_redis.url, "--redis-timeout", "1").start()
    try:
        with grpc.insecure_channel(first.target) as a, grpc.insecure_channel(second.target) as b, \
                grpc.insecure_channel(other.target) as c:
            on_first, on_second, elsewhere = PlanServiceStub(a), PlanServiceStub(b), PlanServiceStub(c)
            empty = on_first.ListApps(plan_pb2.ListAppsRequest())
            assert list(empty.apps) == [] and empty.next_page_token == ""
            ids = [1_400_000_000 + 2 * n for n in range(1001)]
            for app in ids:
                on_first.CreateApp(plan_pb2.CreateAppRequest(app_id=app))
            # Index entries whose creation never committed (a server stopped between the two) are skipped.
            own_redis.client().zadd("imlimits:apps", {str(app + 1).zfill(20): 0 for app in ids[:150]})
            default = on_first.ListApps(plan_pb2.ListAppsRequest())
            assert [app.app_id for app in default.apps] == ids[:100]
            rest = on_second.ListApps(plan_pb2.ListAppsRequest(page_size=1000, page_token=default.next_page_token))
            assert [app.app_id for app in rest.apps] == ids[100:]
            assert rest.next_page_token == ""
            whole = on_second.ListApps(plan_pb2.ListAppsRequest(page_size=1000))
            assert [app.app_id for app in whole.apps] == ids[:1000] and whole.next_page_token
            refused(lambda: elsewhere.ListApps(plan_pb2.ListAppsRequest(page_token=whole.next_page_token)),
                    Code.INVALID_ARGUMENT, "page_token")
    finally:
        for process in (first, second, other):
            process.stop()
        other_redis.stop()
