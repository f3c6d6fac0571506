"""Pages seen as a person sees them: headless Chromium driven by Selenium through the
system's chromedriver (a fresh profile each test). Every page test fails on a browser
console error, a Content-Security-Policy violation included: the `browser` fixture
checks the console when the test ends, and `console_errors` can be asked earlier."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import require_module, require_tool
from PIL import Image

WINDOW = (1200, 900)


@pytest.fixture
def browser(tmp_path: Path):
    """A headless Chromium session; the test fails if the page logged a console error."""
    webdriver = require_module("selenium.webdriver", "pip install -e '.[dev]'")
    chromium = require_tool("chromium", "apt-get install chromium")
    chromedriver = require_tool("chromedriver", "apt-get install chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                "--force-device-scale-factor=1", f"--window-size={WINDOW[0]},{WINDOW[1]}",
                f"--user-data-dir={tmp_path / 'profile'}"]:
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = webdriver.ChromeService(executable_path=chromedriver, log_output=str(tmp_path / "chromedriver.log"))
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_script_timeout(10)
    driver.set_page_load_timeout(20)
    try:
        yield driver
        errors = console_errors(driver)
        if errors:
            pytest.fail(f"the page logged console errors: {errors}", pytrace=False)
    finally:
        driver.quit()


def console_errors(driver: Any) -> list[str]:
    """The console's errors since the last call (SEVERE entries: script errors, failed
    loads, CSP violations)."""
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def draw(driver: Any, element: Any, strokes: list[list[tuple[int, int]]]) -> None:
    """Draw `strokes` (lists of points from the element's centre, in CSS pixels) with the mouse."""
    from selenium.webdriver.common.action_chains import ActionChains
    for stroke in strokes:
        chain = ActionChains(driver, duration=0).move_to_element_with_offset(element, *stroke[0]).click_and_hold()
        for x, y in stroke[1:]:
            chain = chain.move_to_element_with_offset(element, x, y)
        chain.release().perform()


def screenshot(driver: Any, path: Path) -> np.ndarray:
    """The visible page as RGB pixels, also saved to `path` for a person to look at."""
    png = driver.get_screenshot_as_png()
    path.write_bytes(png)
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
