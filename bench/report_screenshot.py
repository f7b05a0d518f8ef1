"""``python -m bench.report_screenshot REPORT.html OUT.png``: open a spurlab report in headless Chromium, check
it (no console errors, every image loaded) and save a screenshot. Needs selenium and Debian's ``chromium`` and
``chromium-driver`` (the browser test uses the same functions)."""

from __future__ import annotations

import argparse
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def missing() -> str | None:
    """Why a headless browser cannot run here (None when it can)."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed"
    if not any(shutil.which(b) for b in BROWSERS):
        return "no chromium browser (apt-get install chromium chromium-driver)"
    if not shutil.which("chromedriver"):
        return "no chromedriver (apt-get install chromium-driver)"
    return None


@contextmanager
def browser(width: int = 1280, height: int = 1600) -> Iterator[Any]:
    """A headless Chromium driven by selenium that keeps the page's console log."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                f"--window-size={width},{height}"):
        options.add_argument(arg)
    binary = next((shutil.which(b) for b in BROWSERS if shutil.which(b)), None)
    if binary:
        options.binary_location = binary
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(shutil.which("chromedriver")))
    try:
        yield driver
    finally:
        driver.quit()


def load(driver: Any, page: Path) -> dict[str, Any]:
    """Open ``page``; its console errors and the images that did not load."""
    driver.get(Path(page).resolve().as_uri())
    broken = driver.execute_script(
        "return Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.alt);")
    errors = [e["message"] for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
    return {"errors": errors, "broken_images": broken,
            "images": driver.execute_script("return document.images.length;")}


def screenshot(driver: Any, out: Path, max_height: int = 6000) -> Path:
    """A PNG of the page from the top: the window grows to the page's height, at most ``max_height``."""
    height = driver.execute_script("return document.documentElement.scrollHeight;")
    driver.set_window_size(1280, min(int(height) + 40, max_height))
    out.parent.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(out))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.report_screenshot", description=__doc__)
    parser.add_argument("report", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--max-height", type=int, default=6000, help="crop the page at this many pixels")
    args = parser.parse_args(argv)
    why = missing()
    if why:
        parser.exit(2, f"error: {why}\n")
    with browser() as driver:
        state = load(driver, args.report)
        if state["errors"] or state["broken_images"]:
            parser.exit(1, f"error: {state}\n")
        screenshot(driver, args.out, args.max_height)
    print(f"wrote {args.out} ({state['images']} images, no console errors)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
