"""``{% airflow_status obj %}``: the trigger / status / last success / logs widget for a record;
``{% airflow_poller %}``: the one poller of a page, which follows every widget on it."""

from __future__ import annotations

import logging
from datetime import timedelta

import django
from django import template
from django.conf import settings
from django.db import models
from django.templatetags.static import static
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from airflow_client import pagepoll
from airflow_client.display import format_duration
from airflow_client.exceptions import UnknownJob
from airflow_client.jobs import Job, find_job, jobs_for_model
from airflow_client.states import state_label
from airflow_client.widget import Widget

register = template.Library()
logger = logging.getLogger(__name__)

if django.VERSION < (6, 0):  # pragma: no cover - Django 5.2 only
    # {% partialdef %} is built in from Django 6.0. On 5.2 it comes from
    # django-template-partials, whose tags are not builtins: they come along
    # with this library, so one {% load airflow_client %} works on every version.
    from template_partials.templatetags.partials import register as _partials

    register.tags.update(_partials.tags)


@register.simple_tag(takes_context=True)
def airflow_status(
    context: template.Context,
    obj: models.Model,
    job: str | None = None,
    compact: bool = False,
) -> SafeString:
    """One widget per Job registered for ``obj``'s model, or only the Job of dag_id ``job``."""
    request = context.get("request")
    widgets = [Widget.on_page(request, each, obj, compact=bool(compact)) for each in _jobs(obj, job)]
    parts = [widget.render(request) for widget in widgets]
    parts.append(pagepoll.note_widgets(request, widgets))  # "" but in an htmx partial
    # Widget.render returns SafeStrings, which format_html_join leaves as they are.
    return format_html_join("", "{}", ((part,) for part in parts))


@register.simple_tag(takes_context=True)
def airflow_poller(context: template.Context) -> SafeString:
    """The page's one poller: put it once in your base template, after the content (end of <body>).

    It follows every widget on the page in one request per interval; it renders
    nothing for a user who may not open the poll, or while Airflow is turned off.
    """
    return pagepoll.page_poller(context.get("request"))


def _jobs(obj: models.Model, dag_id: str | None) -> list[Job]:
    """obj's Jobs, or the one of them for ``dag_id`` (two models may each have a Job of one DAG)."""
    if dag_id is None:
        return jobs_for_model(obj)
    try:
        return [find_job(obj, dag_id)]
    except UnknownJob as exc:
        if settings.DEBUG:
            raise
        # A page must not fail over a widget: in production the widget is left out, and logged.
        logger.warning("{%% airflow_status %%}: %s", exc)
        return []


@register.simple_tag
def airflow_client_css() -> SafeString:
    """The widget's stylesheet link, for pages that do not extend airflow_client/base.html."""
    return format_html('<link rel="stylesheet" href="{}">', static("airflow_client/airflow_client.css"))


@register.filter
def run_state(state: str | None) -> str:
    """A run state in words: ``{{ run.state|run_state }}``."""
    return state_label(state)


@register.filter
def duration(value: timedelta | None) -> str:
    """``{{ run.duration|duration }}`` -> "4 min 10 s"."""
    return format_duration(value)
