"""The status widget: what it shows for a (record, Job) pair, how a poll finds out, and its template context.

``{% airflow_status %}`` builds a :class:`Widget` with :meth:`Widget.on_page`;
the ``status`` (one widget's poll) and ``trigger`` views rebuild it from the
parameters the widget sent back with :meth:`Widget.from_request`, and the page
poll (:mod:`airflow_client.pagepoll`) from its :attr:`Widget.poll_key`. All of
them render it through :meth:`Widget.render`, so they always render the same thing.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import SafeString
from django.utils.text import slugify
from django.utils.translation import gettext

from airflow_client import refreshing, triggering
from airflow_client.conf import get_settings
from airflow_client.display import airflow_url, htmx_seconds, log_page_url
from airflow_client.exceptions import AirflowClientError
from airflow_client.mixins import (
    current_job_run,
    is_prefetched,
    last_job_success,
    latest_job_run,
    prefetched_shown,
)
from airflow_client.models import JobRecord, JobRun, JobTrigger
from airflow_client.states import ACTIVE_STATES

if TYPE_CHECKING:
    from airflow_client.jobs import Job

__all__ = [
    "WIDGET_TEMPLATE",
    "Widget",
    "confirm_question",
    "current_state",
    "dag_token",
    "fingerprint",
    "look_up",
    "poll",
    "safe_next",
    "settle",
    "unchanged",
]

#: the widget's outer template; its pieces are included from ``airflow_client/widget/``.
WIDGET_TEMPLATE = "airflow_client/widget.html"
#: the poll's query parameter carrying the fingerprint of what the widget shows (short: it is in every poll).
FINGERPRINT_PARAM = "tag"
#: the page poll's query parameter carrying one widget's key (Widget.poll_key), once per widget.
KEY_PARAM = "w"
#: what separates the fields of a poll key: left as it is in a URL (encodeURIComponent, urlencode).
KEY_SEPARATOR = "."
#: what a widget suffix may look like when it comes back in a poll or a trigger.
UID_RE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
_fallback_counter = itertools.count(1)


@dataclass(frozen=True)
class Widget:
    """One widget: where it lives (Job, record, id suffix) and what it shows (run or pending trigger).

    The template reads everything that follows from these (ids, event names,
    whether it polls, whether a new run may start) from the Widget itself.
    """

    job: Job
    obj: models.Model
    uid: str
    compact: bool = False
    #: the run shown: the active one if any, else the newest (None: never run)
    run: JobRun | None = None
    #: a trigger Airflow has not confirmed yet, shown as "Starting…" (then ``run`` is None)
    starting: JobTrigger | None = None
    #: the page the widget sits on: a plain-form trigger sends the user back there
    next_url: str = ""

    @classmethod
    def on_page(
        cls, request: HttpRequest | None, job: Job, obj: models.Model, *, compact: bool = False
    ) -> Widget:
        """The widget ``{% airflow_status %}`` puts on a page: a fresh id suffix, what the database knows."""
        run, starting = look_up(job, obj)
        return cls(
            job,
            obj,
            next_uid(request),
            compact=compact,
            run=run,
            starting=starting,
            next_url=request.get_full_path() if request is not None else "",
        )

    @classmethod
    def from_request(
        cls,
        request: HttpRequest,
        job: Job,
        obj: models.Model,
        *,
        run: JobRun | None,
        starting: JobTrigger | None = None,
    ) -> Widget:
        """The widget a poll (GET) or a trigger (POST) came from: its id suffix, variant and page come back
        with the request (a bad or missing suffix gets a fresh one, a foreign page none)."""
        params = request.POST if request.method == "POST" else request.GET
        uid = params.get("uid")
        return cls(
            job,
            obj,
            uid if uid and UID_RE.match(uid) else next_uid(request),
            compact=bool(params.get("compact")),
            run=run,
            starting=starting,
            next_url=safe_next(request, params.get("next")),
        )

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

    @property
    def polling(self) -> bool:
        """Whether the page polls for it at the active interval (else at the idle one)."""
        return is_polling(self.run, self.starting)

    @property
    def poll_key(self) -> str:
        """What the page poll needs to tell whether this widget changed, and to render it again.

        Content type, DAG (a short hash), id suffix, variant, fingerprint, the shown
        run's key, and last the record's key (which may hold any character). Short:
        the page's one poll carries the key of every widget on the page in its URL.
        """
        content_type = ContentType.objects.get_for_model(self.obj, for_concrete_model=False)
        fields = [
            str(content_type.pk),
            dag_token(self.job.dag_id),
            self.uid,
            "c" if self.compact else "",
            self.fingerprint,
            str(self.run.pk) if self.run is not None else "",
            self.object_id,
        ]
        return KEY_SEPARATOR.join(fields)

    @property
    def airflow_off(self) -> bool:
        """AIRFLOW_ENABLED is False: the widget shows what is recorded, starts nothing, asks nothing."""
        return not get_settings().enabled

    @property
    def blocked(self) -> bool:
        """Whether a new run would be refused now: one at a time, and one is active or starting."""
        return self.polling and not self.job.allow_concurrent

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.run, self.starting)

    @property
    def confirm(self) -> str:
        return confirm_question(self.job)

    @property
    def trigger_url(self) -> str:
        return reverse("airflow_client:trigger", kwargs=self.url_args())

    @property
    def status_url(self) -> str:
        """Where the widget polls; the query brings back what :meth:`from_request` reads."""
        query = {"uid": self.uid, FINGERPRINT_PARAM: self.fingerprint}
        if self.run is not None and self.polling:
            # the poll re-reads this run by key: its cost does not grow with the record's history
            query["run"] = str(self.run.pk)
        if self.compact:
            query["compact"] = "1"
        if self.next_url:
            # a re-rendered widget must still send the user back to the page it sits on
            query["next"] = self.next_url
        return reverse("airflow_client:status", kwargs=self.url_args()) + "?" + urlencode(query)

    @property
    def history_url(self) -> str:
        """Job history filtered to this record and DAG."""
        query = {"record_type": self.model_label, "object_id": self.object_id, "dag_id": self.job.dag_id}
        return reverse("airflow_client:run_list") + "?" + urlencode(query)

    @property
    def airflow_url(self) -> str:
        """The shown run in Airflow's UI ("" in the compact variant, which has no room for it)."""
        return airflow_url(self.run) if self.run is not None and not self.compact else ""

    @cached_property
    def last_success(self) -> JobRun | None:
        """The newest success (one query, however often the template asks; none in the compact variant)."""
        return None if self.compact else last_success(self.job, self.obj)

    @property
    def failed_log_url(self) -> str:
        """This app's page of the failed task try's log ("" when no failed task is known)."""
        run = self.run
        if run is None or not run.failed_task_id or not run.failed_try_number:
            return ""
        return log_page_url(run, run.failed_task_id, run.failed_try_number, run.failed_map_index)

    def url_args(self) -> dict[str, str]:
        return {"model": self.model_label, "dag_id": self.job.dag_id, "object_id": self.object_id}

    def can_trigger(self, request: HttpRequest | None) -> bool:
        user = getattr(request, "user", None)
        # the trigger view also needs the view permission: without it the button would answer 403
        return (
            user is not None
            and self.can_view(request)
            and bool(self.job.has_trigger_permission(user, self.obj))
        )

    def can_view(self, request: HttpRequest | None) -> bool:
        """Whether the user may open the app's pages (history, run detail, logs) and its poll."""
        user = getattr(request, "user", None)
        return bool(user and user.is_authenticated and user.has_perm("airflow_client.view_jobrun"))

    def context(self, request: HttpRequest | None, *, notice: str = "", oob: bool = False) -> dict[str, Any]:
        """What widget.html and its includes read; a site's overrides may use every name here."""
        return {
            "widget": self,
            # the page poll's answer swaps each changed widget in place of its old self (htmx out of band)
            "oob": oob,
            "last_success": self.last_success,
            "can_trigger": self.can_trigger(request),
            # without it the state is shown, the links (they would answer 403) and polling are not
            "can_view": self.can_view(request),
            "status_url": self.status_url,
            "poll_interval": htmx_seconds(get_settings().poll_interval),
            "airflow_url": self.airflow_url,
            "notice": notice,
            "next": self.next_url,
        }

    def render(self, request: HttpRequest | None, *, notice: str = "", oob: bool = False) -> SafeString:
        context = self.context(request, notice=notice, oob=oob)
        return render_to_string(WIDGET_TEMPLATE, context, request=request)


def next_uid(request: HttpRequest | None) -> str:
    """A suffix unique within one response: a per-request counter (stable, readable ids)."""
    if request is None:
        return f"n{next(_fallback_counter)}"
    count: int = getattr(request, "_airflow_client_widgets", 0) + 1
    request._airflow_client_widgets = count  # type: ignore[attr-defined]
    return str(count)


def safe_next(request: HttpRequest, value: str | None) -> str:
    """``value`` when it is a local path of this site ("/..."), else an empty string.

    Only paths: "abc" or "app:name" would be resolved as URL names by ``redirect()``.
    """
    if (
        value
        and value.startswith("/")
        and not value.startswith(("//", "/\\"))
        and "\x00" not in value
        and url_has_allowed_host_and_scheme(
            value, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        )
    ):
        return value
    return ""


def confirm_question(job: Job) -> str:
    """The question asked before starting ``job``: its own, a default one, or "" (none asked)."""
    if not job.confirm:
        return ""
    if isinstance(job.confirm, str):
        return job.confirm
    return gettext("Start “%(job)s” now?") % {"job": job.label}


# --- what the widget shows ----------------------------------------------------------------------


def current_run(job: Job, obj: models.Model) -> JobRun | None:
    """The run the widget is about: the one going on now, else the newest (answered from
    prefetch_job_runs when the record went through it).

    Otherwise one query that reads three entries of JobRecord's indexes (the newest queued,
    running and any run), so it costs the same for a record with 10 runs or 100,000.
    """
    if is_prefetched(obj, "shown"):
        return prefetched_shown(obj, job.dag_id, job.environment)
    if is_prefetched(obj, "current") and is_prefetched(obj, "latest"):
        where = {"environment": job.environment}
        return current_job_run(obj, job.dag_id, **where) or latest_job_run(obj, job.dag_id, **where)
    links = JobRecord.objects.of(obj, job.dag_id, job.environment)
    newest = links.newest_runs(states=sorted(ACTIVE_STATES), latest=True)
    return next((run for run in newest if not run.finished), newest[0] if newest else None)


def last_success(job: Job, obj: models.Model) -> JobRun | None:
    """The newest successful run of the Job (its DAG in its environment) for ``obj``."""
    return last_job_success(obj, job.dag_id, environment=job.environment)


def dag_token(dag_id: str) -> str:
    """A DAG id in six characters: a poll key names the DAG among its model's Jobs, which this tells apart."""
    return hashlib.blake2s(dag_id.encode(), digest_size=3).hexdigest()


def current_state(job: Job, obj: models.Model) -> tuple[JobRun | None, JobTrigger | None]:
    """The current run, and the pending trigger if there is one while no run is active."""
    run = current_run(job, obj)
    if run is not None and not run.finished:
        return run, None
    return run, triggering.pending_trigger(job, obj)


def look_up(job: Job, obj: models.Model) -> tuple[JobRun | None, JobTrigger | None]:
    """What a widget shows: the current run, or else a trigger Airflow has not confirmed yet."""
    run, starting = current_state(job, obj)
    return (None, starting) if starting is not None else (run, None)


# --- polling ------------------------------------------------------------------------------------


def poll(job: Job, obj: models.Model, run_pk: str | None = None) -> tuple[JobRun | None, JobTrigger | None]:
    """Like look_up, after asking Airflow (coalesced) about the active run or the pending trigger.

    ``run_pk`` is the run the widget is polling: while it is unfinished it is
    read by its key alone, so a poll stays cheap however long the record's
    history. Airflow being down is not an error here: the run keeps its last
    known state (and says why), the trigger stays pending, and the next poll
    asks again.
    """
    if run_pk is not None and run_pk.isascii() and run_pk.isdigit() and len(run_pk) <= 18:
        polled = JobRun.objects.for_object(obj).for_job(job).filter(pk=int(run_pk)).first()
        if polled is not None and not polled.finished:
            return refresh_quietly(polled), None
    return settle(*current_state(job, obj))


def settle(run: JobRun | None, starting: JobTrigger | None) -> tuple[JobRun | None, JobTrigger | None]:
    """What a widget shows now that it was looked up (current_state): the run re-read if unfinished,
    or the pending trigger asked about (it started a run, is still starting, or failed)."""
    if starting is None:
        return (refresh_quietly(run) if run is not None else None), None
    try:
        started = triggering.resolve_trigger(starting)
    except AirflowClientError:
        return None, starting
    if started is not None:
        return started, None
    if starting.outcome in JobTrigger.OPEN:  # too young to tell, or asked moments ago
        return None, starting
    # Airflow has no such run: the trigger failed, and the previous run is current again.
    return run, None


def is_polling(run: JobRun | None, starting: JobTrigger | None) -> bool:
    """A widget polls while its run is unfinished or its trigger unconfirmed (and Airflow is on)."""
    if not get_settings().enabled:
        return False
    return starting is not None or (run is not None and not run.finished)


def unchanged(request: HttpRequest, run: JobRun | None, starting: JobTrigger | None) -> bool:
    """Whether a poll may get the short answer: still polling, and its fingerprint still matches."""
    return is_polling(run, starting) and request.GET.get(FINGERPRINT_PARAM) == fingerprint(run, starting)


def fingerprint(run: JobRun | None, starting: JobTrigger | None = None) -> str:
    """Changes whenever what the widget shows about ``run`` (or the pending trigger) changes.

    Built from the shown fields rather than ``updated_at``: every read from
    Airflow bumps ``updated_at`` even when nothing changed, and such polls
    should still get the short answer.
    """
    if starting is not None:
        return f"starting-{starting.pk}"
    if run is None:
        return "none"
    shown = (
        run.pk,
        run.state,
        run.queued_at,
        run.start_date,
        run.end_date,
        run.refresh_error,
        run.progress,
    )
    return hashlib.blake2s(repr(shown).encode(), digest_size=8).hexdigest()


def refresh_quietly(run: JobRun) -> JobRun:
    """Re-read an unfinished run (coalesced by refresh()); Airflow being down is not an error here.

    refresh() records the failure on the run (``refresh_error``), and the widget
    says so from there.
    """
    if run.finished:
        return run
    try:
        return refreshing.refresh(run)
    except AirflowClientError:
        return run
