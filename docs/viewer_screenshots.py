"""Make the graph viewer's screenshots in docs/images/ (run by hand after changing the
viewer): each view of LeNet-5's and the Conv-BatchNorm model's graphs, opened from disk
in headless Chromium at 1200x900, as a learner sees them.

    python docs/viewer_screenshots.py      # needs chromium, chromium-driver and MNIST
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IMAGES = ROOT / "docs" / "images"
BN_MODEL = "examples/conv_bn_relu.py:ConvBNNet"


def browser(profile: str):
    from selenium import webdriver
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--force-device-scale-factor=1",
                "--window-size=1200,900", f"--user-data-dir={profile}"]:
        options.add_argument(arg)
    return webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path="/usr/bin/chromedriver"))


def opened(driver, page: Path) -> None:
    driver.get(page.as_uri())
    for _ in range(300):
        if driver.execute_script("return document.body.dataset.ready === 'true'"):
            return
        time.sleep(0.1)
    raise RuntimeError(f"{page}: the viewer did not start")


def click(driver, selector: str) -> None:
    driver.execute_script(f"document.querySelector({selector!r}).click()")


def main() -> int:
    IMAGES.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        pages = {}
        for name, model in (("lenet5", "lenet5"), ("conv_bn", BN_MODEL)):
            pages[name] = Path(tmp) / f"{name}.html"
            subprocess.run([sys.executable, str(ROOT / "scripts" / "visualize.py"), "--model", model,
                            "--out", str(pages[name])], check=True, cwd=ROOT)
        driver = browser(str(Path(tmp) / "profile"))
        try:
            opened(driver, pages["lenet5"])
            driver.save_screenshot(str(IMAGES / "viewer_forward.png"))
            for _ in range(12):  # the relu after the first convolution
                click(driver, "#step-next")
            driver.save_screenshot(str(IMAGES / "viewer_step.png"))
            opened(driver, pages["conv_bn"])
            click(driver, "#view-backward")
            driver.save_screenshot(str(IMAGES / "viewer_backward_collapsed.png"))
            click(driver, "#expand-all")  # every op, found by a search and zoomed to
            driver.find_element("id", "search").send_keys("features.1 (backward)\n")
            driver.save_screenshot(str(IMAGES / "viewer_backward_ops.png"))
        finally:
            driver.quit()
    for image in sorted(IMAGES.glob("viewer_*.png")):
        print(f"wrote {image.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
