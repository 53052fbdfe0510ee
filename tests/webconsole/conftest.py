"""The console as operators run it: a real imlimits-console process before the real server, driven by chromium."""

from __future__ import annotations

import base64
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.chromium.webdriver import ChromiumDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.expected_conditions import staleness_of
from selenium.webdriver.support.wait import WebDriverWait

from harness import RedisProcess, ServerProcess, WatchedProcess
from imlimits_client import Client

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "console"


class ConsoleProcess(WatchedProcess):
    """One imlimits-console process; its address is read from its own start-up line."""

    name = "imlimits-console"

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        super().__init__(*args, env=env)
        self.url = ""

    def command(self) -> list[str]:
        return [sys.executable, "-m", "imlimits_console.main", *self.args]

    def read_ready(self, line: str) -> bool:
        match = re.search(r"serving on (http://[^ ]+/)", line)
        if match:
            self.url = match.group(1).rstrip("/")
        return match is not None

    def start(self) -> ConsoleProcess:
        self.launch()
        return self


@pytest.fixture(scope="session")
def console_server() -> Iterator[ServerProcess]:
    """A server of the console's own, so the apps page lists only what these tests made."""
    redis_process = RedisProcess().start()
    process = ServerProcess("--redis-url", redis_process.url, "--trust-client-time").start()
    yield process
    process.stop()
    redis_process.stop()


@pytest.fixture(scope="session")
def console(console_server: ServerProcess) -> Iterator[ConsoleProcess]:
    process = ConsoleProcess("--listen", "127.0.0.1:0", "--target", console_server.target).start()
    yield process
    process.stop()


@pytest.fixture
def client(console_server: ServerProcess) -> Iterator[Client]:
    with Client(console_server.target, admin_timeout=10, check_timeout=10) as connected:
        yield connected


def chromium_options(language: str = "zh-CN") -> tuple[Options, str]:
    """Debian's chromium, headless, with nothing fetched from the network and a fresh profile."""
    profile = tempfile.mkdtemp(prefix="imlimits-chromium-")
    options = Options()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                 "--window-size=1280,900", f"--user-data-dir={profile}", f"--lang={language}"):
        options.add_argument(flag)
    options.add_experimental_option("prefs", {"intl.accept_languages": language})
    return options, profile


@pytest.fixture(scope="session")
def browser() -> Iterator[WebDriver]:
    if not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)):
        pytest.fail("chromium and chromium-driver are not installed: run `make test`, which installs them")
    options, profile = chromium_options()
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def screenshot(driver: WebDriver, name: str) -> Path:
    """The whole page, as an operator would scroll through it, under test-artifacts/console/."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    if not isinstance(driver, ChromiumDriver):
        raise TypeError("screenshots use chromium's DevTools protocol")
    size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    # Captured beyond the viewport the page has no vertical scrollbar, so it lays out at the window's whole width.
    width = max(size["width"], driver.execute_script("return window.innerWidth"))
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": width, "height": min(size["height"], 4000), "scale": 1}})
    path = ARTIFACTS / f"{name}.png"
    path.write_bytes(base64.b64decode(shot["data"]))
    return path


def text(driver: WebDriver, css: str) -> str:
    return str(driver.find_element(By.CSS_SELECTOR, css).text)


def submit(driver: WebDriver, css: str) -> None:
    """Click, and wait until the browser has left this page for the answer (never a fixed sleep)."""
    page = driver.find_element(By.TAG_NAME, "html")
    driver.find_element(By.CSS_SELECTOR, css).click()
    WebDriverWait(driver, 20).until(staleness_of(page))


def fill(driver: WebDriver, name: str, value: str) -> None:
    field = driver.find_element(By.NAME, name)
    field.clear()
    field.send_keys(value)
