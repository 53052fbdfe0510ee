"""The console's defences: ids shown as text, CSRF on every form, loopback unless operators sign in,
no token ever shown, an unreachable server as a banner, and a confirm that cannot apply twice."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from starlette.routing import Route

from harness import RedisProcess, ServerProcess, free_port
from imlimits_client import AppStatus, Client, Edition, NotFound
from imlimits_console.main import main as console_main
from imlimits_console.web import ConsoleSettings, create_app
from webconsole.browserless import Session
from webconsole.conftest import ConsoleProcess, fill, screenshot, submit, text

HOSTILE_GROUP = "<script>document.title='xss'</script>"
HOSTILE_USER = '"><b id=pwn>x</b>'
ADMIN_TOKEN = "ops-token-0123456789abcdef0123"
CHECK_TOKEN = "im-backend-0123456789abcdef012"


def test_hostile_ids_are_shown_as_text(browser: WebDriver, console: ConsoleProcess, client: Client,
                                       app_id: int) -> None:
    client.admin.create_app(app_id)
    assert client.check.create_group(app_id, HOSTILE_GROUP, owner=HOSTILE_USER).allowed
    driver = browser
    driver.get(f"{console.url}/apps/{app_id}/usage")
    title = driver.title
    fill(driver, "user", HOSTILE_USER)
    fill(driver, "group", HOSTILE_GROUP)
    submit(driver, "#lookup")
    result = text(driver, "#lookup-result")
    assert HOSTILE_USER in result and HOSTILE_GROUP in result
    assert driver.find_elements(By.CSS_SELECTOR, "#lookup-result script, #pwn") == []
    assert driver.title == title
    # The lookup form keeps what was typed, as text in its value.
    assert driver.find_element(By.NAME, "group").get_attribute("value") == HOSTILE_GROUP
    screenshot(driver, "30-hostile-ids")


def _post_routes(app_id: int) -> list[str]:
    application = create_app(ConsoleSettings(target="127.0.0.1:1"))
    paths = [route.path for route in application.routes
             if isinstance(route, Route) and "POST" in (route.methods or ())]
    return [path.replace("{app_id:int}", str(app_id)) for path in paths]


def test_every_form_post_needs_this_browsers_csrf_token(console: ConsoleProcess, client: Client,
                                                        app_id: int) -> None:
    client.admin.create_app(app_id)
    routes = _post_routes(app_id)
    assert f"/apps/{app_id}/upgrade" in routes and "/apps" in routes and len(routes) == 8
    browser, other = Session(console.url), Session(console.url)
    browser.csrf()
    foreign = other.csrf()
    fields = {"app_id": str(app_id + 1), "edition": "PRO", "typed_app_id": str(app_id), "token": ADMIN_TOKEN}
    for path in routes:
        assert browser.post(path, fields)[0] == 403, path
        assert browser.post(path, {**fields, "csrf_token": foreign})[0] == 403, path
        assert Session(console.url).post(path, {**fields, "csrf_token": foreign})[0] == 403, path
    app = client.admin.get_app(app_id)
    assert (app.edition, app.status) == (Edition.TRIAL, AppStatus.ACTIVE), "nothing changed"
    with pytest.raises(NotFound):
        client.admin.get_app(app_id + 1)


def test_confirming_twice_changes_once(console: ConsoleProcess, client: Client, app_id: int) -> None:
    client.admin.create_app(app_id)
    session = Session(console.url)
    token = session.csrf(f"/apps/{app_id}/upgrade")
    status, page = session.post(f"/apps/{app_id}/upgrade/preview", {"csrf_token": token, "edition": "PRO",
                                                                    "user_group_limit": "700"})
    assert status == 200
    confirm = re.search(r'<form method="post" action="/apps/\d+/upgrade">(.*?)</form>', page, re.S)
    assert confirm is not None
    fields = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', confirm.group(1))
    assert ("user_group_limit", "700") in fields and any(name == "request_id" for name, _ in fields)
    # A double click, or a retry after a lost answer: the same request_id.
    assert session.post(f"/apps/{app_id}/upgrade", fields)[0] == 303
    assert session.post(f"/apps/{app_id}/upgrade", fields)[0] == 303
    upgrades = [c for c in client.admin.list_plan_changes(app_id) if c.operation == "Upgrade" and not c.implicit]
    assert [(c.item, c.new_value) for c in upgrades] == [("edition", "EDITION_PRO"), ("user_group_limit", "700")]


@pytest.mark.parametrize("listen, extra, needs", [
    ("0.0.0.0:0", [], "--sign-in"),
    ("[::]:0", [], "--sign-in"),
    ("0.0.0.0:0", ["--sign-in"], "--https-cert"),
])
def test_listening_beyond_loopback_needs_sign_in_and_https(listen: str, extra: list[str], needs: str,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """The command's own entry point refuses before it binds anything."""
    assert console_main(["--listen", listen, "--target", "127.0.0.1:1", *extra]) == 2
    stderr = capsys.readouterr().err
    assert needs in stderr and "not loopback" in stderr


def test_an_unreachable_server_is_a_banner(browser: WebDriver) -> None:
    console = ConsoleProcess("--listen", "127.0.0.1:0", "--target", f"127.0.0.1:{free_port()}",
                             "--timeout", "2").start()
    try:
        status, body = Session(console.url).get("/apps")
        assert status == 503 and "无法连接 imlimits 服务" in body and "Traceback" not in body
        browser.get(f"{console.url}/apps/1400000001/history")
        assert "无法连接 imlimits 服务" in text(browser, "#failure")
        screenshot(browser, "31-unreachable")
    finally:
        console.stop()


@pytest.fixture(scope="module")
def signed_console() -> Iterator[ConsoleProcess]:
    """A server that requires tokens, and a console where operators sign in with theirs."""
    redis_process = RedisProcess().start()
    server = ServerProcess("--redis-url", redis_process.url, env={
        "IMLIMITS_ADMIN_TOKENS": f"ops:{ADMIN_TOKEN}", "IMLIMITS_CHECK_TOKENS": f"be:{CHECK_TOKEN}"}).start()
    console = ConsoleProcess("--listen", "127.0.0.1:0", "--target", server.target, "--sign-in").start()
    yield console
    console.stop()
    server.stop()
    redis_process.stop()


def test_operators_sign_in_with_an_admin_token_never_shown(browser: WebDriver,
                                                           signed_console: ConsoleProcess) -> None:
    driver = browser
    driver.delete_all_cookies()
    driver.get(f"{signed_console.url}/apps")
    assert "/signin" in driver.current_url
    screenshot(driver, "32-sign-in")
    fill(driver, "token", CHECK_TOKEN)
    submit(driver, "form[action='/signin'] button")
    assert "不是管理令牌" in text(driver, ".refusal")
    fill(driver, "token", ADMIN_TOKEN)
    submit(driver, "form[action='/signin'] button")
    assert driver.current_url.endswith("/apps")
    assert ADMIN_TOKEN not in driver.page_source
    assert all(ADMIN_TOKEN not in str(cookie.get("value")) for cookie in driver.get_cookies())
    submit(driver, "form[action='/signout'] button")
    assert "/signin" in driver.current_url
    driver.get(f"{signed_console.url}/apps")
    assert "/signin" in driver.current_url, "signed out means signed out"
    # Without a browser: every page but sign-in sends an anonymous visitor to sign in.
    assert Session(signed_console.url).get("/apps/1400000001")[0] == 303


def test_language_from_accept_language_and_the_switch(browser: WebDriver, console: ConsoleProcess) -> None:
    status, body = Session(console.url, language="en-US,en;q=0.9,zh;q=0.5").get("/apps")
    assert status == 200 and "<title>Apps" in body and 'lang="en"' in body
    status, body = Session(console.url, language="zh-CN,zh;q=0.9,en;q=0.8").get("/apps")
    assert "<title>应用列表" in body
    driver = browser
    driver.get(f"{console.url}/apps")
    driver.find_element(By.CSS_SELECTOR, "a.lang").click()
    assert driver.find_element(By.TAG_NAME, "h1").text == "Apps"
    screenshot(driver, "33-apps-english")
    driver.find_element(By.CSS_SELECTOR, "a.lang").click()
    assert driver.find_element(By.TAG_NAME, "h1").text == "应用列表"
