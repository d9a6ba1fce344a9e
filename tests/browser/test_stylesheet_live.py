"""The pages through a site's own base template without ``.ac-page`` (issue 9, defect 19)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.test import override_settings

from tests.factories import make_run
from tests.testapp.models import FindingAid

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SITE_BASE = """{% load static django_htmx %}<!doctype html>
<html><head><title>{% block title %}{% endblock %}</title>{% htmx_script %}
<link rel="stylesheet" href="{% static 'airflow_client/airflow_client.css' %}"></head>
<body class="site"><main>{% block content %}{% endblock %}</main></body></html>
"""


def test_badges_and_the_filter_button_keep_their_colours_outside_ac_page(
    page: Any, live_server: Any, tmp_path: Path
) -> None:
    (tmp_path / "airflow_client").mkdir()
    (tmp_path / "airflow_client" / "base.html").write_text(SITE_BASE)
    templates = [{**settings.TEMPLATES[0], "DIRS": [str(tmp_path)]}]
    make_run(FindingAid.objects.create(title="Papers"), state="success")
    with override_settings(TEMPLATES=templates):
        page.goto("/airflow/runs/")
        assert page.locator(".ac-page").count() == 0
        badge = page.locator(".ac-badge-success").first
        button = page.get_by_role("button", name="Filter")
        assert badge.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(26, 127, 55)"
        assert button.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(11, 92, 173)"
