"""The console as operators run it: a real imlimits-console process before the real server, driven by chromium."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webdriver import WebDriver

from harness import READY_TIMEOUT_SECONDS, ServerProcess

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "console"


class ConsoleProcess:
    """One imlimits-console process; its address is read from its own start-up line."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.args = args
        self.env = {**os.environ, **(env or {})}
        self.process: subprocess.Popen[str] | None = None
        self.url = ""
        self.output: list[str] = []
        self._ready = threading.Event()

    def start(self) -> ConsoleProcess:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "imlimits_console.main", *self.args], stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True, env=self.env)
        threading.Thread(target=self._read_output, daemon=True).start()
        if not self._ready.wait(READY_TIMEOUT_SECONDS) or not self.url:
            self.stop()
            raise RuntimeError("imlimits-console did not start:\n" + "".join(self.output))
        return self

    def _read_output(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line)
            match = re.search(r"serving on (http://[^ ]+/)", line)
            if match:
                self.url = match.group(1).rstrip("/")
                self._ready.set()
        self._ready.set()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


@pytest.fixture(scope="session")
def console(server: ServerProcess) -> Iterator[ConsoleProcess]:
    process = ConsoleProcess("--listen", "127.0.0.1:0", "--target", server.target).start()
    yield process
    process.stop()


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
    height = driver.execute_script(
        "return Math.max(document.documentElement.scrollHeight, document.body.scrollHeight)")
    driver.set_window_size(1280, max(700, min(int(height) + 40, 4000)))
    path = ARTIFACTS / f"{name}.png"
    driver.save_screenshot(str(path))
    driver.set_window_size(1280, 900)
    return path
