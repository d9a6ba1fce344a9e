"""widget.py's two constructors, the poll URL they build, and templates a site overrides piece by piece."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.template import Context, Template
from django.test import RequestFactory, override_settings

from airflow_client.display import airflow_url, format_duration, htmx_seconds
from airflow_client.jobs import get_job
from airflow_client.widget import Widget, fingerprint
from tests.factories import make_run

pytestmark = pytest.mark.django_db


def query(widget: Widget) -> dict[str, list[str]]:
    return parse_qs(urlsplit(widget.status_url).query)


def test_from_request_reads_what_a_poll_sends_back(finding_aid):
    run = make_run(finding_aid, state="running")
    request = RequestFactory().get("/", {"uid": "7", "compact": "1", "next": "/findingaids/1/"})
    widget = Widget.from_request(request, get_job("index_finding_aid"), finding_aid, run=run)
    assert (widget.uid, widget.compact, widget.next_url, widget.run) == ("7", True, "/findingaids/1/", run)
    assert query(widget) == {
        "uid": ["7"],
        "tag": [fingerprint(run)],
        "run": [str(run.pk)],  # still running: the next poll reads it by key
        "compact": ["1"],
        "next": ["/findingaids/1/"],
    }


def test_from_request_reads_what_the_trigger_form_posts(finding_aid):
    request = RequestFactory().post("/", {"uid": "a_b-3", "next": "/findingaids/1/"})
    widget = Widget.from_request(request, get_job("index_finding_aid"), finding_aid, run=None)
    assert (widget.uid, widget.compact, widget.next_url) == ("a_b-3", False, "/findingaids/1/")


def test_from_request_refuses_a_bad_suffix_and_a_foreign_page(finding_aid):
    request = RequestFactory().get("/", {"uid": '"><script>', "next": "https://elsewhere.example/"})
    widget = Widget.from_request(request, get_job("index_finding_aid"), finding_aid, run=None)
    assert widget.uid == "1"  # a fresh one
    assert widget.next_url == ""
    assert "next" not in query(widget)


def test_on_page_looks_the_run_up_and_numbers_the_widgets_of_the_page(finding_aid):
    run = make_run(finding_aid, state="success")
    request = RequestFactory().get("/findingaids/1/?tab=jobs")
    job = get_job("index_finding_aid")
    first, second = Widget.on_page(request, job, finding_aid), Widget.on_page(request, job, finding_aid)
    assert (first.uid, second.uid) == ("1", "2")
    assert first.run == run
    assert first.starting is None
    assert first.next_url == "/findingaids/1/?tab=jobs"
    assert "run" not in query(first)  # finished: nothing to follow
    assert not first.polling


def test_the_fingerprint_follows_what_is_shown(finding_aid):
    run = make_run(finding_aid, state="running")
    before = fingerprint(run)
    run.refreshed_at = run.refreshed_at + timedelta(seconds=5)  # read again, nothing new
    assert fingerprint(run) == before
    run.state = "success"
    assert fingerprint(run) != before
    assert fingerprint(None) == "none"


def test_display_helpers():
    assert format_duration(timedelta(hours=2, minutes=5)) == "2 h 5 min"
    assert format_duration(timedelta(minutes=4, seconds=10)) == "4 min 10 s"
    assert format_duration(None) == ""
    assert htmx_seconds(5) == "5"
    assert htmx_seconds(0.5) == "0.5"


def test_airflow_url_is_empty_when_the_environment_is_gone(finding_aid):
    run = make_run(finding_aid, state="success")
    assert airflow_url(run).startswith("https://airflow.example.org")
    run.environment = "gone"
    assert airflow_url(run) == ""


# --- overriding the templates -------------------------------------------------------------------


def with_templates(**templates: str) -> Any:
    """Settings whose first loader holds ``templates`` (a site's overrides), then the app's own."""
    return override_settings(
        TEMPLATES=[
            {
                "BACKEND": "django.template.backends.django.DjangoTemplates",
                "APP_DIRS": False,
                "OPTIONS": {
                    "context_processors": ["django.template.context_processors.request"],
                    "loaders": [
                        ("django.template.loaders.locmem.Loader", templates),
                        "django.template.loaders.app_directories.Loader",
                    ],
                },
            }
        ]
    )


def render_widget(operator, finding_aid) -> str:
    request = RequestFactory().get("/findingaids/1/")
    request.user = operator
    template = Template("{% load airflow_client %}{% airflow_status obj job='index_finding_aid' %}")
    return template.render(Context({"request": request, "obj": finding_aid}))


def test_a_site_overrides_one_include(operator, finding_aid):
    with with_templates(
        **{"airflow_client/widget/links.html": '<p class="site-links">{{ widget.history_url }}</p>'}
    ):
        html = render_widget(operator, finding_aid)
    assert 'class="site-links"' in html
    assert "ac-links" not in html
    assert "ac-last-success" in html  # the other pieces are the app's


def test_a_site_extends_the_widget_and_overrides_one_block(operator, finding_aid):
    make_run(finding_aid, state="running")
    override = (
        '{% extends "airflow_client/widget.html" %}'
        '{% block times %}<p class="site-times">{{ run.state }}</p>{% endblock %}'
    )
    with with_templates(**{"airflow_client/widget.html": override}):
        html = render_widget(operator, finding_aid)
    assert '<p class="site-times">running</p>' in html
    assert "ac-times" not in html
    assert 'data-poll="active"' in html  # the section and the key the page's poll reads are the app's
    assert 'class="ac-poll-key"' in html


def test_the_starting_badge_is_a_variant_of_the_state_badge():
    template = Template('{% include "airflow_client/state_badge.html" with starting=True %}')
    assert template.render(Context()).strip() == '<span class="ac-badge ac-badge-starting">Starting…</span>'
    template = Template('{% include "airflow_client/state_badge.html" with state="failed" %}')
    assert template.render(Context()).strip() == '<span class="ac-badge ac-badge-failed">Failed</span>'
