"""The console's read pages in chromium, on an app with months of history and some usage.

Bills, history and usage are shown as the service answered them: the page's
numbers are compared with the gRPC API's.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from imlimits_client import BillRule, Client, Edition, GroupType
from imlimits_client.display import money
from webconsole.conftest import ConsoleProcess, fill, screenshot, submit, text

TZ = ZoneInfo("Asia/Shanghai")


def months_back(count: int) -> tuple[int, int]:
    """(year, month) `count` months before the current one, in the service's default time zone."""
    now = datetime.now(TZ)
    index = now.year * 12 + now.month - 1 - count
    return index // 12, index % 12 + 1


def at(count: int, day: int) -> datetime:
    year, month = months_back(count)
    return datetime(year, month, day, 10, 0, tzinfo=TZ)


def month_text(count: int) -> str:
    year, month = months_back(count)
    return f"{year:04d}-{month:02d}"


@pytest.fixture
def lived_in(client: Client, app_id: int) -> int:
    """PRO with AV from half a year ago, a raised group limit, ULTIMATE two months ago; rooms and a group."""
    client.admin.create_app(app_id, at=at(7, 3))
    client.admin.upgrade(app_id, Edition.PRO, av_room_unlimited=True, at=at(6, 10))
    client.admin.change_plan(app_id, user_group_limit=1200, at=at(4, 5))
    client.admin.change_plan(app_id, edition=Edition.ULTIMATE, at=at(2, 1))
    for room in range(3):
        client.check.create_room(app_id, f"live-{room}", owner="host")
    client.check.create_group(app_id, "team-1", GroupType.WORK, owner="alice", members=["bob", "carol"])
    return app_id


def test_history_bills_and_chart_are_the_services(browser: WebDriver, console: ConsoleProcess, client: Client,
                                                  lived_in: int) -> None:
    driver = browser
    driver.get(f"{console.url}/apps/{lived_in}/history")
    bars = driver.find_elements(By.CSS_SELECTOR, "#chart rect")
    titles = [str(bar.find_element(By.TAG_NAME, "title").get_attribute("textContent")) for bar in bars]
    # From the month the app was created (7 months ago) on: no bar for a month before it existed.
    expected = [f"{month_text(k)}: {money(client.admin.get_bill(lived_in, month_text(k)).total, 'CNY')}"
                for k in range(7, -1, -1)]
    assert titles == expected
    assert "3099.00 CNY" in titles[-1]
    # The changes, newest first, in the console's words.
    first_row = text(driver, "#changes tbody tr:first-child")
    assert "变配" in first_row and "旗舰版-后付费" in first_row
    screenshot(driver, "20-history-with-bills")

    # Pick a month from the chart: its four lines, each with the service's reason.
    driver.find_element(By.CSS_SELECTOR, f"#chart a[href$='month={month_text(5)}']").click()
    assert month_text(5) in text(driver, "#bill-title")
    bill = client.admin.get_bill(lived_in, month_text(5))
    rows = driver.find_elements(By.CSS_SELECTOR, "#bill tbody tr")
    # Worded in Chinese from the bill's structure (its rule, each line's level, default and steps), the rule once.
    assert bill.rule is BillRule.HIGHEST_LEVEL
    assert text(driver, "#bill .rule") == f"计费规则：未调整业务版本的月份：各项按 {month_text(5)} 内的最高档位计费"
    assert [row.find_element(By.CSS_SELECTOR, ".reason").text for row in rows] == [
        "专业版按月收费", "", "未超出专业版默认值 500", "未超出专业版默认值 200"]
    assert "EDITION_" not in text(driver, "#bill") and "month without" not in text(driver, "#bill")
    assert money(bill.total, bill.currency) in text(driver, "#bill tfoot")
    screenshot(driver, "21-history-picked-month")

    # A month that has not begun is the service's refusal, on the page.
    driver.get(f"{console.url}/apps/{lived_in}/history?month=2999-01")
    assert "2999-01 尚未开始" in text(driver, ".refusal")


def test_usage_and_lookups(browser: WebDriver, console: ConsoleProcess, lived_in: int) -> None:
    driver = browser
    driver.get(f"{console.url}/apps/{lived_in}/usage")
    assert "3 / 无上限" in text(driver, ".meter")
    fill(driver, "user", "alice")
    fill(driver, "group", "team-1")
    submit(driver, "#lookup")
    result = text(driver, "#lookup-result")
    assert "用户 alice 已创建及加入的群组" in result and "1 / 1200" in result
    assert "群 team-1 的成员" in result and "3 / 2000" in result
    screenshot(driver, "22-usage-lookup")

    driver.get(f"{console.url}/apps")
    card = driver.find_element(By.CSS_SELECTOR, f".card[data-app-id='{lived_in}']")
    assert "旗舰版" in card.text and "使用中" in card.text
    screenshot(driver, "23-apps")
    card.click()
    assert "旗舰版-后付费" in text(driver, "#plan")
    screenshot(driver, "24-app-ultimate")


def test_usage_shows_what_is_held(browser: WebDriver, console: ConsoleProcess, client: Client, app_id: int) -> None:
    """Held items (docs/holds.md) are named apart from the confirmed ones, and disappear once confirmed."""
    client.admin.create_app(app_id)
    client.check.create_group(app_id, "team", GroupType.WORK, owner="alice")
    held = client.check.join_group(app_id, "team", ["bob", "carol"], hold_seconds=600)
    client.check.create_room(app_id, "live", hold_seconds=600)
    driver = browser
    driver.get(f"{console.url}/apps/{app_id}/usage?group=team")
    assert text(driver, "#held") == ("其中保留中、待确认（已计入上方用量）：2 个保留，1 个群组（含 1 个音视频聊天室），"
                                     "2 个群成员关系")
    assert text(driver, "#held-members") == "其中 2 个保留中、待确认"
    screenshot(driver, "25-usage-held")
    client.check.confirm_hold(app_id, held.hold_id)
    driver.get(f"{console.url}/apps/{app_id}/usage?group=team")
    assert not driver.find_elements(By.CSS_SELECTOR, "#held-members")
