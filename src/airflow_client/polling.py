"""What the status widget shows, and the polling tag that lets an unchanged poll skip rendering.

The template tag, the polling view and the trigger view all build the widget
through :func:`widget_context`, so the three always render the same thing.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from django.db import models
from django.http import HttpRequest
from django.urls import reverse
from django.utils.text import slugify
from django.utils.translation import gettext, gettext_lazy, ngettext

from airflow_client import services
from airflow_client.conf import get_settings
from airflow_client.exceptions import AirflowClientError
from airflow_client.models import JobRun

if TYPE_CHECKING:
    from airflow_client.jobs import Job

#: what a widget suffix may look like when it comes back in a poll's query string.
UID_RE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
_fallback_counter = itertools.count(1)


@dataclass(frozen=True)
class Widget:
    """Where a widget lives: its Job, its record and the suffix that makes its ids unique."""

    job: Job
    obj: models.Model
    uid: str
    compact: bool = False

    @property
    def model_label(self) -> str:
        return self.obj._meta.label_lower

    @property
    def object_id(self) -> str:
        return str(self.obj.pk)

    @property
    def key(self) -> str:
        """Names the (record, Job) pair: every widget of the pair shares it, in ids and events."""
        # slugify keeps ids valid for any primary key; the hash keeps two keys
        # that slugify alike ("a b" and "a-b") apart.
        digest = hashlib.blake2s(self.object_id.encode(), digest_size=3).hexdigest()
        parts = [self.model_label.replace(".", "-"), slugify(self.object_id)[:40], digest]
        return "-".join(["ac", *parts, slugify(self.job.dag_id)])

    @property
    def dom_id(self) -> str:
        return f"{self.key}-{self.uid}"

    @property
    def changed_event(self) -> str:
        """The event the trigger view sends so the other widgets of the pair look again."""
        return f"{self.key}-changed"

    def url_args(self) -> dict[str, str]:
        return {"model": self.model_label, "dag_id": self.job.dag_id, "object_id": self.object_id}


def next_uid(request: HttpRequest | None) -> str:
    """A suffix unique within one response: a per-request counter (stable, readable ids)."""
    if request is None:
        return f"n{next(_fallback_counter)}"
    count: int = getattr(request, "_airflow_client_widgets", 0) + 1
    request._airflow_client_widgets = count  # type: ignore[attr-defined]
    return str(count)


def current_run(job: Job, obj: models.Model) -> JobRun | None:
    """The run the widget is about: the active one if any, else the newest."""
    runs = JobRun.objects.for_object(obj).for_job(job)
    run: JobRun | None = runs.active().first() or runs.first()
    return run


def poll_tag(run: JobRun | None) -> str:
    """Changes whenever what the widget shows about ``run`` changes.

    Built from the shown fields rather than ``updated_at``: every read from
    Airflow bumps ``updated_at`` even when nothing changed, and such polls
    should still get the short answer.
    """
    if run is None:
        return "none"
    shown = (run.pk, run.state, run.queued_at, run.start_date, run.end_date, run.refresh_error)
    return hashlib.blake2s(repr(shown).encode(), digest_size=8).hexdigest()


def refresh_quietly(run: JobRun) -> JobRun:
    """Re-read an unfinished run (coalesced by services); Airflow being down is not an error here.

    services records the failure on the run (``refresh_error``), and the widget
    says so from there.
    """
    if run.finished:
        return run
    try:
        return services.refresh(run)
    except AirflowClientError:
        return run


def widget_context(
    widget: Widget,
    *,
    request: HttpRequest | None,
    run: JobRun | None = None,
    look_up: bool = True,
    notice: str = "",
    next_url: str | None = None,
) -> dict[str, Any]:
    """Everything widget.html needs. ``look_up=False`` means ``run`` is already the current run."""
    job, obj = widget.job, widget.obj
    if look_up and run is None:
        run = current_run(job, obj)
    user = getattr(request, "user", None)
    can_trigger = bool(user and user.is_authenticated and job.has_trigger_permission(user, obj))
    active = run is not None and not run.finished
    blocked = active and not job.allow_concurrent
    polling = active
    last_success = JobRun.objects.last_success(obj, dag_id=job.dag_id)
    if next_url is None:
        next_url = request.get_full_path() if request is not None else ""
    status_query = {"uid": widget.uid, "tag": poll_tag(run)}
    if widget.compact:
        status_query["compact"] = "1"
    if next_url:
        # a re-rendered widget must still send the user back to the page it sits on
        status_query["next"] = next_url
    history = (
        reverse("airflow_client:run_list")
        + "?"
        + urlencode({"record_type": widget.model_label, "object_id": widget.object_id, "dag_id": job.dag_id})
    )
    confirm = job.confirm
    if confirm is True:
        confirm = str(_confirm_default(job))
    return {
        "widget": widget,
        "job": job,
        "obj": obj,
        "run": run,
        "last_success": last_success,
        "dom_id": widget.dom_id,
        "changed_event": widget.changed_event,
        "compact": widget.compact,
        "polling": polling,
        "poll_interval": _seconds(get_settings().poll_interval),
        "status_url": reverse("airflow_client:status", kwargs=widget.url_args())
        + "?"
        + urlencode(status_query),
        "trigger_url": reverse("airflow_client:trigger", kwargs=widget.url_args()),
        "history_url": history,
        "airflow_url": services.run_url(run) if run is not None else "",
        "can_trigger": can_trigger,
        "trigger_disabled": blocked or not can_trigger,
        "blocked": blocked,
        "confirm": confirm or "",
        "notice": notice,
        "unreachable": bool(run is not None and run.refresh_error),
        "next": next_url,
    }


#: Airflow's run states in words (the colour comes from the ac-state-* CSS class).
STATE_LABELS = {
    "queued": gettext_lazy("Queued"),
    "running": gettext_lazy("Running"),
    "success": gettext_lazy("Succeeded"),
    "failed": gettext_lazy("Failed"),
}


def state_label(state: str | None) -> str:
    if not state:
        return gettext("Never run")
    return str(STATE_LABELS.get(state, state.replace("_", " ").capitalize()))


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


def _confirm_default(job: Job) -> str:
    return gettext("Start %(label)s now?") % {"label": job.label}


def _seconds(value: float) -> str:
    """htmx's "every Ns" wants a plain number: 5 -> "5", 0.5 -> "0.5"."""
    return f"{value:g}"
