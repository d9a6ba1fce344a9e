"""The pages and partials users see: the widget's poll and trigger, job history, run detail and logs.

Every view needs login and ``airflow_client.view_jobrun``. None talks to a
transport: runs are read and started through :mod:`airflow_client.refreshing`
and :mod:`airflow_client.triggering`.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from typing import Any, TypeVar

from django.apps import apps
from django.contrib import messages
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import ObjectDoesNotExist, PermissionDenied
from django.db import models
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseBase,
    HttpResponseRedirect,
)
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.translation import gettext, gettext_lazy
from django.views.decorators.http import require_GET, require_POST
from django_filters.views import FilterView
from django_htmx.http import (
    HttpResponseClientRedirect,
    HttpResponseClientRefresh,
    HttpResponseStopPolling,
    trigger_client_event,
)
from django_tables2 import SingleTableMixin

from airflow_client import controls, pagepoll, refreshing, triggering
from airflow_client.charts import history_chart
from airflow_client.conf import get_settings
from airflow_client.display import airflow_url, log_page_url
from airflow_client.exceptions import (
    AirflowClientError,
    AirflowDisabled,
    AlreadyRunning,
    AuthenticationFailed,
    NotFound,
    TriggerFailed,
    UnknownJob,
)
from airflow_client.filters import JobRunFilter
from airflow_client.jobs import Job, find_job
from airflow_client.models import JobRun, JobTrigger
from airflow_client.states import RunState
from airflow_client.tables import (
    PER_PAGE_DEFAULT,
    BoundedPaginator,
    JobRunTable,
    annotate_for_sorting,
    csv_response,
)
from airflow_client.widget import Widget, confirm_question, look_up, poll, safe_next, unchanged

VIEW_PERMISSION = "airflow_client.view_jobrun"
#: Most log lines on one page of the log viewer; "load more" shows the next ones.
LOG_LINES_PER_PAGE = 1000
#: Most tries of one task listed on the run detail (the latest ones).
MAX_TRIES_SHOWN = 100
#: Most events shown on a run's timeline (a run of many mapped tasks sends thousands).
TIMELINE_EVENTS = 300
#: No try above this is asked of Airflow (Airflow would have to have retried a task this often).
MAX_TRY_NUMBER = 10_000

_V = TypeVar("_V", bound=Callable[..., HttpResponseBase])


def _guarded(view: _V) -> _V:
    """Anonymous users go to the login page; signed-in users without the permission get a 403.

    An htmx request whose session expired gets a client refresh instead of the
    redirect: htmx would follow it and swap the login page into the widget.
    """
    guarded = login_required(permission_required(VIEW_PERMISSION, raise_exception=True)(view))

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if getattr(request, "htmx", False) and not request.user.is_authenticated:
            return HttpResponseClientRefresh()
        return guarded(request, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


# --- the widget ---------------------------------------------------------------------------------


def _job_and_model(model: str, dag_id: str) -> tuple[Job, type[models.Model]]:
    """The Job of ``dag_id`` for the model labelled ``model`` ("app_label.modelname"), or 404."""
    try:
        model_class = apps.get_model(model)
    except (LookupError, ValueError):
        raise Http404(gettext("No such kind of record.")) from None
    try:
        return find_job(model_class, dag_id), model_class
    except UnknownJob:
        raise Http404(gettext("No such job for this kind of record.")) from None


def _pk(model_class: type[models.Model], object_id: str) -> Any:
    pk = pagepoll.record_pk(model_class, object_id)
    if pk is None:
        raise Http404(gettext("No such record."))
    return pk


@_guarded
@require_GET
def status(request: HttpRequest, model: str, dag_id: str, object_id: str) -> HttpResponseBase:
    """The polling partial: the widget again, or 204 when nothing changed, or 286 once finished."""
    job, model_class = _job_and_model(model, dag_id)
    pk = _pk(model_class, object_id)
    # An unsaved stand-in is enough to find the run; the record is only read when rendering.
    run, starting = poll(job, model_class(pk=pk), request.GET.get("run"))
    if unchanged(request, run, starting):
        # Not 304: htmx 2 swaps a 304's empty body in; 204 it ignores, and polling goes on.
        return HttpResponse(status=204)
    obj = model_class._default_manager.filter(pk=pk).first()
    if obj is None:
        # The record is gone: a 404 would leave htmx polling forever; this removes the widget.
        return HttpResponseStopPolling("")
    widget = Widget.from_request(request, job, obj, run=run, starting=starting)
    html = widget.render(request)
    return HttpResponse(html) if widget.polling else HttpResponseStopPolling(html)


@_guarded
@require_GET
def page_poll(request: HttpRequest) -> HttpResponseBase:
    """The page's one poll: the widgets that changed, swapped out of band, or 204 when none did.

    The poller comes back too when the page's cadence changes (a run started or
    the last one ended) or something new turned up (its cursor moves on).
    """
    if not get_settings().enabled:
        return HttpResponseStopPolling("")  # Airflow turned off: pages show what is recorded
    now = timezone.now()
    page = pagepoll.read(request, now)
    outcomes = pagepoll.look(page.widgets, page.since)
    changed = [outcome for outcome in outcomes if outcome.changed]
    mode = pagepoll.mode_of(outcomes)
    if not changed and mode == page.mode and not pagepoll.moved_on(outcomes):
        return HttpResponse(status=204)
    parts = [pagepoll.render_outcome(request, outcome, page.next_url) for outcome in changed]
    since = now - pagepoll.MARGIN
    parts.append(pagepoll.render_poller(request, mode=mode, since=since, next_url=page.next_url, oob=True))
    return HttpResponse("".join(parts))


@_guarded
@require_POST
def trigger(request: HttpRequest, model: str, dag_id: str, object_id: str) -> HttpResponseBase:
    """Start the Job for the record; htmx gets the widget back, a plain form a redirect."""
    job, model_class = _job_and_model(model, dag_id)
    pk = _pk(model_class, object_id)
    obj = model_class._default_manager.filter(pk=pk).first()
    if not _may_trigger(request, job, obj if obj is not None else model_class(pk=pk)):
        # The same answer whether or not the record exists, naming none: no existence oracle.
        message = gettext("You may not start “%(job)s” for this record.") % {"job": job.label}
        return render(request, "airflow_client/denied.html", {"message": message}, status=403)
    if obj is None:
        raise Http404(gettext("No such record."))
    next_url = safe_next(request, request.POST.get("next"))
    if job.confirm and request.POST.get("confirmed") != "1":
        # Without JavaScript hx-confirm cannot ask: a page asks instead.
        return render(
            request,
            "airflow_client/confirm.html",
            {"job": job, "obj": obj, "question": confirm_question(job), "next": next_url},
        )
    run, notice, level, text = _start(request, job, obj)
    if request.htmx:  # type: ignore[attr-defined]
        starting = None
        if run is None:
            run, starting = look_up(job, obj)
        widget = Widget.from_request(request, job, obj, run=run, starting=starting)
        response = HttpResponse(widget.render(request, notice=notice))
        # The record's event, for the site's own listeners: sent on receipt, while the form
        # is still in the page for the event to bubble up.
        trigger_client_event(response, widget.changed_event)
        # Once this widget has settled, the page's poller looks now: the other widgets of this
        # record and Job (e.g. a compact one) follow, and the poller takes the active cadence.
        return trigger_client_event(response, pagepoll.POLL_EVENT, after="settle")
    messages.add_message(request, level, text, fail_silently=True)
    if next_url:
        return HttpResponseRedirect(next_url)
    if run is not None:
        return redirect("airflow_client:run_detail", pk=run.pk)
    return redirect(reverse("airflow_client:run_list"))


def _may_trigger(request: HttpRequest, job: Job, obj: models.Model) -> bool:
    """The Job's permission check; for a missing record it sees an unsaved stand-in with that key."""
    try:
        return bool(job.has_trigger_permission(request.user, obj))
    except ObjectDoesNotExist:  # the check followed a relation the stand-in does not have
        return False


def _start(request: HttpRequest, job: Job, obj: models.Model) -> tuple[JobRun | None, str, int, str]:
    """Trigger, and say how it went: (the run if any, the widget's notice, message level, message)."""
    try:
        user = request.user if isinstance(request.user, AbstractBaseUser) else None
        run = triggering.trigger(job, obj, user=user)
    except AlreadyRunning as exc:
        text = gettext("A run of “%(job)s” is already going on for this record.") % {"job": job.label}
        return exc.job_run, text, messages.WARNING, text
    except TriggerFailed as exc:
        if exc.job_trigger.outcome == JobTrigger.Outcome.UNKNOWN:
            # The request may have got through: the widget shows the run as starting until Airflow says.
            text = gettext(
                "Airflow did not confirm in time that “%(job)s” started; the run may have started."
            ) % {"job": job.label}
            return None, text, messages.WARNING, text
        if exc.error is not None:
            text = gettext("Airflow did not start the run: %(reason)s") % {"reason": exc.error.detail}
        else:  # refused on this side, e.g. an earlier trigger of the record is still unanswered
            text = gettext("The run could not be started: %(reason)s") % {"reason": exc}
        return None, text, messages.ERROR, text
    except AirflowClientError as exc:  # e.g. InvalidConf from the Job's get_conf
        text = gettext("The run could not be started: %(reason)s") % {"reason": exc}
        return None, text, messages.ERROR, text
    text = gettext("Started “%(job)s” for “%(record)s”.") % {"job": job.label, "record": obj}
    return run, "", messages.SUCCESS, text


# --- job history --------------------------------------------------------------------------------


def _wants_partial(request: HttpRequest) -> bool:
    """An htmx request that swaps part of the page (a history restore needs the whole page)."""
    htmx = getattr(request, "htmx", None)
    return bool(htmx) and not htmx.history_restore_request  # type: ignore[union-attr]


class RunListView(SingleTableMixin, FilterView):  # type: ignore[misc]
    """Job history: every run, filtered and sorted through the query string."""

    model = JobRun
    table_class = JobRunTable
    filterset_class = JobRunFilter
    template_name = "airflow_client/run_list.html"
    table_pagination = {"per_page": PER_PAGE_DEFAULT, "paginator_class": BoundedPaginator}

    def get_queryset(self) -> models.QuerySet[JobRun]:
        return annotate_for_sorting(JobRun.objects.select_related("started_by"))

    def get_template_names(self) -> list[str]:
        if _wants_partial(self.request):
            return [f"{self.template_name}#table"]
        return [self.template_name]

    def get_table_pagination(self, table: Any) -> Any:
        return self.table_pagination

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context: dict[str, Any] = super().get_context_data(**kwargs)
        context["chart"] = history_chart(self.filterset)  # None unless filtered to a record or a DAG
        return context

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response: HttpResponse = super().get(request, *args, **kwargs)
        # The same URL answers with a whole page or only the table: caches must tell them apart.
        patch_vary_headers(response, ["HX-Request"])
        return response


run_list = _guarded(RunListView.as_view())


@_guarded
@require_GET
def run_list_csv(request: HttpRequest) -> HttpResponseBase:
    """The filtered (and sorted) history as CSV, same query string as the page."""
    filterset = JobRunFilter(
        request.GET, queryset=JobRun.objects.select_related("started_by"), request=request
    )
    if not filterset.is_valid():
        # Said before the stream starts: an error cannot be told once the CSV is on its way.
        errors = [f"{name}: {' '.join(texts)}" for name, texts in filterset.errors.items()]
        return HttpResponseBadRequest("\n".join(errors) + "\n", content_type="text/plain; charset=utf-8")
    return csv_response(request, filterset.qs)


# --- run detail and logs ------------------------------------------------------------------------


@_guarded
@require_GET
def run_detail(request: HttpRequest, pk: int) -> HttpResponse:
    run = get_object_or_404(JobRun.objects.select_related("job_trigger", "started_by"), pk=pk)
    tasks_error = ""
    credentials_refused = airflow_off = False
    try:
        tasks = refreshing.task_instances(run)
    except AirflowClientError as exc:
        tasks, tasks_error = [], str(exc)
        credentials_refused = isinstance(exc, AuthenticationFailed)
        airflow_off = isinstance(exc, AirflowDisabled)
    context = {
        "run": run,
        "records": run.records(),
        "conf_json": json.dumps(run.conf, indent=2, sort_keys=True, ensure_ascii=False),
        "trigger": run.job_trigger,
        "trigger_response": _pretty(run.job_trigger.response) if run.job_trigger else "",
        "tasks": [_task_row(run, task) for task in tasks],
        "tasks_error": tasks_error,
        "credentials_refused": credentials_refused,
        "airflow_off": airflow_off,
        "controls": _controls(request, run),
        "actions": run.actions.select_related("user"),
        "airflow_url": airflow_url(run),
        **_timeline(run),
    }
    return render(request, "airflow_client/run_detail.html", context)


def _timeline(run: JobRun) -> dict[str, Any]:
    """The run's pushed events, oldest first; only the newest TIMELINE_EVENTS of a long one."""
    newest = list(run.events.order_by("-occurred_at", "-id")[: TIMELINE_EVENTS + 1])
    return {"events": newest[:TIMELINE_EVENTS][::-1], "events_cut": len(newest) > TIMELINE_EVENTS}


#: The operators' controls of the run page: URL action -> (permission, button text).
CONTROLS: dict[str, tuple[str, Any]] = {
    "rerun": ("airflow_client.rerun_job", gettext_lazy("Re-run every task")),
    "rerun_failed": ("airflow_client.rerun_job", gettext_lazy("Re-run the failed tasks")),
    "mark_success": ("airflow_client.mark_job", gettext_lazy("Mark succeeded")),
    "mark_failed": ("airflow_client.mark_job", gettext_lazy("Mark failed")),
    "cancel": ("airflow_client.mark_job", gettext_lazy("Cancel the run")),
}


def _controls(request: HttpRequest, run: JobRun) -> list[dict[str, str]]:
    """The controls this user may use on ``run`` now (none while Airflow is turned off)."""
    if not get_settings().enabled:
        return []
    if run.finished:
        shown = ["rerun", *(["rerun_failed"] if run.state == RunState.FAILED else [])]
        shown.append("mark_failed" if run.state == RunState.SUCCESS else "mark_success")
    else:
        shown = ["cancel"]
    return [
        {
            "action": action,
            "label": str(CONTROLS[action][1]),
            "url": reverse("airflow_client:run_control", kwargs={"pk": run.pk, "action": action}),
        }
        for action in shown
        if request.user.has_perm(CONTROLS[action][0])
    ]


@_guarded
@require_POST
def run_control(request: HttpRequest, pk: int, action: str) -> HttpResponseBase:
    """Re-run, mark or cancel a run (a control of the run page), then back to the run page."""
    if action not in CONTROLS:
        raise Http404(gettext("No such action."))
    if not request.user.has_perm(CONTROLS[action][0]):
        raise PermissionDenied
    run = get_object_or_404(JobRun, pk=pk)
    user = request.user if isinstance(request.user, AbstractBaseUser) else None
    try:
        if action in ("rerun", "rerun_failed"):
            controls.rerun(run, user=user, only_failed=action == "rerun_failed")
            text = gettext("Airflow runs it again.")
        elif action == "cancel":
            controls.cancel(run, user=user)
            text = gettext("The run was cancelled.")
        else:
            controls.mark(run, RunState.SUCCESS if action == "mark_success" else RunState.FAILED, user=user)
            text = gettext("The run was marked %(state)s.") % {"state": run.get_state_display().lower()}
    except controls.ControlRefused as exc:
        messages.error(request, str(exc), fail_silently=True)
    else:
        messages.success(request, text, fail_silently=True)
    target = reverse("airflow_client:run_detail", args=[run.pk])
    if getattr(request, "htmx", False):
        return HttpResponseClientRedirect(target)
    return redirect(target)


def _pretty(value: Any) -> str:
    return "" if value is None else json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)


def _task_row(run: JobRun, task: Any) -> dict[str, Any]:
    tries = [
        {
            "number": number,
            "url": log_page_url(run, task.task_id, number, task.map_index),
            "airflow_url": refreshing.log_url(run, task.task_id, number, task.map_index),
            # an id and a CSS selector (hx-target) whatever the task id holds
            "dom_id": re.sub(r"[^\w-]", "-", f"ac-log-{run.pk}-{task.task_id}-{task.map_index}-{number}"),
        }
        # Airflow's word bounds the tries (none for a task that never ran: try_number 0),
        # and a sane maximum bounds Airflow's word.
        for number in range(max(1, task.try_number - MAX_TRIES_SHOWN + 1), task.try_number + 1)
    ]
    return {"task": task, "tries": tries}


def _query_int(request: HttpRequest, name: str, default: int, low: int, high: int) -> int:
    """An integer query parameter within [low, high], or 404."""
    try:
        value = int(request.GET.get(name, default))
    except ValueError:
        raise Http404(gettext("No such task instance.")) from None
    if not low <= value <= high:
        raise Http404(gettext("No such task instance."))
    return value


@_guarded
@require_GET
def run_log(request: HttpRequest, pk: int, task_id: str, try_number: int) -> HttpResponse:
    """One page of a task try's log; "load more" continues where the page stopped.

    Airflow answers a log in chunks (a continuation token leads to the next), and
    a chunk is read up to AIRFLOW_MAX_LOG_BYTES. A page shows at most
    LOG_LINES_PER_PAGE lines of a chunk: ``skip`` says how many of the chunk's
    lines earlier pages showed (the chunk is asked again with the same token).
    """
    run = get_object_or_404(JobRun, pk=pk)
    map_index = _query_int(request, "map_index", -1, -1, 2**31 - 1)
    skip = _query_int(request, "skip", 0, 0, 10**9)
    token = request.GET.get("token") or None
    log_error = ""
    log_missing = False
    lines: tuple[Any, ...] = ()
    more_url = ""
    truncated_url = ""
    if not 1 <= try_number <= MAX_TRY_NUMBER:
        log_error = gettext("Airflow has no try %(number)s of this task.") % {"number": try_number}
    else:
        try:
            chunk = refreshing.task_log(
                run, task_id, try_number, map_index=map_index, continuation_token=token
            )
        except NotFound:
            # A try that existed whose log Airflow no longer has (purged), or no such try at all.
            log_error = gettext("Airflow has no log for this try (it may have been removed).")
            log_missing = True
        except AirflowClientError as exc:
            log_error = str(exc)
        else:
            lines = chunk.lines[skip : skip + LOG_LINES_PER_PAGE]
            if skip + LOG_LINES_PER_PAGE < len(chunk.lines):
                more_url = log_page_url(run, task_id, try_number, map_index, token, skip + LOG_LINES_PER_PAGE)
            elif chunk.truncated:
                truncated_url = refreshing.log_url(run, task_id, try_number, map_index)
            elif chunk.continuation_token and chunk.lines:
                more_url = log_page_url(run, task_id, try_number, map_index, chunk.continuation_token)
    context = {
        "run": run,
        "task_id": task_id,
        "try_number": try_number,
        "map_index": map_index,
        "lines": lines,
        "more_url": more_url,
        "truncated_url": truncated_url,
        "log_error": log_error,
        "log_missing": log_missing,
        "continued": token is not None or skip > 0,
    }
    template = "airflow_client/run_log.html"
    return render(request, f"{template}#log" if _wants_partial(request) else template, context)
