"""The one headless chromium of a test session (a plugin of tests/conftest.py, so every folder shares it).

Playwright's sync API keeps an asyncio loop running in the test's thread, and
Django refuses ORM calls from a thread with a running loop
(SynchronousOnlyOperation). The tests only touch the database between browser
steps, never concurrently, so DJANGO_ALLOW_ASYNC_UNSAFE is set while a browser
is open, and only then. A second Playwright in the same session would find that
loop running and refuse to start: hence one fixture for all.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str | None:
    return os.environ.get("DAC_CHROMIUM") or shutil.which("chromium")


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    executable = chromium_path()
    if not executable:
        if os.environ.get("DAC_REQUIRE_SERVICES"):
            pytest.fail("chromium is missing: run scripts/browser.sh install")
        pytest.skip("chromium not installed (scripts/browser.sh install)")
    from playwright.sync_api import sync_playwright

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        playwright = sync_playwright().start()
        try:
            launched = playwright.chromium.launch(
                executable_path=executable, headless=True, args=CHROMIUM_ARGS
            )
            yield launched
            launched.close()
        finally:
            playwright.stop()
