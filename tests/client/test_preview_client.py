"""The client library's preview methods against the real server: typed previews, typed refusals."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from harness import ServerProcess
from imlimits_client import AsyncClient, Client, Edition, PlanPreview, PlanRuleViolation

TZ = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def client(server: ServerProcess) -> Iterator[Client]:
    with Client(server.target, admin_timeout=10) as connected:
        yield connected


def test_preview_upgrade_is_typed_and_changes_nothing(client: Client, app_id: int) -> None:
    client.admin.create_app(app_id, at=datetime(2019, 1, 2, tzinfo=TZ))
    preview = client.admin.preview_upgrade(app_id, Edition.PRO, av_room_unlimited=True,
                                           at=datetime(2019, 2, 10, tzinfo=TZ))
    assert isinstance(preview, PlanPreview)
    assert (preview.app.edition, preview.app.av_room_unlimited) == (Edition.PRO, True)
    assert preview.newly_locked_items == ("edition", "av_room_unlimited")
    assert (preview.this_month.total, preview.next_month.total) == (0, 99900 + 30000)
    assert client.admin.get_app(app_id).edition is Edition.TRIAL


def test_preview_change_plan_refusal_is_a_plan_rule_violation(client: Client, server: ServerProcess,
                                                             app_id: int) -> None:
    client.admin.create_app(app_id, at=datetime(2019, 1, 2, tzinfo=TZ))
    client.admin.upgrade(app_id, Edition.PRO, user_group_limit=800, at=datetime(2019, 2, 10, tzinfo=TZ))

    async def preview() -> None:
        async with AsyncClient(server.target, admin_timeout=10) as connected:
            await connected.admin.preview_change_plan(app_id, user_group_limit=900,
                                                      at=datetime(2019, 2, 11, tzinfo=TZ))

    with pytest.raises(PlanRuleViolation) as caught:
        asyncio.run(preview())
    assert caught.value.violations[0].subject == "user_group_limit"
    assert "may change again on 2019-03-01" in caught.value.message

