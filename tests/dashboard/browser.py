"""A real headless Chromium for the dashboard's tests: Debian's ``chromium`` driven
through its ``chromium-driver`` by selenium (``make bootstrap`` installs both as root with
apt-get). Where either is missing the browser tests are skipped, saying what to install.

Each test saves a screenshot under ``results/screenshots/`` (the whole page, not just
the window), the artifact to look at when one fails.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import pytest

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

SCREENSHOTS = Path(__file__).resolve().parents[2] / "results" / "screenshots"
BROWSERS = ("chromium", "chromium-browser", "google-chrome")
T = TypeVar("T")


def executables() -> tuple[str, str] | None:
    """(browser, driver) found on this machine, or None."""
    browser = next((found for name in BROWSERS if (found := shutil.which(name))), None)
    driver = shutil.which("chromedriver") or (
        "/usr/lib/chromium/chromedriver"
        if os.access("/usr/lib/chromium/chromedriver", os.X_OK)
        else None
    )
    return (browser, driver) if browser and driver else None


@contextmanager
def chromium(width: int = 1440, height: int = 1000) -> Iterator[WebDriver]:
    found = executables()
    if found is None:
        pytest.skip(
            "the dashboard's browser tests need Chromium and its driver: "
            "apt-get install chromium chromium-driver (make bootstrap does it as root)"
        )
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip("the dashboard's browser tests need selenium (make bootstrap installs it)")
    browser, driver_path = found
    os.environ.setdefault("SE_OFFLINE", "true")  # never let selenium fetch a driver
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for argument in (
        "--headless=new",
        "--no-sandbox",  # root in a container has no user namespace to sandbox with
        "--disable-dev-shm-usage",
        "--disable-gpu",
        f"--window-size={width},{height}",
        "--hide-scrollbars",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
    try:
        yield driver
    finally:
        driver.quit()


def screenshot(driver: WebDriver, name: str) -> Path:
    """The whole page as ``results/screenshots/<name>.png``."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    width, height = driver.get_window_size()["width"], driver.get_window_size()["height"]
    full = int(driver.execute_script("return document.documentElement.scrollHeight"))
    driver.set_window_size(width, max(height, full + 120))
    driver.execute_script("window.scrollTo(0, 0)")
    try:
        driver.save_screenshot(str(path))
    finally:
        driver.set_window_size(width, height)
    return path


def until(condition: Callable[[], T | None], timeout: float, what: str) -> T:
    """Poll ``condition`` until it returns something true; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while True:
        try:
            value = condition()
            if value:
                return value
        except Exception as exc:  # a node replaced by a poll between two calls: try again
            last = exc
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {what}" + (f" ({last})" if last else ""))
        time.sleep(0.05)


__all__ = ["SCREENSHOTS", "chromium", "executables", "screenshot", "until"]
