"""The client library's list_apps, sync and asyncio, against the real server."""

from __future__ import annotations

import asyncio

import pytest

from harness import ServerProcess
from imlimits_client import App, AppStatus, AsyncClient, Client, InvalidArgument


def test_list_apps_follows_tokens(server: ServerProcess, app_id: int) -> None:
    created = [app_id * 1000 + 5, app_id * 1000 + 9, app_id * 1000 + 7]
    with Client(server.target, admin_timeout=10) as client:
        for created_id in created:
            client.admin.create_app(created_id)
        listed: list[App] = []
        token = ""
        while True:
            page = client.admin.list_apps(page_size=2, page_token=token)
            listed += page.apps
            token = page.next_page_token
            if not token:
                break
        mine = [app for app in listed if app.app_id in created]
        assert [app.app_id for app in mine] == sorted(created)
        assert all(app.status is AppStatus.ACTIVE for app in mine)
        with pytest.raises(InvalidArgument, match="page_token"):
            client.admin.list_apps(page_token="forged")


def test_async_list_apps(server: ServerProcess, app_id: int) -> None:
    async def scenario() -> list[int]:
        async with AsyncClient(server.target, admin_timeout=10) as client:
            await client.admin.create_app(app_id)
            listed, token = [], ""
            while True:
                page = await client.admin.list_apps(page_size=1000, page_token=token)
                listed += [app.app_id for app in page.apps]
                token = page.next_page_token
                if not token:
                    return listed

    assert app_id in asyncio.run(scenario())
