"""Browser tests against pytest-django's live server (the ``browser`` fixture: tests/browsers.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client


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
