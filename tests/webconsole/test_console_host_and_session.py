"""DNS rebinding, a tossed session cookie and a hostile month: what a page of another site can try (issue 22).

With DNS rebinding the attacker's own name resolves to 127.0.0.1, so the
browser treats the console as the attacker's origin, cookies and CSRF token
included; only the Host and Origin the browser sends still name the attacker.
"""

from __future__ import annotations

import http.client
import re
from urllib.parse import quote, urlsplit

from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from imlimits_client import AppStatus, Client, NotFound
from webconsole.browserless import Session
from webconsole.conftest import ConsoleProcess, screenshot

_CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')
_COOKIE = re.compile(r"imlimits_console_session=([^;]+)")


def raw(console: ConsoleProcess, method: str, path: str, headers: dict[str, str],
        body: str = "") -> tuple[int, dict[str, str], str]:
    """One request with exactly these headers (Host included), as a browser on a rebound name would send it."""
    address = urlsplit(console.url)
    connection = http.client.HTTPConnection(address.hostname or "", address.port, timeout=30)
    try:
        connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        for name, value in headers.items():
            connection.putheader(name, value)
        if body:
            connection.putheader("Content-Type", "application/x-www-form-urlencoded")
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body.encode() if body else None)
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read().decode()
    finally:
        connection.close()


def test_a_rebound_host_name_is_refused(console: ConsoleProcess, client: Client, app_id: int) -> None:
    """Issue 22: `Host: attacker.example:PORT` got a deactivate page with a CSRF token, and the post went through."""
    client.admin.create_app(app_id)
    port = urlsplit(console.url).port
    foreign = {"Host": f"attacker.example:{port}"}
    status, _, body = raw(console, "GET", f"/apps/{app_id}/deactivate", foreign)
    assert status == 400 and "csrf_token" not in body
    # The attacker's page posts with its own Host and Origin (and a token it could not read anyway).
    status, _, _ = raw(console, "POST", f"/apps/{app_id}/deactivate",
                       {**foreign, "Origin": f"http://attacker.example:{port}"},
                       f"csrf_token=x&typed_app_id={app_id}")
    assert status == 400
    # The console's own names keep working.
    for host in (f"127.0.0.1:{port}", f"localhost:{port}"):
        assert raw(console, "GET", "/apps", {"Host": host})[0] == 200, host
    assert client.admin.get_app(app_id).status is AppStatus.ACTIVE


def test_every_post_needs_the_consoles_own_origin(console: ConsoleProcess, client: Client, app_id: int) -> None:
    client.admin.create_app(app_id)
    browser = Session(console.url)
    token = browser.csrf(f"/apps/{app_id}/deactivate")
    form = {"csrf_token": token, "typed_app_id": str(app_id)}
    port = urlsplit(console.url).port
    for origin in (f"http://attacker.example:{port}", "null", f"http://127.0.0.1:{(port or 0) + 1}",
                   f"http://localhost:{port}"):
        status, body = browser.post(f"/apps/{app_id}/deactivate", form, headers={"Origin": origin})
        assert status == 403 and "Origin" in body, origin
    # A post without any Origin (not what a browser sends from a page) is refused too.
    status, _, _ = raw(console, "POST", f"/apps/{app_id}/deactivate",
                       {"Host": f"127.0.0.1:{port}", "Cookie": "; ".join(f"{c.name}={c.value}" for c in browser.jar)},
                       f"csrf_token={token}&typed_app_id={app_id}")
    assert status == 403
    assert client.admin.get_app(app_id).status is AppStatus.ACTIVE, "nothing changed"
    # From the console's own page, the same form works.
    assert browser.post(f"/apps/{app_id}/deactivate", form)[0] == 303
    assert client.admin.get_app(app_id).status is AppStatus.DEACTIVATED


def test_a_session_cookie_the_console_did_not_issue_is_never_adopted(console: ConsoleProcess, client: Client,
                                                                    app_id: int) -> None:
    """Issue 22: any cookie of up to 64 characters was a session, and its CSRF token was the attacker's to read."""
    port = urlsplit(console.url).port
    tossed = "attacker-chose-this-session-id"
    # The attacker reads the token a page gives that cookie...
    status, headers, body = raw(console, "GET", "/apps", {"Host": f"127.0.0.1:{port}",
                                                           "Cookie": f"imlimits_console_session={tossed}"})
    assert status == 200
    issued = _COOKIE.search(headers.get("set-cookie", ""))
    assert issued and issued.group(1) != tossed, "a fresh id replaces the tossed one"
    match = _CSRF.search(body)
    assert match
    # ...and the victim's browser, holding the tossed cookie, posts it from a page of the console's origin.
    status, _, _ = raw(console, "POST", "/apps", {"Host": f"127.0.0.1:{port}", "Origin": console.url,
                                                   "Cookie": f"imlimits_console_session={tossed}"},
                       f"csrf_token={match.group(1)}&app_id={app_id}")
    assert status == 403
    try:
        client.admin.get_app(app_id)
        raise AssertionError("the forged post created an app")
    except NotFound:
        pass
    # Two visits with the same tossed cookie are two sessions, each with a token of its own.
    other = _CSRF.search(raw(console, "GET", "/apps", {"Host": f"127.0.0.1:{port}",
                                                        "Cookie": f"imlimits_console_session={tossed}"})[2])
    assert other and other.group(1) != match.group(1)


HOSTILE_MONTH = "<b id=pwn>x</b>"


def test_a_hostile_month_on_the_history_page_is_shown_as_text(browser: WebDriver, console: ConsoleProcess,
                                                              client: Client, app_id: int) -> None:
    """The history page's month error repeats what was typed: escaped, never markup (issue 22, item 8)."""
    client.admin.create_app(app_id)
    status, body = Session(console.url).get(f"/apps/{app_id}/history?month={quote(HOSTILE_MONTH)}")
    assert status == 400 and "&lt;b id=pwn&gt;" in body and HOSTILE_MONTH not in body
    driver = browser
    driver.get(f"{console.url}/apps/{app_id}/history?month={quote(HOSTILE_MONTH)}")
    assert HOSTILE_MONTH in driver.find_element(By.ID, "month-error").text
    assert driver.find_elements(By.CSS_SELECTOR, "#pwn, #month-error b") == []
    screenshot(driver, "34-hostile-month")
