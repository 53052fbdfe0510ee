"""The console in chromium: create an app, 升级, 变配, the lock, a refused second change, 停用.

Each step is checked on the page and, at the end, through the gRPC API: every
change happened exactly once. Screenshots of each page go to test-artifacts/.
"""

from __future__ import annotations

from collections import Counter

from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from imlimits_client import AppStatus, Client, Edition
from webconsole.conftest import ConsoleProcess, fill, screenshot, submit, text


def test_create_upgrade_change_refuse_deactivate(browser: WebDriver, console: ConsoleProcess, client: Client,
                                                 app_id: int) -> None:
    driver = browser
    driver.get(f"{console.url}/apps")
    assert "应用列表" in driver.title
    fill(driver, "app_id", str(app_id))
    submit(driver, ".create-app button")
    assert driver.current_url.endswith(f"/apps/{app_id}?done=created")
    assert text(driver, ".flash") == "应用已创建。"
    assert "体验版" in text(driver, "#plan")
    screenshot(driver, "02-app-trial")

    # 升级 to PRO: the preview shows the plan, the lock and both bills before anything changes.
    submit(driver, "#action-upgrade")
    assert text(driver, "#dialog-title") == "升级提醒"
    screenshot(driver, "03-upgrade-dialog")
    driver.find_element(By.CSS_SELECTOR, "input[name=edition][value=PRO]").click()
    submit(driver, "#preview")
    assert "专业版-后付费" in text(driver, "#preview-plan")
    assert "业务版本" in text(driver, "#newly-locked")
    assert "0.00 CNY" in text(driver, "#bill-this-total")
    assert "999.00 CNY" in text(driver, "#bill-next-total")
    assert client.admin.get_app(app_id).edition is Edition.TRIAL, "a preview changes nothing"
    screenshot(driver, "04-upgrade-preview")
    submit(driver, "#confirm")
    assert text(driver, ".flash") == "升级成功。"
    driver.get(f"{console.url}/apps/{app_id}/upgrade")
    assert not driver.find_elements(By.CSS_SELECTOR, ".dialog"), "升级 is offered on a Trial app only"
    driver.get(f"{console.url}/apps/{app_id}")
    lock = driver.find_element(By.CSS_SELECTOR, ".lock[data-item=edition]").text
    assert "本月已变配" in lock and "起可再次变配" in lock
    reopens = lock.split("·")[1].split()[0]
    screenshot(driver, "05-app-pro-locked")

    # 变配 one add-on, then see its lock.
    submit(driver, "#action-change")
    assert text(driver, "#dialog-title") == "变配提醒"
    fill(driver, "user_group_limit", "800")
    screenshot(driver, "06-change-dialog")
    submit(driver, "#preview")
    assert "扩展单人可加入群组数上限" in text(driver, "#newly-locked")
    screenshot(driver, "07-change-preview")
    submit(driver, "#confirm")
    assert text(driver, ".flash") == "变配成功。"
    assert driver.find_elements(By.CSS_SELECTOR, ".lock[data-item=user_group_limit]")
    driver.get(f"{console.url}/apps/{app_id}")
    screenshot(driver, "07b-app-page")  # docs/console.png

    # A second change of the same add-on this month: refused in the dialog, with its reason and day.
    submit(driver, "#action-change")
    fill(driver, "user_group_limit", "900")
    submit(driver, "#preview")
    refusal = text(driver, "#refusal")
    assert "扩展单人可加入群组数上限：本月已变配" in refusal
    # The day the page shows for the lock is the day the service's refusal names, and it is said in Chinese.
    assert f"{reopens} 起可再次变配" in refusal and "may change again" not in refusal
    assert "可随时改回月初的800" not in refusal and "可随时改回月初的500" in refusal
    screenshot(driver, "08-change-refused")

    driver.get(f"{console.url}/apps/{app_id}/usage")
    screenshot(driver, "09-usage")
    driver.get(f"{console.url}/apps/{app_id}/history")
    # Created this month: the chart has no bars for months before the app existed.
    assert len(driver.find_elements(By.CSS_SELECTOR, "#chart rect")) == 1
    assert len(driver.find_elements(By.CSS_SELECTOR, "#bill tbody tr")) == 4
    screenshot(driver, "10-history")

    # 停用 asks for the app id; a wrong one changes nothing.
    driver.get(f"{console.url}/apps/{app_id}")
    submit(driver, "#action-deactivate")
    assert text(driver, "#dialog-title") == "停用提醒"
    fill(driver, "typed_app_id", str(app_id + 1))
    submit(driver, "#confirm")
    assert "不符" in text(driver, "#refusal")
    assert client.admin.get_app(app_id).status is AppStatus.ACTIVE
    fill(driver, "typed_app_id", str(app_id))
    screenshot(driver, "11-deactivate-dialog")
    submit(driver, "#confirm")
    assert text(driver, ".flash") == "应用已停用。"
    assert "只读" in text(driver, ".readonly")
    assert not driver.find_elements(By.CSS_SELECTOR, ".actions a")
    screenshot(driver, "12-app-deactivated")
    # A deactivated app's dialogs are not offered, even by URL.
    driver.get(f"{console.url}/apps/{app_id}/change")
    assert not driver.find_elements(By.CSS_SELECTOR, ".dialog")

    driver.get(f"{console.url}/apps")
    assert driver.find_elements(By.CSS_SELECTOR, f".card[data-app-id='{app_id}']")
    screenshot(driver, "01-apps")

    # Through the gRPC API: each change happened exactly once.
    changes = client.admin.list_plan_changes(app_id)
    explicit = Counter((change.operation, change.item) for change in changes if not change.implicit)
    assert explicit == Counter({("CreateApp", "status"): 1, ("Upgrade", "edition"): 1,
                                ("ChangePlan", "user_group_limit"): 1, ("Deactivate", "status"): 1})
    app = client.admin.get_app(app_id)
    assert (app.edition, app.user_group_limit, app.status) == (Edition.PRO, 800, AppStatus.DEACTIVATED)
