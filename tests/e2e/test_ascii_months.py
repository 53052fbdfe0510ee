"""GetBill's month is "YYYY-MM" in ASCII digits: other digits are INVALID_ARGUMENT, not another month's bill."""

# ruff: noqa: RUF001 -- the non-ASCII digits are what these tests are about

from __future__ import annotations

import grpc
import pytest

from e2e.helpers import refused, ts
from imlimits.v1 import plan_pb2, plan_pb2_grpc


@pytest.mark.parametrize("month", ["٢٠٢٠-٠١", "２０２０-０１", "۲۰۲۰-۰۱", "२०२०-०१", "2020-٠١", "２020-01"])
def test_a_month_in_other_digits_is_invalid_argument(plans: plan_pb2_grpc.PlanServiceStub, app_id: int,
                                                     month: str) -> None:
    plans.CreateApp(plan_pb2.CreateAppRequest(app_id=app_id, at=ts(2019, 12, 1)))
    assert plans.GetBill(plan_pb2.GetBillRequest(app_id=app_id, month="2020-01")).month == "2020-01"
    error = refused(lambda: plans.GetBill(plan_pb2.GetBillRequest(app_id=app_id, month=month)),
                    grpc.StatusCode.INVALID_ARGUMENT, "month")
    assert "YYYY-MM" in error.details()
