"""GetBill through the real server: the console guide's scenarios, input rules, the price list flag."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from e2e.helpers import refused, ts
from harness import ClusterProcess, RedisProcess, ServerProcess
from imlimits.v1 import plan_pb2
from imlimits.v1.plan_pb2_grpc import PlanServiceStub


@pytest.fixture
def pro(plans: PlanServiceStub, app_id: int) -> int:
    plans.CreateApp(plan_pb2.CreateAppRequest(app_id=app_id, at=ts(2019, 1, 2)))
    plans.Upgrade(plan_pb2.UpgradeRequest(app_id=app_id, edition=plan_pb2.EDITION_PRO, at=ts(2019, 2, 10)))
    return app_id


def av(plans: PlanServiceStub, app_id: int, on: bool, *day: int) -> None:
    plans.ChangePlan(plan_pb2.ChangePlanRequest(app_id=app_id, av_room_unlimited=on, at=ts(*day)))


def lines(bill: plan_pb2.Bill) -> list[tuple[str, str, bool, int]]:
    return [(line.item, line.level, line.charged, line.amount) for line in bill.lines]


def get(plans: PlanServiceStub, app_id: int, month: str) -> plan_pb2.Bill:
    return plans.GetBill(plan_pb2.GetBillRequest(app_id=app_id, month=month))


def test_scenario_one(plans: PlanServiceStub, pro: int) -> None:
    av(plans, pro, True, 2019, 2, 15)
    av(plans, pro, False, 2019, 2, 25)
    february = get(plans, pro, "2019-02")
    assert (february.month, february.issued_on, february.currency, february.total) == \
        ("2019-02", "2019-03-01", "CNY", 0)
    assert all(not line.charged for line in february.lines)
    assert lines(get(plans, pro, "2019-03")) == [
        ("edition", "EDITION_PRO", True, 99_900), ("av_room_unlimited", "false", False, 0),
        ("user_group_limit", "500", False, 0), ("group_member_limit", "200", False, 0)]


def test_scenario_two(plans: PlanServiceStub, pro: int) -> None:
    av(plans, pro, True, 2019, 2, 15)
    assert get(plans, pro, "2019-02").total == 0
    march = get(plans, pro, "2019-03")
    assert (march.issued_on, march.total) == ("2019-04-01", 129_900)
    assert march.lines[1].charged and march.lines[1].reason


def test_scenario_three(plans: PlanServiceStub, pro: int) -> None:
    av(plans, pro, True, 2019, 4, 10)
    assert get(plans, pro, "2019-03").total == 99_900
    april = get(plans, pro, "2019-04")
    assert (april.issued_on, april.total, april.lines[1].charged) == ("2019-05-01", 129_900, True)


@pytest.mark.parametrize("month", ["2019-13", "19-02", "2019-2", "", "2019-00", "abcd-ef"])
def test_malformed_month(plans: PlanServiceStub, pro: int, month: str) -> None:
    refused(lambda: get(plans, pro, month), grpc.StatusCode.INVALID_ARGUMENT, "month")


def test_future_month(plans: PlanServiceStub, pro: int) -> None:
    refused(lambda: get(plans, pro, "2999-01"), grpc.StatusCode.FAILED_PRECONDITION, "2999-01")


def test_unknown_app(plans: PlanServiceStub, app_id: int) -> None:
    refused(lambda: get(plans, app_id, "2019-01"), grpc.StatusCode.NOT_FOUND)


def test_deactivated_app_still_gets_bills(plans: PlanServiceStub, pro: int) -> None:
    plans.Deactivate(plan_pb2.DeactivateRequest(app_id=pro, confirm=True, at=ts(2019, 3, 15)))
    assert get(plans, pro, "2019-03").total == 99_900
    assert get(plans, pro, "2019-04").total == 0


def test_price_list_flag(redis_server: RedisProcess | ClusterProcess, tmp_path: Path, app_id: int) -> None:
    prices = tmp_path / "prices.toml"
    prices.write_text('currency = "USD"\n[editions]\nEDITION_PRO = "12.34"\nEDITION_ULTIMATE = "50"\n'
                      '[av_room_unlimited]\nmonthly = "1"\n[user_group_limit]\nstep = 100\nper_step = "1"\n'
                      '[group_member_limit]\nstep = 100\nper_step = "1"\n')
    process = ServerProcess("--redis-url", redis_server.url, "--trust-client-time", "--price-list",
                            str(prices)).start()
    try:
        with grpc.insecure_channel(process.target) as channel:
            plans = PlanServiceStub(channel)
            plans.CreateApp(plan_pb2.CreateAppRequest(app_id=app_id, at=ts(2019, 1, 2)))
            plans.Upgrade(plan_pb2.UpgradeRequest(app_id=app_id, edition=plan_pb2.EDITION_PRO, at=ts(2019, 1, 3)))
            bill = get(plans, app_id, "2019-02")
        assert (bill.currency, bill.total) == ("USD", 1_234)
    finally:
        process.stop()


def test_bad_price_list_stops_start_up(redis_server: RedisProcess | ClusterProcess, tmp_path: Path) -> None:
    prices = tmp_path / "prices.toml"
    prices.write_text("[editions]\nEDITION_PRO = \"lots\"\n")
    with pytest.raises(RuntimeError, match="EDITION_PRO: must be a decimal amount"):
        ServerProcess("--redis-url", redis_server.url, "--price-list", str(prices)).start()
