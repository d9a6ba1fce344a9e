"""What sync() costs with many unfinished runs, against the mock Airflow 3 (benchmarks/airflow3.py).

* ``sync()`` with 1,000 and with 10,000 unfinished runs: Airflow requests and
  time (median of REPEAT syncs), next to the old way of reading them (one GET
  per unfinished run, each stored on its own: refresh()), measured in the same
  run against the same Airflow. Between two syncs, 1 run in 50 started and 1
  in 100 ended.
* A DAG with more than 100 runs since the last sync: every one is recorded.

Each environment has its own mock Airflow, sleeping LATENCY per request.
"""

from __future__ import annotations

import contextlib
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from benchmarks.harness import MockAirflow, Row, mock_airflow3, setup_django

#: Seconds each request to the mock Airflow waits before answering.
LATENCY = 0.005
#: Syncs timed per size (the median is kept); the old way is timed once.
REPEAT = 5
#: Unfinished runs per row: the small one is the scale the large one is compared to.
SIZES = (1_000, 10_000)
DAG = "bench_sync"  # the DAG of the Job rows() registers (environment "default")


@dataclass
class Environment:
    """One environment alias, its mock Airflow, and ``count`` runs going on in both."""

    alias: str
    airflow: MockAirflow
    count: int

    def record(self) -> None:
        """The runs, in Airflow and recorded here alike (in bulk)."""
        from airflow_client.models import JobRun
        from airflow_client.transports import payloads

        start = datetime.now(timezone.utc) - timedelta(hours=2)
        now = datetime.now(timezone.utc)
        rows = []
        for number in range(self.count):
            when = start + timedelta(seconds=number / 10)
            shown = self.airflow.add_run(
                DAG, f"r{number:06}", "queued", run_after=when, queued_at=when, conf={"id": number}
            )
            run = payloads.parse_dag_run(shown, "v2")
            rows.append(
                JobRun(
                    environment=self.alias,
                    dag_id=run.dag_id,
                    dag_run_id=run.run_id,
                    state=run.state,
                    run_type=run.run_type,
                    triggered_by=run.triggered_by,
                    triggering_user=run.triggering_user or "",
                    run_after=run.run_after,
                    queued_at=run.queued_at,
                    conf=dict(run.conf),
                    refreshed_at=now,
                    pushed_at=now,  # tasks pushed: a refresh reads the run alone, one GET
                )
            )
        JobRun.objects.bulk_create(rows, batch_size=2000)

    def reset(self) -> None:
        """Every run queued, as at the last sync ten minutes ago; since then, in Airflow only,
        1 run in 50 started and 1 in 100 ended."""
        from django.core.cache import cache

        from airflow_client.models import JobRun

        when = datetime.now(timezone.utc) - timedelta(minutes=10)
        keys = self.airflow.run_keys()
        for dag_id, run_id in keys:
            self.airflow.update_run(dag_id, run_id, state="queued")
        JobRun.objects.filter(environment=self.alias).update(
            state="queued", start_date=None, end_date=None, refreshed_at=when
        )
        cache.set(f"airflow_client:sync:listed:{self.alias}", {DAG: when}, timeout=None)
        started = self.count // 50
        for dag_id, run_id in keys[:started]:
            self.airflow.update_run(dag_id, run_id, state="running")
        self.airflow.finish_runs(keys[started : started + self.count // 100])

    def timed(self, work: Callable[[str], Any]) -> tuple[float, int]:
        """Seconds and requests of ``work(alias)`` from a reset, with a new transport (token, version)."""
        from django.test.utils import override_settings

        self.reset()
        with override_settings(AIRFLOW_SYNC_HORIZON=30):  # any AIRFLOW_ change drops the transports
            before = self.airflow.requests
            started = time.perf_counter()
            work(self.alias)
            return time.perf_counter() - started, self.airflow.requests - before


def _synced(alias: str) -> None:
    from airflow_client import sync

    report = sync(environment=alias)
    if report.errors:
        raise RuntimeError(f"sync() of {alias}: {report.errors}")


def _one_get_per_run(alias: str) -> None:
    """The old way: every unfinished run read and stored on its own."""
    from airflow_client.models import JobRun
    from airflow_client.refreshing import refresh

    for job_run in JobRun.objects.active().filter(environment=alias).order_by("created_at", "id"):
        refresh(job_run)


def _sync_rows(db: str, environments: list[Environment]) -> list[Row]:
    """sync() of each environment, REPEAT times in turn (so that a busy moment of the machine
    falls on both sizes alike): the median; then the old way, once each."""
    for environment in environments:
        environment.record()
    times: dict[str, list[float]] = {environment.alias: [] for environment in environments}
    requests: dict[str, int] = {}
    for _attempt in range(REPEAT):
        for environment in environments:
            seconds, count = environment.timed(_synced)
            times[environment.alias].append(seconds)
            requests[environment.alias] = max(count, requests.get(environment.alias, 0))
    old = {environment.alias: environment.timed(_one_get_per_run) for environment in environments}
    small = statistics.median(times[environments[0].alias])
    rows = []
    for environment in environments:
        alias, count = environment.alias, environment.count
        seconds, allowed = statistics.median(times[alias]), math.ceil(count / 100) + 5
        first = environment is environments[0]
        ratio = "" if first else f"; {seconds / small:.1f} x t({environments[0].count:,})"
        old_seconds, old_requests = old[alias]
        rows.append(
            Row(
                what=f"sync() with {count:,} unfinished runs",
                db=db,
                measured=f"{requests[alias]:,} requests, {seconds:.2f} s{ratio}",
                baseline=f"one GET per run: {old_requests:,} requests, {old_seconds:.1f} s",
                target=f"<= ceil(N/100)+5 = {allowed} requests; t(10k) <= 12 x t(1k)",
                passed=requests[alias] <= allowed and (first or seconds <= 12 * small),
            )
        )
    return rows


def _since_last_sync_row(db: str, airflow: MockAirflow) -> Row:
    """A DAG with 250 runs started in Airflow since the last sync: all of them recorded."""
    from airflow_client import sync
    from airflow_client.models import JobRun

    sync(environment="default")  # the last sync: nothing yet
    start = datetime.now(timezone.utc)
    for number in range(250):
        state = ("queued", "running", "success", "failed")[number % 4]
        when = start + timedelta(seconds=number)
        airflow.add_run(DAG, f"new{number:04}", state, run_after=when, conf={"id": number})
    before = airflow.requests
    report = sync(environment="default")
    requests = airflow.requests - before
    recorded = JobRun.objects.filter(environment="default", dag_id=DAG).count()
    return Row(
        what="a DAG with more than 100 runs since the last sync",
        db=db,
        measured=f"250 new runs: {recorded} recorded ({report.discovered} discovered), {requests} requests",
        baseline="100 runs listed, the limit; the 150 older ones not looked at",
        target="every run since the horizon seen, page by page",
        passed=recorded == 250,
    )


def _register_job() -> None:
    """A Job on a model every site has, so the runs of DAG are discovered whatever the settings."""
    from airflow_client.jobs import Job, register

    class BenchSync(Job):
        dag_id = DAG
        model = "auth.User"
        conf_key = "id"

    register(BenchSync)


def rows(db: str) -> list[Row]:
    setup_django(db)
    from django.test.utils import override_settings

    _register_job()
    with contextlib.ExitStack() as stack:
        mocks = {
            alias: stack.enter_context(mock_airflow3(LATENCY))[1]
            for alias in [*(f"runs_{count}" for count in SIZES), "default"]
        }
        environments = {alias: airflow.environment() for alias, airflow in mocks.items()}
        stack.enter_context(override_settings(AIRFLOW_ENVIRONMENTS=environments, AIRFLOW_REFRESH_INTERVAL=0))
        sized = [Environment(f"runs_{count}", mocks[f"runs_{count}"], count) for count in SIZES]
        return [*_sync_rows(db, sized), _since_last_sync_row(db, mocks["default"])]
