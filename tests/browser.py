"""A real headless Chromium for the tests, driven by playwright.

Use::

    from browser import open_page, browser_missing
    with open_page(path, tmp_path) as (page, problems):   # problems: console errors, page errors, failed loads
        assert page.inner_text("body")

Debian's chromium (.ci/run installs it) with the flags a machine without network needs: without
them it waits on network services. A fresh profile folder per test. Where the browser or
playwright is missing the test is skipped, except under CI, where that is a failure.
"""

from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("UNETBENCH_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]


def browser_missing() -> str | None:
    if not Path(CHROMIUM).exists():
        return f"no chromium at {CHROMIUM} (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -e '.[test]')"
    return None


def require_browser() -> None:
    reason = browser_missing()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but the browser test cannot run: {reason}")
        pytest.skip(reason)


@contextmanager
def open_page(html_file: Path, tmp_path: Path, width: int = 1366, height: int = 768):
    """The file loaded in a fresh headless Chromium; yields (page, problems)."""
    require_browser()
    from playwright.sync_api import sync_playwright
    problems: list[str] = []
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=CHROMIUM, headless=True, args=FLAGS,
            viewport={"width": width, "height": height})
        try:
            page = context.new_page()
            page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.on("requestfailed", lambda r: problems.append(f"failed to load {r.url}"))
            page.on("request", lambda r: problems.append(f"network request {r.url}")
                    if not r.url.startswith(("file:", "data:")) else None)
            page.goto(Path(html_file).resolve().as_uri(), wait_until="load")
            yield page, problems
        finally:
            context.close()
