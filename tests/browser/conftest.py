"""Playwright (sync API) driving Debian's chromium against pytest-django's live server.

Playwright's sync API keeps an asyncio loop running in the test's thread, and
Django refuses ORM calls from a thread with a running loop
(SynchronousOnlyOperation). The tests only touch the database between browser
steps, never concurrently, so DJANGO_ALLOW_ASYNC_UNSAFE is set while a browser
is open, and only then.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client

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


@pytest.fixture
def fast_polling(settings: Any) -> None:
    settings.AIRFLOW_POLL_INTERVAL = 0.5
    settings.AIRFLOW_REFRESH_INTERVAL = 0  # every poll asks the fake Airflow


@pytest.fixture
def operator(transactional_db: None) -> User:
    user = User.objects.create(username="operator")
    user.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="airflow_client", codename__in=["view_jobrun", "trigger_job"]
        )
    )
    return user


@pytest.fixture
def page(browser: Any, live_server: Any, operator: User, fast_polling: None) -> Iterator[Any]:
    """A browser tab logged in as ``operator`` (the session cookie of a test client login)."""
    client = Client()
    client.force_login(operator)
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1100, "height": 800})
    context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}]
    )
    context.set_default_timeout(10_000)
    tab = context.new_page()
    yield tab
    context.close()
