"""One poll per page: the page's poller asks about every widget on it in one request.

``{% airflow_poller %}`` renders the poller once per page. Its ``hx-get`` sends
the key of every widget on the page (:attr:`.Widget.poll_key`: record, Job, id
suffix, variant, fingerprint, shown run), gathered by ``hx-include`` when it
fires, so widgets swapped in later join it. The ``page_poll`` view answers
``204`` when no widget changed, else the changed widgets as htmx out-of-band
swaps, and the poller again when its cadence or its cursor moves on: the active
interval while a widget's run is unfinished, else the idle one.

What it costs: one query (:func:`_links`) reads, for the whole page, the runs
the widgets show, by key, and every link to their records made since the page
last heard (``since``): a run started elsewhere turns up there. Only widgets
that may have changed cost more: their records (one query per model) and, for
those whose run ended or that something new happened to, what they show now
(:func:`.prefetch_shown_runs`: two or three queries per model, however many widgets).
"""

from __future__ import annotations

import re
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone as dt_timezone
from typing import TYPE_CHECKING, Any

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

from airflow_client import refreshing
from airflow_client.conf import get_settings
from airflow_client.display import htmx_seconds
from airflow_client.jobs import jobs_for_model
from airflow_client.mixins import prefetch_shown_runs
from airflow_client.models import JobRecord, JobRun, JobTrigger
from airflow_client.widget import (
    KEY_PARAM,
    KEY_SEPARATOR,
    UID_RE,
    Widget,
    current_state,
    dag_token,
    fingerprint,
    is_polling,
    safe_next,
    settle,
)

if TYPE_CHECKING:
    from airflow_client.jobs import Job

__all__ = ["POLLER_ID", "POLL_EVENT", "Outcome", "Page", "Seen", "look", "read", "record_pk", "render_poller"]

#: the poller's element id (one per page).
POLLER_ID = "ac-poller"
#: the event that makes the poller look now (the trigger view sends it once its widget has settled).
POLL_EVENT = "ac-poll"
POLLER_TEMPLATE = "airflow_client/poller.html"
#: cadences: a widget's run is unfinished / every widget is idle / the page has no widget (no timer)
ACTIVE, IDLE, DORMANT = "active", "idle", "dormant"
#: most widget keys one poll reads (a longer page's extra widgets are not followed).
MAX_WIDGETS = 500
#: most kinds of record (content types) one poll looks up: bounds what a forged poll costs.
MAX_MODELS = 20
#: how far back a new cursor starts: links committed late, clocks of several servers a little apart.
MARGIN = timedelta(seconds=60)
#: the oldest cursor taken: a tab asleep for longer misses older starts until it is reloaded.
MAX_LOOKBACK = timedelta(days=1)
#: a fingerprint (widget.fingerprint): hex, "none" or "starting-<pk>".
TAG_RE = re.compile(r"^[a-z0-9-]{1,40}$")
STARTING_RE = re.compile(r"^starting-(\d{1,18})$")
NONE_TAG = fingerprint(None)


@dataclass(frozen=True)
class Seen:
    """One widget as the page last saw it, read from its poll key."""

    job: Job
    model: type[models.Model]
    #: the content type its runs are linked by (JobRecord)
    content_type: ContentType
    pk: Any
    uid: str
    compact: bool
    #: the fingerprint of what it shows
    tag: str
    #: the run it shows (None: never run, or a trigger Airflow has not confirmed)
    run_pk: int | None

    @property
    def object_id(self) -> str:
        return str(self.pk)

    @property
    def starting(self) -> bool:
        return STARTING_RE.match(self.tag) is not None

    def stand_in(self) -> models.Model:
        """An unsaved record with this key: enough to name the widget's element."""
        return self.model(pk=self.pk)


@dataclass
class Outcome:
    """What a widget shows now, and whether that differs from what the page shows."""

    seen: Seen
    run: JobRun | None = None
    starting: JobTrigger | None = None
    #: why what it shows is looked up again ("" when the page poll's one query told)
    recheck: str = ""
    #: the record, read when the widget is rendered again
    obj: models.Model | None = None
    #: the record was read and is gone: the widget is removed
    gone: bool = False

    @property
    def changed(self) -> bool:
        return self.gone or fingerprint(self.run, self.starting) != self.seen.tag

    @property
    def polling(self) -> bool:
        return not self.gone and is_polling(self.run, self.starting)


@dataclass(frozen=True)
class Page:
    """What the poller sent: the widgets, its cursor, its cadence and the page's path."""

    widgets: list[Seen]
    since: datetime
    mode: str
    next_url: str


# --- reading the poll ---------------------------------------------------------------------------


def read(request: HttpRequest, now: datetime) -> Page:
    """The page poll's parameters; a widget key that does not parse is left out."""
    types: dict[str, ContentType | None] = {}
    widgets: dict[tuple[int, str, str, str], Seen] = {}
    for value in request.GET.getlist(KEY_PARAM)[:MAX_WIDGETS]:
        seen = parse_key(value, types)
        if seen is not None:
            widgets.setdefault((seen.content_type.pk, seen.object_id, seen.job.dag_id, seen.uid), seen)
    mode = request.GET.get("mode", "")
    return Page(
        widgets=list(widgets.values()),
        since=read_since(request.GET.get("since"), now),
        mode=mode if mode in (ACTIVE, IDLE, DORMANT) else "",
        next_url=safe_next(request, request.GET.get("next")),
    )


def parse_key(value: str, types: dict[str, ContentType | None]) -> Seen | None:
    """A widget's poll key (Widget.poll_key), or None when it names no widget of a registered Job.

    ``types`` remembers the content types looked up by this poll (at most MAX_MODELS).
    """
    parts = value.split(KEY_SEPARATOR, 6)
    if len(parts) != 7:
        return None
    type_id, dag, uid, variant, tag, run, object_id = parts
    if not (UID_RE.match(uid) and variant in ("", "c") and TAG_RE.match(tag)):
        return None
    if run and not (run.isascii() and run.isdigit() and len(run) <= 18):
        return None
    content_type = _content_type(type_id, types)
    model = content_type.model_class() if content_type is not None else None
    if content_type is None or model is None:
        return None
    job = next((job for job in jobs_for_model(model) if dag_token(job.dag_id) == dag), None)
    pk = record_pk(model, object_id)
    if job is None or pk is None:
        return None
    # the key names a proxy model by its own type (its widget's ids say so); runs link the concrete one
    linked_as = ContentType.objects.get_for_model(model)
    return Seen(job, model, linked_as, pk, uid, variant == "c", tag, int(run) if run else None)


def _content_type(type_id: str, types: dict[str, ContentType | None]) -> ContentType | None:
    if type_id in types:
        return types[type_id]
    if len(types) >= MAX_MODELS or not (type_id.isascii() and type_id.isdigit() and len(type_id) <= 9):
        return None
    try:
        found: ContentType | None = ContentType.objects.get_for_id(int(type_id))  # cached after the first
    except ContentType.DoesNotExist:
        found = None
    types[type_id] = found
    return found


def record_pk(model: type[models.Model], object_id: str) -> Any:
    """``object_id`` as ``model``'s key, or None when no record of it can have that key."""
    if not object_id or "\x00" in object_id or len(object_id) > 255:
        return None
    try:
        return model._meta.pk.to_python(object_id)
    except ValidationError:
        return None


def read_since(value: str | None, now: datetime) -> datetime:
    """The poller's cursor (Unix seconds), kept within [now - MAX_LOOKBACK, now]; a fresh one without."""
    if not value or not (value.isascii() and value.isdigit() and len(value) <= 12):
        return now - MARGIN
    seconds = min(int(value), int(now.timestamp()))
    return max(datetime.fromtimestamp(seconds, tz=dt_timezone.utc), now - MAX_LOOKBACK)


# --- looking ------------------------------------------------------------------------------------


def look(widgets: Sequence[Seen], since: datetime) -> list[Outcome]:
    """What each widget shows now (each run followed re-read through refresh(), coalesced).

    The records of the widgets to render again are read (``Outcome.obj``), and
    those of the widgets to look up again get prefetch_shown_runs: the number of
    queries does not grow with the number of widgets.
    """
    started = time.monotonic()
    links = _links(widgets, since)
    outcomes = [
        _decide(seen, links.get((seen.content_type.pk, seen.object_id, seen.job.dag_id), []))
        for seen in widgets
    ]
    # each re-read at most once per AIRFLOW_REFRESH_INTERVAL; the page never waits on Airflow past TIMEOUT
    refreshing.refresh_shown(_unfinished(o for o in outcomes if not o.recheck), started=started)
    to_read = [o for o in outcomes if o.recheck or o.changed]
    if not to_read:
        return outcomes
    records = _records(to_read)
    for outcome in to_read:
        outcome.obj = records.get((outcome.seen.model, outcome.seen.object_id))
        outcome.gone = outcome.obj is None
    present = [o for o in to_read if o.obj is not None]
    rechecked = [o for o in present if o.recheck]
    full = any(not o.seen.compact for o in present)
    if rechecked or full:
        objects = list({id(o.obj): o.obj for o in present if o.obj is not None}.values())
        prefetch_shown_runs(objects, shown=bool(rechecked), last_success=full)
    for outcome in rechecked:
        assert outcome.obj is not None
        run, starting = current_state(outcome.seen.job, outcome.obj)
        # as one widget's poll does (widget.settle): the current run re-read (below, with the
        # page's others), or the trigger asked about
        outcome.run, outcome.starting = (run, None) if starting is None else settle(run, starting)
    refreshing.refresh_shown(_unfinished(rechecked), started=started)
    return outcomes


def _unfinished(outcomes: Iterable[Outcome]) -> list[JobRun]:
    """The unfinished runs these widgets show, each once."""
    runs = {
        o.run.pk: o.run for o in outcomes if o.starting is None and o.run is not None and not o.run.finished
    }
    return list(runs.values())


def _links(widgets: Sequence[Seen], since: datetime) -> dict[tuple[int, str, str], list[JobRecord]]:
    """The page's one query: the links of the runs the widgets show, and every link made since ``since``.

    Each branch of the OR is an index's: (content type, record, DAG, created) for
    the new links (in a subquery of its own), the run's key for the shown runs.
    """
    groups: dict[int, tuple[set[str], set[str], set[int]]] = defaultdict(lambda: (set(), set(), set()))
    for seen in widgets:
        object_ids, dag_ids, run_pks = groups[seen.content_type.pk]
        object_ids.add(seen.object_id)
        dag_ids.add(seen.job.dag_id)
        if seen.run_pk is not None:
            run_pks.add(seen.run_pk)
    where = Q()
    for type_id, (object_ids, dag_ids, run_pks) in groups.items():
        of_records = Q(content_type_id=type_id, object_id__in=sorted(object_ids))
        # A subquery, so that the database picks the index that reaches ``since`` for it
        # rather than one index for both branches that reads every link of the records.
        made_since = JobRecord.objects.filter(of_records, dag_id__in=sorted(dag_ids), created_at__gte=since)
        where |= Q(pk__in=made_since.values("pk"))
        if run_pks:
            where |= of_records & Q(job_run_id__in=sorted(run_pks))
    found: dict[tuple[int, str, str], list[JobRecord]] = defaultdict(list)
    if not groups:
        return found
    links = JobRecord.objects.filter(where).select_related("job_run", "job_run__started_by", "job_trigger")
    # no widget shows a run's conf or note: a page of runs with large confs does not carry them each poll
    for link in links.defer("job_run__conf", "job_run__note"):
        found[(link.content_type_id, link.object_id, link.dag_id)].append(link)
    return found


def _decide(seen: Seen, links: Iterable[JobRecord]) -> Outcome:
    """What the widget shows now as far as its links tell, or that it must be looked up again."""
    job = seen.job
    runs = {
        link.job_run.pk: link.job_run
        for link in links
        if link.job_run is not None and link.job_run.environment == job.environment
    }
    opened = [
        link.job_trigger
        for link in links
        if link.job_trigger is not None
        and link.job_trigger.environment == job.environment
        and link.job_trigger.outcome in JobTrigger.OPEN
    ]
    if seen.starting:
        return Outcome(seen, recheck="starting")  # its trigger asked about, as one widget's poll asks
    if (seen.run_pk is None) != (seen.tag == NONE_TAG):
        return Outcome(seen, recheck="missing")  # a key that does not add up: look it up
    shown = runs.get(seen.run_pk) if seen.run_pk is not None else None
    if seen.run_pk is not None and shown is None:
        return Outcome(seen, recheck="missing")  # deleted meanwhile (retention): the one before is shown
    if shown is not None and not shown.finished:
        return Outcome(seen, run=shown)  # followed by its key while unfinished, as widget.poll does
    if shown is not None and fingerprint(shown) != seen.tag:
        return Outcome(seen, recheck="ended")  # ended or changed: another run may be current now
    newer = [
        run
        for pk, run in runs.items()
        if pk != seen.run_pk
        and (not run.finished or shown is None or (run.created_at, run.pk) > (shown.created_at, shown.pk))
    ]
    if newer or opened:
        return Outcome(seen, recheck="new")  # a run or a trigger started elsewhere, or here in another tab
    return Outcome(seen, run=shown)


def _records(outcomes: Iterable[Outcome]) -> dict[tuple[type[models.Model], str], models.Model]:
    """The records of these widgets: one query per model."""
    wanted: dict[type[models.Model], set[Any]] = defaultdict(set)
    for outcome in outcomes:
        wanted[outcome.seen.model].add(outcome.seen.pk)
    found: dict[tuple[type[models.Model], str], models.Model] = {}
    for model, pks in wanted.items():
        for obj in model._default_manager.filter(pk__in=pks):
            found[(model, str(obj.pk))] = obj
    return found


def mode_of(outcomes: Sequence[Outcome]) -> str:
    """The cadence the page needs now."""
    present = [o for o in outcomes if not o.gone]
    if any(o.polling for o in present):
        return ACTIVE
    return IDLE if present else DORMANT


def moved_on(outcomes: Iterable[Outcome]) -> bool:
    """Whether something new turned up: the cursor moves on, so it is not looked up again on every poll."""
    return any(o.recheck == "new" for o in outcomes)


# --- rendering ----------------------------------------------------------------------------------


def render_outcome(request: HttpRequest, outcome: Outcome, next_url: str) -> SafeString:
    """A changed widget, swapped in out of band (a removed record's widget is removed)."""
    seen = outcome.seen
    obj = outcome.obj if outcome.obj is not None else seen.stand_in()
    widget = Widget(
        seen.job,
        obj,
        seen.uid,
        compact=seen.compact,
        run=outcome.run,
        starting=outcome.starting,
        next_url=next_url,
    )
    if outcome.gone:
        return format_html('<section id="{}" hx-swap-oob="delete"></section>', widget.dom_id)
    return widget.render(request, oob=True)


def render_poller(
    request: HttpRequest | None, *, mode: str, since: datetime, next_url: str, oob: bool = False
) -> SafeString:
    """The poller element: polls at the cadence of ``mode``, and whenever POLL_EVENT reaches the body."""
    settings = get_settings()
    interval = {ACTIVE: settings.poll_interval, IDLE: settings.idle_poll_interval}.get(mode)
    context = {
        "poller_id": POLLER_ID,
        "poll_url": reverse("airflow_client:page_poll"),
        "interval": htmx_seconds(interval) if interval else "",
        "event": POLL_EVENT,
        "mode": mode,
        "since": int(since.timestamp()),
        "next": next_url,
        "oob": oob,
    }
    return render_to_string(POLLER_TEMPLATE, context, request=request)


# --- the page that is being rendered ------------------------------------------------------------


@dataclass
class _PageState:
    """The widgets rendered so far in one response, and whether its poller was."""

    widgets: int = 0
    active: bool = False
    poller: bool = False


def _state(request: HttpRequest) -> _PageState:
    state: _PageState | None = getattr(request, "_airflow_client_page", None)
    if state is None:
        state = _PageState()
        request._airflow_client_page = state  # type: ignore[attr-defined]
    return state


def may_poll(request: HttpRequest | None) -> bool:
    """Whether this user's page gets a poller: it may open the poll (view_jobrun), and Airflow is on."""
    user = getattr(request, "user", None)
    return bool(
        get_settings().enabled
        and user is not None
        and user.is_authenticated
        and user.has_perm("airflow_client.view_jobrun")
    )


def note_widgets(request: HttpRequest | None, widgets: Sequence[Widget]) -> SafeString:
    """Count widgets ``{% airflow_status %}`` rendered; in an htmx partial, wake the page's poller.

    A partial's widgets join the page's poll anyway (hx-include finds them when
    it fires); the poller, swapped out of band at the active cadence, looks
    soon rather than at the idle one (or never, on a page that had no widget).
    """
    if request is None or not widgets:
        return SafeString("")
    state = _state(request)
    state.widgets += len(widgets)
    state.active = state.active or any(widget.polling for widget in widgets)
    htmx = getattr(request, "htmx", None)
    partial = bool(htmx) and not htmx.boosted and not htmx.history_restore_request  # type: ignore[union-attr]
    if not partial or state.poller or not may_poll(request):
        return SafeString("")
    state.poller = True
    page = safe_next(request, htmx.current_url_abs_path)  # type: ignore[union-attr]
    return render_poller(request, mode=ACTIVE, since=timezone.now() - MARGIN, next_url=page, oob=True)


def page_poller(request: HttpRequest | None) -> SafeString:
    """``{% airflow_poller %}``: the page's poller, once per response, at the cadence of the widgets above it."""
    if request is None or not may_poll(request):
        return SafeString("")
    state = _state(request)
    if state.poller:
        return SafeString("")
    state.poller = True
    mode = ACTIVE if state.active else IDLE if state.widgets else DORMANT
    return render_poller(request, mode=mode, since=timezone.now() - MARGIN, next_url=request.get_full_path())
