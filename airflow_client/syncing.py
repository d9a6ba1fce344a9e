"""sync(): bring the recorded runs in line with Airflow (not sync.py: importing it would shadow sync()).

For each environment, in this order:

1. settle triggers whose outcome is unknown (sent, never answered) by asking
   Airflow for their run id;
2. discover: list the runs of every registered Job's DAG and record those this
   app has never seen (started from Airflow's UI, a schedule, the CLI), linked
   to their records through ``Job.get_objects(conf)``; known runs in the same
   listing are updated from it, without a request of their own;
3. refresh, one request each (coalesced by refreshing.refresh), the unfinished
   runs the listing did not cover.

Where to remember "listed up to": the time of each DAG's last successful
listing lives in Django's default cache, one key per environment. It is not
derived from JobRun.updated_at / refreshed_at because those also move when a
widget refreshes a single run, which says nothing about runs never listed; a
lost or per-process cache (LocMemCache under cron) costs a bounded listing of
the newest runs instead, never a missed change. The next listing asks for runs
updated since that time minus OVERLAP, which absorbs clock skew between this
server and Airflow's database and transactions that committed late.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.core.cache import cache
from django.db import models
from django.db.models import Q
from django.utils import timezone

from airflow_client import pruning
from airflow_client.conf import get_settings
from airflow_client.exceptions import (
    AirflowClientError,
    AirflowError,
    AirflowUnavailable,
    AuthenticationFailed,
    ConfigurationError,
)
from airflow_client.jobs import Job, all_jobs, records_for_conf
from airflow_client.models import JobRun, JobTrigger, content_key
from airflow_client.refreshing import record_dag_run, recorded_at, refresh
from airflow_client.transports import get_transport
from airflow_client.transports.base import DagRun, RunQuery, Transport
from airflow_client.triggering import pending_limit, resolve_trigger

__all__ = ["FULL_LIMIT", "OVERLAP", "WINDOW_LIMIT", "SyncReport", "sync"]

logger = logging.getLogger(__name__)

#: How far before the last successful listing the next one starts looking.
OVERLAP = timedelta(minutes=5)
#: Runs read per DAG when nothing is remembered or the transport cannot filter by update time.
FULL_LIMIT = 100
#: Runs read per listing of "updated since" (a sync interval's worth of changes).
WINDOW_LIMIT = 1000

_CACHE_KEY = "airflow_client:sync:listed:{}"


@dataclass(frozen=True)
class SyncReport:
    """What one sync() did; ``str()`` gives the lines ``manage.py airflow_sync`` prints."""

    #: unfinished runs re-read from Airflow one by one.
    refreshed: int = 0
    #: runs started outside this app, recorded by this sync.
    discovered: int = 0
    #: known runs whose state, times or note changed.
    updated: int = 0
    #: unanswered triggers whose run was found in Airflow.
    resolved: int = 0
    #: finished runs found in Airflow that their Job's retention would delete at once (not recorded).
    not_kept: int = 0
    #: readable lines, each naming the environment and the DAG or run.
    errors: tuple[str, ...] = ()
    #: environments synced, and those where Airflow could not be reached (or refused us).
    environments: tuple[str, ...] = ()
    failed_environments: tuple[str, ...] = ()
    #: of the failed environments, those where Airflow refused this site's credentials (401/403).
    auth_failed_environments: tuple[str, ...] = ()
    #: AIRFLOW_ENABLED was False: nothing was asked of Airflow.
    disabled: bool = False

    @property
    def all_failed(self) -> bool:
        """True when no environment could be synced (typically: Airflow is down)."""
        return bool(self.environments) and set(self.failed_environments) == set(self.environments)

    def __str__(self) -> str:
        if self.disabled:
            return "Airflow is turned off on this site (AIRFLOW_ENABLED = False): nothing was synced."
        counts = (
            f"Refreshed {self.refreshed} run(s), discovered {self.discovered}, updated {self.updated}, "
            f"resolved {self.resolved} trigger(s)"
        )
        if self.not_kept:
            counts += f", {self.not_kept} finished run(s) not kept by retention"
        lines = [counts + "."]
        lines += [f"  {alias}: {self._outcome(alias)}" for alias in self.environments]
        if self.errors:
            lines.append(f"{len(self.errors)} error(s):")
            lines += [f"  {error}" for error in self.errors]
        return "\n".join(lines)

    def _outcome(self, alias: str) -> str:
        if alias in self.auth_failed_environments:
            return "FAILED (Airflow refused the credentials)"
        return "FAILED" if alias in self.failed_environments else "ok"


@dataclass
class _Environment:
    answered: bool = False  # at least one request succeeded
    unreachable: bool = False  # at least one request could not reach Airflow (or was refused)
    refused: bool = False  # at least one request had this site's credentials refused


@dataclass
class _Tally:
    counts: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    environments: dict[str, _Environment] = field(default_factory=dict)

    def add(self, name: str, number: int = 1) -> None:
        self.counts[name] = self.counts.get(name, 0) + number

    def error(self, alias: str, message: str, exc: BaseException | None = None) -> None:
        self.errors.append(message)
        logger.warning("airflow sync: %s", message)
        if exc is None or _unreachable(exc):
            self.environments[alias].unreachable = True
        if exc is not None and _refused(exc):
            self.environments[alias].refused = True

    def report(self) -> SyncReport:
        failed = [alias for alias, env in self.environments.items() if env.unreachable and not env.answered]
        counts: dict[str, Any] = dict(self.counts)
        return SyncReport(
            **counts,
            errors=tuple(self.errors),
            environments=tuple(self.environments),
            failed_environments=tuple(failed),
            auth_failed_environments=tuple(alias for alias in failed if self.environments[alias].refused),
        )


def _unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` means Airflow as a whole cannot be used (not: this run or DAG is wrong)."""
    # refresh() wraps an answer such as NotFound in AirflowUnavailable; the cause tells.
    cause = exc.__cause__ if isinstance(exc.__cause__, AirflowError) else exc
    return isinstance(cause, (AirflowUnavailable, AuthenticationFailed)) or not isinstance(
        cause, AirflowError
    )


def _refused(exc: BaseException) -> bool:
    """Whether ``exc`` is Airflow refusing this site's credentials (refresh() wraps it)."""
    return isinstance(exc, AuthenticationFailed) or isinstance(exc.__cause__, AuthenticationFailed)


def sync(*, environment: str | None = None, discover: bool = True) -> SyncReport:
    """Settle open triggers, discover runs started elsewhere, refresh unfinished runs.

    ``environment``: only this alias of AIRFLOW_ENVIRONMENTS (ConfigurationError
    if there is none). ``discover=False`` skips listing runs. Airflow errors do
    not raise: they are in the report, and the recorded runs are kept as they were.
    With AIRFLOW_ENABLED False nothing is done (``report.disabled``).
    """
    if not get_settings().enabled:
        return SyncReport(disabled=True)
    tally = _Tally()
    for alias in _aliases(environment):
        tally.environments[alias] = _Environment()
        try:
            transport = get_transport(alias)
        except ConfigurationError as exc:
            tally.error(alias, f"{alias}: {exc}", exc)
            continue
        _settle_triggers(alias, transport, tally)
        seen: set[int] | None = set()
        if discover:
            seen = _discover(alias, transport, tally)
        if seen is None:
            _skip_unfinished(alias, tally, refused=tally.environments[alias].refused)
        else:
            _refresh_unfinished(alias, seen, tally)
    return tally.report()


def _aliases(environment: str | None) -> list[str]:
    if environment is not None:
        if environment not in get_settings().environments:
            raise ConfigurationError(f"No Airflow environment {environment!r} in AIRFLOW_ENVIRONMENTS.")
        return [environment]
    found = {job.environment for job in all_jobs()}
    found.update(JobRun.objects.active().values_list("environment", flat=True).distinct())
    found.update(JobTrigger.objects.open().values_list("environment", flat=True).distinct())
    return sorted(found)


# --- 1. triggers of unknown outcome --------------------------------------------------------------


def _settle_triggers(alias: str, transport: Transport, tally: _Tally) -> None:
    now = timezone.now()
    # A pending trigger younger than the transport timeout may still be in flight.
    in_flight = now - pending_limit(transport.options)
    triggers = (
        JobTrigger.objects.open()
        .filter(environment=alias)
        .filter(Q(outcome=JobTrigger.Outcome.UNKNOWN) | Q(created_at__lt=in_flight))
    )
    for job_trigger in triggers.order_by("created_at"):
        try:
            job_run = resolve_trigger(job_trigger)
        except AirflowError as exc:
            tally.error(
                alias, f"{alias}/{job_trigger.dag_id}/{job_trigger.run_id}: trigger not settled: {exc}", exc
            )
            continue
        tally.environments[alias].answered = True
        if job_run is not None:
            tally.add("resolved")


# --- 2. discovery --------------------------------------------------------------------------------


def _discover(alias: str, transport: Transport, tally: _Tally) -> set[int] | None:
    """List the registered DAGs' runs: the pks of the JobRuns covered, None if Airflow is unreachable."""
    jobs = [job for job in all_jobs() if job.environment == alias]
    dag_ids = sorted({job.dag_id for job in jobs})
    seen: set[int] = set()
    if not dag_ids:
        return seen
    capabilities = transport.capabilities
    # Without batch listing, several DAGs would be one request each anyway: list them one by one
    # so that an error names its DAG and spares the others.
    groups = [dag_ids] if capabilities.batch_listing else [[dag_id] for dag_id in dag_ids]
    listed = _listed(alias)
    while groups:
        group = groups.pop(0)
        since = _since(listed, group) if capabilities.updated_since_filter else None
        query = RunQuery(
            dag_ids=tuple(group),
            updated_since=since,
            limit=WINDOW_LIMIT if since is not None else FULL_LIMIT * len(group),
            # One run Airflow sends unreadable is reported; the others are recorded.
            on_unreadable=lambda exc: tally.error(alias, f"{alias}: {exc}", exc),
        )
        started = timezone.now()
        try:
            dag_runs = list(transport.list_runs(query))
        except AirflowError as exc:
            tally.error(alias, f"{alias}/{','.join(group)}: runs not listed: {exc}", exc)
            if _unreachable(exc):
                return None
            if len(group) > 1:  # e.g. one DAG unknown to Airflow: list the others on their own
                groups += [[dag_id] for dag_id in group]
            continue
        tally.environments[alias].answered = True
        if len(dag_runs) >= query.limit:
            logger.warning(
                "airflow sync: %s/%s: %d runs listed, the limit; older ones were not looked at.",
                alias,
                ",".join(group),
                query.limit,
            )
        seen |= _record(alias, jobs, dag_runs, started, tally)
        _remember(alias, group, started)
    return seen


def _record(
    alias: str, jobs: Sequence[Job], dag_runs: Sequence[DagRun], started: datetime, tally: _Tally
) -> set[int]:
    """Record one listing (newest first): new runs created and linked, known runs updated."""
    seen: set[int] = set()
    run_ids = {dag_run.run_id for dag_run in dag_runs}
    dags = {dag_run.dag_id for dag_run in dag_runs}
    known = {
        (job_run.dag_id, job_run.dag_run_id): job_run
        for job_run in JobRun.objects.filter(environment=alias, dag_id__in=dags, dag_run_id__in=run_ids)
    }
    # Runs of triggers still open are recorded by the trigger path, as started here.
    triggered = set(
        JobTrigger.objects.open()
        .filter(environment=alias, run_id__in=run_ids)
        .values_list("dag_id", "run_id")
    )
    # Newest first: with a retention policy, older runs are then judged against newer ones
    # already recorded and are simply not kept, rather than recorded, signalled and deleted.
    for dag_run in dag_runs:
        try:
            _record_one(alias, jobs, dag_run, known, triggered, started, seen, tally)
        except AirflowClientError as exc:  # e.g. a value the database cannot hold: the others go on
            tally.error(alias, f"{alias}/{dag_run.dag_id}/{dag_run.run_id}: not recorded: {exc}", exc)
    return seen


def _record_one(
    alias: str,
    jobs: Sequence[Job],
    dag_run: DagRun,
    known: Mapping[tuple[str, str], JobRun],
    triggered: set[tuple[str, str]],
    started: datetime,
    seen: set[int],
    tally: _Tally,
) -> None:
    """Record one listed run (see _record); the pks of the JobRuns it covers go to ``seen``."""
    key = (dag_run.dag_id, dag_run.run_id)
    job_run = known.get(key)
    if job_run is not None:
        seen.add(job_run.pk)
        # Skip when someone read it after this listing started (theirs is newer) or nothing changed.
        read_later = job_run.refreshed_at is not None and job_run.refreshed_at > started
        if read_later or not job_run.differs_from(dag_run):
            return
        # Deleted meanwhile (retention dropped it before Airflow re-opened it): recorded anew, linked.
        dag_jobs = [job for job in jobs if job.dag_id == dag_run.dag_id]
        _job_run, created = record_dag_run(
            alias, dag_run, records_if_new=lambda: records_for_conf(dag_jobs, dag_run.conf)
        )
        tally.add("discovered" if created else "updated")
        return
    if key in triggered:
        return
    dag_jobs = [job for job in jobs if job.dag_id == dag_run.dag_id]
    try:
        records = records_for_conf(dag_jobs, dag_run.conf)
    except Exception as exc:  # a user's get_objects(): the run is retried next sync
        tally.errors.append(f"{alias}/{dag_run.dag_id}/{dag_run.run_id}: get_objects() failed: {exc!r}")
        return
    if dag_run.finished and not _kept(alias, dag_jobs, dag_run, records):
        tally.add("not_kept")
        return
    job_run, created = record_dag_run(alias, dag_run, records)
    seen.add(job_run.pk)
    tally.add("discovered" if created else "updated")  # not created: a concurrent sync was first


def _kept(alias: str, jobs: Iterable[Job], dag_run: DagRun, records: Sequence[models.Model]) -> bool:
    """Whether retention keeps a finished run found in Airflow, were it recorded now."""
    now = timezone.now()
    candidate = JobRun(
        environment=alias,
        dag_id=dag_run.dag_id,
        dag_run_id=dag_run.run_id,
        state=dag_run.state,
        end_date=dag_run.end_date,
        created_at=recorded_at(dag_run, now),  # as record_dag_run would date it
    )
    for job in jobs:
        if not job.retention.deletes:
            continue
        for obj in records:
            if not job.matches_model(type(obj)):
                continue
            content_type, object_id = content_key(obj)
            runs = pruning.runs_of(job, content_type.pk, object_id)
            runs.append(candidate)
            runs.sort(key=lambda run: run.created_at, reverse=True)  # stable: ties keep recorded runs first
            if any(run is candidate for run in job.retention.deletable(runs, now)):
                return False
    return True


def _listed(alias: str) -> dict[str, datetime]:
    """{dag_id: start of its last successful listing} for ``alias`` (empty when unknown)."""
    try:
        value = cache.get(_CACHE_KEY.format(alias))
    except Exception:  # a cache outage only costs a longer listing
        logger.warning("airflow sync: cannot read the cache; listing the newest runs.", exc_info=True)
        return {}
    if not isinstance(value, dict):
        return {}
    return {dag_id: when for dag_id, when in value.items() if isinstance(when, datetime)}


def _since(listed: Mapping[str, datetime], dag_ids: Iterable[str]) -> datetime | None:
    times = [listed.get(dag_id) for dag_id in dag_ids]
    if not times or any(when is None for when in times):
        return None  # a DAG never listed (new Job, lost cache): list its newest runs
    return min(when for when in times if when is not None) - OVERLAP


def _remember(alias: str, dag_ids: Iterable[str], started: datetime) -> None:
    listed = _listed(alias)  # re-read: another environment's or process's marks stay
    listed.update(dict.fromkeys(dag_ids, started))
    try:
        cache.set(_CACHE_KEY.format(alias), listed, timeout=None)
    except Exception:
        logger.warning("airflow sync: cannot write the cache.", exc_info=True)


# --- 3. unfinished runs --------------------------------------------------------------------------


def _refresh_unfinished(alias: str, seen: set[int], tally: _Tally) -> None:
    runs = JobRun.objects.active().filter(environment=alias).exclude(pk__in=seen).order_by("created_at", "id")
    for job_run in runs:
        before = (job_run.refreshed_at, _snapshot(job_run))
        try:
            job_run = refresh(job_run)
        except AirflowClientError as exc:
            tally.error(alias, f"{alias}/{job_run.dag_id}/{job_run.dag_run_id}: {exc}", exc)
            continue
        if job_run.refreshed_at == before[0]:
            continue  # coalesced: another caller read it moments ago
        tally.environments[alias].answered = True
        tally.add("refreshed")
        if _snapshot(job_run) != before[1]:
            tally.add("updated")


def _skip_unfinished(alias: str, tally: _Tally, *, refused: bool = False) -> None:
    # Airflow just failed to answer a listing: asking once per run would only wait out
    # every timeout again. The runs keep their recorded state until the next sync.
    count = JobRun.objects.active().filter(environment=alias).count()
    if count:
        why = "Airflow refused the credentials" if refused else "Airflow unreachable"
        tally.errors.append(f"{alias}: {count} unfinished run(s) not refreshed ({why}).")


def _snapshot(job_run: JobRun) -> tuple[Any, ...]:
    return (job_run.state, job_run.start_date, job_run.end_date, job_run.note)
