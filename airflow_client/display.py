"""How runs are put in front of people: durations in words, the poll interval for htmx, the link to Airflow.

The widget, the history table, the run page and the admin all show runs; they
share these so a duration or an Airflow link reads the same everywhere.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from django.urls import reverse
from django.utils.translation import gettext, ngettext

from airflow_client import refreshing
from airflow_client.exceptions import AirflowClientError
from airflow_client.models import JobRun

__all__ = ["airflow_url", "format_duration", "htmx_seconds", "log_page_url"]


def format_duration(value: timedelta | None) -> str:
    """A run's duration the way people say it: "2 h 5 min", "4 min 10 s", "12 s"."""
    if value is None:
        return ""
    seconds = max(int(value.total_seconds()), 0)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return gettext("%(h)d h %(m)d min") % {"h": hours, "m": minutes}
    if minutes:
        return gettext("%(m)d min %(s)d s") % {"m": minutes, "s": seconds}
    return ngettext("%(s)d second", "%(s)d seconds", seconds) % {"s": seconds}


def htmx_seconds(value: float) -> str:
    """htmx's "every Ns" wants a plain number: 5 -> "5", 0.5 -> "0.5"."""
    return f"{value:g}"


def airflow_url(run: JobRun) -> str:
    """The run in Airflow's UI, or "" when its environment is no longer configured.

    A page about a run must still render when the link cannot be built, so the
    error is not raised; callers show no link (or a dash) instead.
    """
    try:
        return refreshing.run_url(run)
    except AirflowClientError:
        return ""


def log_page_url(
    run: JobRun, task_id: str, try_number: int, map_index: int = -1, token: str | None = None, skip: int = 0
) -> str:
    """This app's page of a task try's log (``token``/``skip``: where a "load more" continues)."""
    url = reverse(
        "airflow_client:run_log", kwargs={"pk": run.pk, "task_id": task_id, "try_number": try_number}
    )
    query: dict[str, Any] = {}
    if map_index != -1:
        query["map_index"] = map_index
    if token:
        query["token"] = token
    if skip:
        query["skip"] = skip
    return f"{url}?{urlencode(query)}" if query else url
