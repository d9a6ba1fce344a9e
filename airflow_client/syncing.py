"""sync(): bring the recorded runs in line with Airflow (not sync.py: importing it would shadow sync()).

For each environment, in this order:

1. settle triggers whose outcome is unknown (sent, never answered) by asking
   Airflow for their run id;
2. list, page by page, the runs of every registered Job's DAG and of every DAG
   with a run unfinished here: first the unfinished ones (queued, running), then
   those that ended since the last listing. Runs this app has never seen
   (started from Airflow's UI, a schedule, the CLI) are recorded and linked to
   their records through ``Job.get_objects(conf)``; known runs are compared
   with the listing in bulk, and only those that changed are written;
3. read one by one (coalesced by refreshing.refresh) the unfinished runs no
   listing showed: deleted in Airflow, ended before the window, or passed over
   while Airflow's pages shifted under a run that ended meanwhile.

With a transport that lists several DAGs at once (every built-in one), that is
one request per 100 runs listed, plus one per run in step 3.

Where to remember "listed up to": the time of each DAG's last successful
listing lives in Django's default cache, one key per environment. It is not
derived from JobRun.updated_at / refreshed_at because those also move when a
widget refreshes a single run, which says nothing about runs never listed. The
next listing asks for runs that ended since that time minus OVERLAP, which
absorbs clock skew between this server and Airflow's database and transactions
that committed late. With nothing remembered (a new Job, a lost or per-process
cache such as LocMemCache under cron) it goes back AIRFLOW_SYNC_HORIZON days:
a longer listing, never a missed run. (Airflow does not move a run's end when a
finished run is marked otherwise or its note is edited: such late changes to a
finished run are not listed; refresh(job_run, force=True) reads them.)

A transport that cannot filter on states lists each registered DAG's runs
updated since the last listing instead (or, failing that too, its newest runs
back to the horizon), and every unfinished run not listed is read on its own.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import takewhile
from typing import Any

from django.core.cache import cache
from django.db import models
from django.db.models import Min, Q
from django.db.models.functions import Coalesce
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
from airflow_client.states import ACTIVE_STATES, FINISHED_STATES
from airflow_client.transports import get_transport, payloads
from airflow_client.transports.base import Capabilities, DagRun, RunQuery, Transport
from airflow_client.triggering import pending_limit, resolve_trigger

__all__ = ["CHUNK", "OVERLAP", "SyncReport", "sync"]

logger = logging.getLogger(__name__)

#: How far before the last successful listing the next one starts looking.
OVERLAP = timedelta(minutes=5)
#: Listed runs compared with the database per query (and unfinished runs loaded per query).
CHUNK = 500

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
        seen = _list(alias, transport, tally, discover=discover)
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


# --- 2. listings --------------------------------------------------------------------------------

#: The states of the first listing (runs going on) and of the second (runs ended lately).
_GOING_ON = tuple(sorted(str(state) for state in ACTIVE_STATES))
_ENDED = tuple(sorted(str(state) for state in FINISHED_STATES))


@dataclass
class _Listings:
    """One environment's listings: what they need and what they saw."""

    alias: str
    capabilities: Capabilities
    tally: _Tally
    #: the environment's Jobs by DAG id
    jobs: dict[str, list[Job]]
    #: DAGs whose runs unknown here are recorded (the registered Jobs', when discovering).
    discovering: frozenset[str]
    #: pks of the JobRuns the listings covered.
    seen: set[int] = field(default_factory=set)


def _list(alias: str, transport: Transport, tally: _Tally, *, discover: bool) -> set[int] | None:
    """List the runs sync compares: the pks of the JobRuns covered, None if Airflow is unreachable."""
    jobs: dict[str, list[Job]] = defaultdict(list)
    for job in all_jobs():
        if job.environment == alias:
            jobs[job.dag_id].append(job)
    capabilities = transport.capabilities
    discovering = frozenset(jobs) if discover else frozenset()
    listings = _Listings(alias, capabilities, tally, jobs, discovering)
    # Without state filters, a DAG listed only for its unfinished runs would mean reading its whole history.
    oldest = _oldest_reads(alias) if capabilities.state_filters else {}
    dag_ids = sorted(listings.discovering | set(oldest))
    if not dag_ids:
        return listings.seen
    # Without batch listing, several DAGs would be one request each anyway: list them one by one
    # so that an error names its DAG and spares the others.
    groups = [dag_ids] if capabilities.batch_listing else [[dag_id] for dag_id in dag_ids]
    listed = _listed(alias)
    horizon = timezone.now() - timedelta(days=get_settings().sync_horizon)
    while groups:
        group = groups.pop(0)
        started = timezone.now()
        since = _window_start(group, listings.discovering, listed, oldest, horizon)
        try:
            for query in _queries(listings, group, since):
                runs: Iterable[DagRun] = transport.list_runs(query)
                if not (capabilities.state_filters or capabilities.updated_since_filter):
                    runs = takewhile(lambda run: _happened_since(run, horizon), runs)  # newest first
                _record(listings, list(runs), started)
        except AirflowError as exc:
            tally.error(alias, f"{alias}/{','.join(group)}: runs not listed: {exc}", exc)
            if _unreachable(exc):
                return None
            if len(group) > 1:  # e.g. one DAG unknown to Airflow: list the others on their own
                groups += [[dag_id] for dag_id in group]
            continue
        tally.environments[alias].answered = True
        _remember(alias, [dag_id for dag_id in group if dag_id in listings.discovering], started)
    return listings.seen


def _queries(listings: _Listings, group: Sequence[str], since: datetime) -> list[RunQuery]:
    """The listings of ``group``: every page of each (limit None), newest first."""
    alias, tally = listings.alias, listings.tally

    def truncated() -> None:
        logger.warning(
            "airflow sync: %s/%s: the listing stopped after %d pages; older runs were not looked at.",
            alias,
            ",".join(group),
            payloads.MAX_RUN_PAGES,
        )

    common: dict[str, Any] = {
        "dag_ids": tuple(group),
        "limit": None,
        # One run Airflow sends unreadable is reported; the others are recorded.
        "on_unreadable": lambda exc: tally.error(alias, f"{alias}: {exc}", exc),
        "on_truncated": truncated,
    }
    if listings.capabilities.state_filters:
        # Going on first: with a retention policy, the runs that ended are then judged
        # against the newest ones, which are usually those going on.
        return [RunQuery(states=_GOING_ON, **common), RunQuery(states=_ENDED, ended_since=since, **common)]
    if listings.capabilities.updated_since_filter:
        return [RunQuery(updated_since=since, **common)]
    return [RunQuery(**common)]  # cut at the horizon as it is read (newest first)


def _window_start(
    group: Iterable[str],
    discovering: frozenset[str],
    listed: Mapping[str, datetime],
    oldest: Mapping[str, datetime],
    horizon: datetime,
) -> datetime:
    """Since when ``group``'s ended runs are listed: never before the horizon.

    A DAG being discovered: since its last listing (the horizon when none is
    remembered). A DAG listed only for its unfinished runs here: since the
    oldest of them was last read, when it was still going on.
    """
    starts = []
    for dag_id in group:
        if dag_id in discovering:
            mark = listed.get(dag_id)
            starts.append(horizon if mark is None else mark - OVERLAP)
        elif dag_id in oldest:
            starts.append(oldest[dag_id] - OVERLAP)
    return max([horizon, min(starts, default=horizon)])


def _oldest_reads(alias: str) -> dict[str, datetime]:
    """{dag_id: when its least recently read unfinished run was last read} (one query)."""
    rows = (
        JobRun.objects.active()
        .filter(environment=alias)
        .values("dag_id")
        .annotate(oldest=Min(Coalesce("refreshed_at", "created_at")))
        .order_by()
    )
    return {row["dag_id"]: row["oldest"] for row in rows}


def _happened_since(dag_run: DagRun, horizon: datetime) -> bool:
    when = dag_run.run_after or dag_run.queued_at or dag_run.logical_date or dag_run.start_date
    return when is None or when >= horizon


def _record(listings: _Listings, dag_runs: Sequence[DagRun], started: datetime) -> None:
    """Record one listing (newest first): known runs compared in bulk, new ones created and linked.

    A few queries per CHUNK runs; only a run that changed, or is new here, costs
    queries of its own.
    """
    alias = listings.alias
    for start in range(0, len(dag_runs), CHUNK):
        chunk = dag_runs[start : start + CHUNK]
        run_ids = {dag_run.run_id for dag_run in chunk}
        known = {
            (job_run.dag_id, job_run.dag_run_id): job_run
            for job_run in JobRun.objects.filter(
                environment=alias, dag_id__in={dag_run.dag_id for dag_run in chunk}, dag_run_id__in=run_ids
            )
        }
        new = [
            dag_run.run_id
            for dag_run in chunk
            if (dag_run.dag_id, dag_run.run_id) not in known and dag_run.dag_id in listings.discovering
        ]
        # Runs of triggers still open are recorded by the trigger path, as started here.
        triggered = (
            set(
                JobTrigger.objects.open()
                .filter(environment=alias, run_id__in=new)
                .values_list("dag_id", "run_id")
            )
            if new
            else set()
        )
        unchanged: list[int] = []
        # Newest first: with a retention policy, older runs are then judged against newer ones
        # already recorded and are simply not kept, rather than recorded, signalled and deleted.
        for dag_run in chunk:
            try:
                _record_one(listings, dag_run, known, triggered, started, unchanged)
            except AirflowClientError as exc:  # e.g. a value the database cannot hold: the others go on
                listings.tally.error(
                    alias, f"{alias}/{dag_run.dag_id}/{dag_run.run_id}: not recorded: {exc}", exc
                )
        # Read just now, as a refresh would have: one UPDATE for the chunk (never moved back).
        JobRun.objects.filter(pk__in=unchanged).filter(
            Q(refreshed_at__isnull=True) | Q(refreshed_at__lt=started)
        ).update(refreshed_at=started, refresh_error="")


def _record_one(
    listings: _Listings,
    dag_run: DagRun,
    known: Mapping[tuple[str, str], JobRun],
    triggered: set[tuple[str, str]],
    started: datetime,
    unchanged: list[int],
) -> None:
    """Record one listed run (see _record); the pk of the JobRun it covers goes to ``listings.seen``."""
    alias, tally = listings.alias, listings.tally
    key = (dag_run.dag_id, dag_run.run_id)
    dag_jobs = listings.jobs.get(dag_run.dag_id, [])
    job_run = known.get(key)
    if job_run is not None:
        listings.seen.add(job_run.pk)
        if job_run.refreshed_at is not None and job_run.refreshed_at > started:
            return  # someone read it after this listing started: theirs is newer
        if not job_run.differs_from(dag_run):
            unchanged.append(job_run.pk)
            return
        # Deleted meanwhile (retention dropped it before Airflow re-opened it): recorded anew, linked.
        _job_run, created = record_dag_run(
            alias, dag_run, records_if_new=lambda: records_for_conf(dag_jobs, dag_run.conf)
        )
        tally.add("discovered" if created else "updated")
        return
    if key in triggered or dag_run.dag_id not in listings.discovering:
        return
    try:
        records = records_for_conf(dag_jobs, dag_run.conf)
    except Exception as exc:  # a user's get_objects(): the run is retried next sync
        tally.errors.append(f"{alias}/{dag_run.dag_id}/{dag_run.run_id}: get_objects() failed: {exc!r}")
        return
    if dag_run.finished and not _kept(alias, dag_jobs, dag_run, records):
        tally.add("not_kept")
        return
    job_run, created = record_dag_run(alias, dag_run, records)
    listings.seen.add(job_run.pk)
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


def _remember(alias: str, dag_ids: Sequence[str], started: datetime) -> None:
    if not dag_ids:
        return
    listed = _listed(alias)  # re-read: another environment's or process's marks stay
    listed.update(dict.fromkeys(dag_ids, started))
    try:
        cache.set(_CACHE_KEY.format(alias), listed, timeout=None)
    except Exception:
        logger.warning("airflow sync: cannot write the cache.", exc_info=True)


# --- 3. unfinished runs --------------------------------------------------------------------------


def _refresh_unfinished(alias: str, seen: set[int], tally: _Tally) -> None:
    """Read one by one the unfinished runs no listing covered (oldest first)."""
    runs = JobRun.objects.active().filter(environment=alias).order_by("created_at", "id")
    missing = [pk for pk in runs.values_list("pk", flat=True) if pk not in seen]
    for start in range(0, len(missing), CHUNK):
        pks = missing[start : start + CHUNK]
        loaded = JobRun.objects.in_bulk(pks)
        for job_run in (loaded[pk] for pk in pks if pk in loaded):
            _refresh_one(alias, job_run, tally)


def _refresh_one(alias: str, job_run: JobRun, tally: _Tally) -> None:
    before = (job_run.refreshed_at, _snapshot(job_run))
    try:
        job_run = refresh(job_run)
    except AirflowClientError as exc:
        tally.error(alias, f"{alias}/{job_run.dag_id}/{job_run.dag_run_id}: {exc}", exc)
        return
    if job_run.refreshed_at == before[0]:
        return  # coalesced: another caller read it moments ago (or it finished meanwhile)
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
