"""What made a newcomer hesitate in the console (issue 23), each checked in chromium or over HTTP.

The screenshots a reviewer looks at: test-artifacts/console/40-preview-1280x800.png (the preview as the
window shows it, nothing scrolled) and 41-usage-420px.png (the usage page at phone width; 41-app-420px.png
and 41-history-420px.png beside it).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from imlimits_client import Client, Edition, GroupType
from webconsole.browserless import Session
from webconsole.conftest import ARTIFACTS, ConsoleProcess, fill, screenshot, submit, text


@pytest.fixture
def window(browser: WebDriver) -> Iterator[WebDriver]:
    """The shared browser, in Chinese, put back to its usual size afterwards."""
    browser.delete_all_cookies()
    yield browser
    browser.set_window_size(1280, 900)
    browser.delete_all_cookies()


def viewport(driver: WebDriver, width: int, height: int) -> None:
    """Size the window so that the page itself (the viewport) is `width` by `height` CSS pixels."""
    driver.set_window_size(width, height)
    inner = driver.execute_script("return [window.innerWidth, window.innerHeight]")
    driver.set_window_size(2 * width - inner[0], 2 * height - inner[1])
    assert driver.execute_script("return [window.innerWidth, window.innerHeight]") == [width, height]


def window_shot(driver: WebDriver, name: str) -> Path:
    """What the window shows, nothing scrolled."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    driver.save_screenshot(str(path))
    return path


def test_usage_of_an_unknown_group_says_the_group_was_not_found(console: ConsoleProcess, client: Client,
                                                               app_id: int) -> None:
    client.admin.create_app(app_id)
    status, body = Session(console.url).get(f"/apps/{app_id}/usage?group=nosuch")
    assert status == 404
    assert "未找到群组 nosuch" in body and "未找到该应用" not in body
    assert 'id="group-count"' in body, "the usage page itself, with the app's counts"


def test_a_groups_own_cap_is_the_limit_its_bar_shows(window: WebDriver, console: ConsoleProcess, client: Client,
                                                     app_id: int) -> None:
    client.admin.create_app(app_id)
    assert client.check.create_group(app_id, "pair", GroupType.WORK, owner="alice", max_members=1).allowed
    window.get(f"{console.url}/apps/{app_id}/usage?group=pair")
    result = text(window, "#lookup-result")
    assert "1 / 1" in result and "1 / 20" not in result
    assert "工作群，群自身上限 1" in text(window, "#group-limit")
    assert window.find_elements(By.CSS_SELECTOR, "#lookup-result .meter-fill.full")
    client.check.create_room(app_id, "stage", owner="host")
    window.get(f"{console.url}/apps/{app_id}/usage?group=stage")
    assert "0 / 无上限" in text(window, "#lookup-result") and "音视频聊天室不限人数" in text(window, "#group-limit")


def test_a_deactivated_app_offers_no_change_and_says_so(window: WebDriver, console: ConsoleProcess,
                                                        client: Client, app_id: int) -> None:
    client.admin.create_app(app_id)
    client.admin.upgrade(app_id, Edition.PRO, user_group_limit=800)  # locks the edition and the limit
    client.admin.deactivate(app_id)
    window.get(f"{console.url}/apps/{app_id}")
    plan = text(window, "#plan")
    assert "本月已变配" not in plan and "起可再次变配" not in plan
    assert [cell.text for cell in window.find_elements(By.CSS_SELECTOR, "#plan [data-item]")] == \
        ["不可变配：已停用"] * 4


def test_history_times_are_in_the_services_zone_and_name_it(window: WebDriver, console: ConsoleProcess,
                                                            client: Client, app_id: int) -> None:
    client.admin.create_app(app_id, at=datetime(2026, 1, 5, 23, 30, tzinfo=UTC))  # 07:30 on the 6th in Shanghai
    window.get(f"{console.url}/apps/{app_id}/history")
    assert text(window, "#at-head") == "时间（Asia/Shanghai）"
    assert text(window, "#changes td.at") == "2026-01-06 07:30"
    assert "UTC" not in text(window, "#changes")
    assert "Asia/Shanghai" in text(window, "main .hint")
    window.get(f"{console.url}/apps/{app_id}")
    assert "Asia/Shanghai" in text(window, "#zone")


def test_the_av_add_on_says_not_applicable_only_where_it_is_not(window: WebDriver, console: ConsoleProcess,
                                                               client: Client, app_id: int) -> None:
    client.admin.create_app(app_id)
    window.get(f"{console.url}/apps/{app_id}/upgrade")
    assert "不涉及" not in text(window, ".dialog") and "仅专业版可开通" in text(window, "#av-hint")
    client.admin.upgrade(app_id, Edition.PRO)
    window.get(f"{console.url}/apps/{app_id}/change")
    assert "不涉及" not in text(window, ".dialog") and not window.find_elements(By.ID, "av-hint")
    other = app_id + 10**9  # beyond the ids the other tests take
    client.admin.create_app(other)
    client.admin.upgrade(other, Edition.ULTIMATE)
    window.get(f"{console.url}/apps/{other}/change")
    assert "当前为旗舰版：不涉及" in text(window, "#av-hint")


def test_the_preview_says_each_rule_once_and_keeps_confirm_in_view(window: WebDriver, console: ConsoleProcess,
                                                                   client: Client, app_id: int) -> None:
    client.admin.create_app(app_id)
    created_on = client.admin.get_bill(app_id, _this_month(client, app_id)).created_on
    viewport(window, 1280, 800)
    window.get(f"{console.url}/apps/{app_id}/upgrade")
    window.find_element(By.CSS_SELECTOR, "input[name=edition][value=PRO]").click()
    window.find_element(By.CSS_SELECTOR, "input[name=av_room_unlimited][value=true]").click()
    fill(window, "user_group_limit", "800")
    fill(window, "group_member_limit", "300")
    submit(window, "#preview")
    assert window.execute_script("return window.scrollY") == 0
    bottom = window.execute_script("return document.getElementById('confirm').getBoundingClientRect().bottom")
    assert bottom <= 800, f"the confirm button is at y={bottom}, below the window"
    window_shot(window, "40-preview-1280x800")
    screenshot(window, "40b-preview-whole-page")
    dialog = text(window, ".dialog")
    # Each month's rule once; no protocol name; the app is charged as it started, not as of a 1st it missed.
    assert dialog.count("调整业务版本当月") == 1 and dialog.count("未调整业务版本的月份") == 1
    assert "EDITION_" not in dialog and "month of an edition change" not in dialog
    assert f"按应用创建时（{created_on}）的配置计费" in text(window, "#rule-this")
    assert "月初" not in text(window, "#rule-this")
    assert "专业版按月收费" in text(window, "#preview-bills")


def test_refusals_and_input_errors_in_the_pages_language(window: WebDriver, console: ConsoleProcess,
                                                         client: Client, app_id: int) -> None:
    client.admin.create_app(app_id)
    window.get(f"{console.url}/apps/{app_id}/upgrade")
    window.find_element(By.CSS_SELECTOR, "input[name=edition][value=ULTIMATE]").click()
    fill(window, "user_group_limit", "100")
    submit(window, "#preview")
    refusal = text(window, "#refusal")
    assert "扩展单人可加入群组数上限须在 1000–5000 之间（旗舰版默认值为 1000），输入为 100" in refusal
    assert "EDITION_" not in refusal and "must be from" not in refusal
    status, body = Session(console.url, language="en-US").post(f"/apps/{app_id}/upgrade/preview", {
        "csrf_token": Session(console.url).csrf(), "edition": "ULTIMATE", "user_group_limit": "100"})
    assert status == 403  # another browser's token: refused before anything is asked
    english = Session(console.url, language="en-US")
    status, body = english.post(f"/apps/{app_id}/upgrade/preview", {
        "csrf_token": english.csrf(f"/apps/{app_id}/upgrade"), "edition": "ULTIMATE", "user_group_limit": "100"})
    assert status == 400
    assert "Groups one user may create and join must be from 1000 (the Ultimate default) to 5000, got 100" in body
    assert "EDITION_" not in body


def test_pages_at_phone_width(window: WebDriver, console: ConsoleProcess, client: Client, app_id: int) -> None:
    client.admin.create_app(app_id)
    client.admin.upgrade(app_id, Edition.PRO, user_group_limit=800)
    client.check.create_group(app_id, "team", GroupType.WORK, owner="alice", members=["bob"], max_members=5)
    viewport(window, 420, 860)
    for path in (f"/apps/{app_id}/usage?user=alice&group=team", f"/apps/{app_id}", f"/apps/{app_id}/history"):
        window.get(console.url + path)
        # The page itself never scrolls sideways (a wide table scrolls inside its panel)...
        wide = window.execute_script("""
            const width = document.documentElement.clientWidth;
            return [...document.querySelectorAll('main *, header *')].filter(e => !e.closest('.scroll')
              && e.getBoundingClientRect().right > width + 0.5).map(e => e.tagName + '.' + e.className);""")
        assert wide == [], (path, wide)
        # ...and no header breaks over two lines (变配 stays one word).
        tall = window.execute_script("""
            return [...document.querySelectorAll('th')].filter(th => {
              const style = getComputedStyle(th);
              return th.getBoundingClientRect().height > 2.2 * parseFloat(style.lineHeight) && th.rowSpan === 1;
            }).map(th => th.textContent.trim());""")
        assert tall == [], (path, tall)
        # No cell is squeezed into lines of a few characters ("专业 / 版- / 后付 / 费").
        squeezed = window.execute_script("""
            return [...document.querySelectorAll('td')].filter(td => {
              const text = td.textContent.replace(/\\s+/g, ' ').trim();
              const content = document.createRange();
              content.selectNodeContents(td);
              const lines = Math.round(content.getBoundingClientRect().height
                / parseFloat(getComputedStyle(td).lineHeight));
              return text.length >= 6 && lines >= 2 && text.length / lines < 5;
            }).map(td => td.textContent.trim());""")
        assert squeezed == [], (path, squeezed)
        name = path.rpartition("/")[2].partition("?")[0]
        screenshot(window, f"41-{'app' if name.isdigit() else name}-420px")
    assert "1200" not in text(window, "main")  # the history page of this app: nothing invented


def _this_month(client: Client, app_id: int) -> str:
    changes = client.admin.list_plan_changes(app_id)
    return changes[0].at.strftime("%Y-%m")
