"""Open rendered pages in headless Chromium, at desktop and phone width: screenshots, console errors,
images that failed to load.

Needs the `playwright` Python package (the test extra) and a Chromium binary (Debian package
``chromium``; its path from ``$HARNESS_CHROMIUM`` or ``/usr/bin/chromium``). Playwright drives the
system browser: nothing is downloaded.

>>> checks = check_pages([Path("out/index.html")], Path("out/screenshots"))  # doctest: +SKIP
>>> checks[0].console_errors, checks[0].broken_images                       # doctest: +SKIP
([], [])
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@dataclass
class PageCheck:
    """One rendered page opened in Chromium: its screenshot, console errors, broken images, external requests."""

    page: Path
    screenshot: Path
    console_errors: list[str] = field(default_factory=list)
    broken_images: list[str] = field(default_factory=list)
    images: int = 0
    external_requests: list[str] = field(default_factory=list)


def chromium_path() -> str:
    """The Chromium binary: ``$HARNESS_CHROMIUM``, else ``chromium`` or ``chromium-browser`` on the PATH."""
    found = os.environ.get("HARNESS_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        raise FileNotFoundError("Chromium not found: install it (apt-get install chromium) or set HARNESS_CHROMIUM")
    return found


WIDTHS = {"": 1280, "-phone": 390}  # desktop and phone: the screenshot's name suffix -> viewport width


def _watch(page, check: PageCheck) -> None:
    """Record the page's console errors, uncaught exceptions and requests that leave the machine."""
    page.on("console", lambda message: check.console_errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: check.console_errors.append(str(error)))
    page.on(
        "request",
        lambda request: (
            check.external_requests.append(request.url)
            if not request.url.startswith(("file:", "data:", "about:"))
            else None
        ),
    )


def _check(browser, page_path: Path, screenshot: Path, width: int) -> PageCheck:
    """Open one page at one width, note what went wrong, take its full-page screenshot."""
    check = PageCheck(page=page_path, screenshot=screenshot)
    page = browser.new_page(viewport={"width": width, "height": 900})
    _watch(page, check)
    page.goto(page_path.resolve().as_uri(), wait_until="load")
    check.images = page.evaluate("document.images.length")
    check.broken_images = page.evaluate(
        "Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.alt || i.src.slice(0, 60))"
    )
    page.screenshot(path=str(screenshot), full_page=True)
    page.close()
    return check


def check_pages(pages: list[Path], screenshots: Path, widths: dict[str, int] | None = None) -> list[PageCheck]:
    """Load each page offline at each width (desktop, phone: ``WIDTHS``), record console errors, broken images
    and any network request, and screenshot it (``<folder>-<page>.png``, ``…-phone.png``)."""
    from playwright.sync_api import sync_playwright  # a test extra: only `report --screenshots` needs it

    screenshots.mkdir(parents=True, exist_ok=True)
    checks = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_FLAGS)
        try:
            for page_path in pages:
                for suffix, width in (widths or WIDTHS).items():
                    name = f"{page_path.parent.name}-{page_path.stem}{suffix}.png"
                    checks.append(_check(browser, page_path, screenshots / name, width))
        finally:
            browser.close()
    return checks
