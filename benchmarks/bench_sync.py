"""Issue 12, item 1: what sync() costs with many unfinished runs, against a mock Airflow 3.

Rows (see docs/benchmarks.md once ``make bench`` has run):

* ``sync()`` with 1,000 and with 10,000 unfinished runs: Airflow requests and
  time, next to the way before issue 12 (one GET per unfinished run, each
  stored on its own: refresh()), measured in the same run against the same
  Airflow. Between two syncs, 1 run in 50 started and 1 in 100 ended.
* A DAG with more than 100 runs since the last sync: every one is recorded.

The mock Airflow 3 answers over HTTP on 127.0.0.1 (a threaded http.server),
sleeping LATENCY per request. It is this module's own: the shared harness's
mock (benchmarks/harness.py) was not on this branch when it was written. Run
on its own with ``python -m benchmarks.bench_sync --db sqlite`` (or
``postgresql`` with scripts/postgres.sh started).
"""

from __future__ import annotations

import argparse
import atexit
import base64
import contextlib
import json
import math
import os
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

#: Seconds each request to the mock Airflow waits before answering.
LATENCY = 0.005
#: Syncs timed per size (the median is kept); the baseline is timed once.
REPEAT = 5
#: Unfinished runs per row: the small one is the scale the large one is compared to.
SIZES = (1_000, 10_000)
DAG = "bench_sync"  # the DAG of the Job rows() registers (environment "default")


try:  # the shared harness, once it is on the branch
    from benchmarks.harness import Row, setup_django
except ImportError:  # this module's own stand-ins, with the same interface

    @dataclass(frozen=True)
    class Row:  # type: ignore[no-redef]
        what: str
        db: str
        measured: str
        baseline: str
        target: str
        passed: bool | None

    def setup_django(db: str) -> None:  # type: ignore[misc]
        """Django with the test app's settings on a throwaway database, migrated."""
        import django
        from django.conf import settings

        import tests.settings as base

        values = {name: getattr(base, name) for name in dir(base) if name.isupper()}
        if db == "postgresql":
            import psycopg

            name = f"bench_sync_{os.getpid()}"
            port = os.environ.get("DAC_POSTGRES_PORT", "25432")
            with psycopg.connect(f"host=127.0.0.1 port={port} user=postgres", autocommit=True) as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {name}")
                conn.execute(f"CREATE DATABASE {name}")
            values["DATABASES"] = {
                "default": {
                    "ENGINE": "django.db.backends.postgresql",
                    "NAME": name,
                    "USER": "postgres",
                    "HOST": "127.0.0.1",
                    "PORT": port,
                }
            }
        else:
            folder = tempfile.mkdtemp(prefix="bench-sync-")
            atexit.register(shutil.rmtree, folder, ignore_errors=True)
            path = Path(folder) / "db.sqlite3"
            values["DATABASES"] = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(path)}}
        settings.configure(**values)
        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)


# --- the mock Airflow 3 --------------------------------------------------------------------------


def _token() -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'HS512'})}.{part({'sub': 'admin', 'exp': int(time.time()) + 3600})}.sig"


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


class MockAirflow3:
    """Airflow 3's API for sync: token, version, one run, its tasks, the batch listing."""

    def __init__(self, latency: float) -> None:
        self.latency = latency
        self.requests = 0
        self.lock = threading.Lock()
        #: (dag_id, run_id) -> run JSON, oldest first (run_after grows with insertion).
        self.runs: dict[tuple[str, str], dict[str, Any]] = {}
        self._listed: dict[str, list[dict[str, Any]]] = {}  # filters -> runs, until the runs change

    def add_run(self, dag_id: str, run_id: str, state: str, when: datetime, conf: dict[str, Any]) -> None:
        self.runs[(dag_id, run_id)] = {
            "dag_id": dag_id,
            "dag_run_id": run_id,
            "state": "queued",
            "run_type": "manual",
            "triggered_by": "rest_api",
            "triggering_user_name": "admin",
            "logical_date": None,
            "run_after": _iso(when),
            "queued_at": _iso(when),
            "start_date": None,
            "end_date": None,
            "conf": conf,
            "note": None,
        }
        self.set_state(dag_id, run_id, state, when)

    def set_state(self, dag_id: str, run_id: str, state: str, when: datetime) -> None:
        run = self.runs[(dag_id, run_id)]
        run["state"] = state
        run["start_date"] = None if state == "queued" else run["start_date"] or _iso(when)
        run["end_date"] = _iso(when) if state in ("success", "failed") else None
        self._listed.clear()

    def answer(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        if path == "/auth/token" and method == "POST":
            return 201, {"access_token": _token()}
        if path == "/api/v2/version":
            return 200, {"version": "3.3.2", "git_version": None}
        parts = [unquote(part) for part in path.removeprefix("/api/v2/").split("/")]
        if parts[:3] == ["dags", "~", "dagRuns"] and parts[3:] == ["list"] and method == "POST":
            return 200, self._batch(body)
        if len(parts) >= 4 and parts[0] == "dags" and parts[2] == "dagRuns":
            run = self.runs.get((parts[1], parts[3]))
            if run is None:
                return 404, {"detail": "Not Found"}
            if len(parts) == 4:
                return 200, run
            if parts[4:] == ["taskInstances"]:
                return 200, {"task_instances": [], "total_entries": 0}
        return 404, {"detail": "Not Found"}

    def _batch(self, body: dict[str, Any]) -> dict[str, Any]:
        filters = {key: value for key, value in body.items() if not key.startswith("page_")}
        key = json.dumps(filters, sort_keys=True)
        with self.lock:
            if key not in self._listed:
                dags, states, since = body.get("dag_ids"), body.get("states"), body.get("end_date_gte")
                self._listed[key] = [
                    run
                    for run in reversed(self.runs.values())  # newest first
                    if (not dags or run["dag_id"] in dags)
                    and (not states or run["state"] in states)
                    and (since is None or (run["end_date"] is not None and run["end_date"] >= since))
                ]
            found = self._listed[key]
        offset, limit = body.get("page_offset", 0), body.get("page_limit", 100)
        return {"dag_runs": found[offset : offset + limit], "total_entries": len(found)}

    @contextlib.contextmanager
    def serving(self) -> Iterator[str]:
        airflow = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                # Headers and body go out in two writes: without this, Nagle's algorithm holds
                # the body until the client's delayed ACK (tens of ms per request).
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                with airflow.lock:
                    airflow.requests += 1
                time.sleep(airflow.latency)
                status, data = airflow.answer(
                    self.command, urlsplit(self.path).path, json.loads(raw or b"{}")
                )
                payload = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = _handle

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}"
        finally:
            server.shutdown()
            server.server_close()


# --- scenarios -----------------------------------------------------------------------------------


@dataclass
class Measure:
    requests: int
    seconds: float


@dataclass
class Environment:
    """One environment alias, its own mock Airflow, and ``count`` runs going on in both."""

    alias: str
    airflow: MockAirflow3
    count: int

    def record(self) -> None:
        """The runs, in Airflow and recorded here alike (in bulk)."""
        from airflow_client.models import JobRun
        from airflow_client.transports import payloads

        start = datetime.now(timezone.utc) - timedelta(hours=2)
        for number in range(self.count):
            when = start + timedelta(seconds=number / 10)
            self.airflow.add_run(DAG, f"r{number:06}", "queued", when, {"id": number})
        now = datetime.now(timezone.utc)
        rows = []
        for run in self.airflow.runs.values():
            dag_run = payloads.parse_dag_run(run, "v2")
            rows.append(
                JobRun(
                    environment=self.alias,
                    dag_id=dag_run.dag_id,
                    dag_run_id=dag_run.run_id,
                    state=dag_run.state,
                    run_type=dag_run.run_type,
                    triggered_by=dag_run.triggered_by,
                    triggering_user=dag_run.triggering_user or "",
                    run_after=dag_run.run_after,
                    queued_at=dag_run.queued_at,
                    conf=dict(dag_run.conf),
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
        runs = list(self.airflow.runs.values())
        for run in runs:
            self.airflow.set_state(run["dag_id"], run["dag_run_id"], "queued", when)
        JobRun.objects.filter(environment=self.alias).update(
            state="queued", start_date=None, end_date=None, refreshed_at=when
        )
        cache.set(f"airflow_client:sync:listed:{self.alias}", {DAG: when}, timeout=None)
        later = when + timedelta(minutes=5)
        for run in runs[: self.count // 50]:
            self.airflow.set_state(run["dag_id"], run["dag_run_id"], "running", later)
        for run in runs[self.count // 50 : self.count // 50 + self.count // 100]:
            self.airflow.set_state(run["dag_id"], run["dag_run_id"], "success", later)

    def timed(self, work: Callable[[str], Any]) -> tuple[float, int]:
        """Seconds and requests of ``work(alias)`` from a reset, with a new transport (token, version)."""
        from django.test.utils import override_settings

        self.reset()
        with override_settings(AIRFLOW_SYNC_HORIZON=30):  # any AIRFLOW_ change drops the transports
            before = self.airflow.requests
            started = time.perf_counter()
            work(self.alias)
            return time.perf_counter() - started, self.airflow.requests - before


def _settings(urls: dict[str, str]) -> None:
    from django.test.utils import override_settings

    environments = {
        alias: {"TRANSPORT": "rest", "BASE_URL": url, "USERNAME": "admin", "PASSWORD": "admin"}
        for alias, url in urls.items()
    }
    override_settings(AIRFLOW_ENVIRONMENTS=environments, AIRFLOW_REFRESH_INTERVAL=0).enable()


def _synced(alias: str) -> None:
    from airflow_client import sync

    report = sync(environment=alias)
    assert not report.errors, report.errors


def _one_get_per_run(alias: str) -> None:
    """Before issue 12: every unfinished run read and stored on its own."""
    from airflow_client.models import JobRun
    from airflow_client.refreshing import refresh

    for job_run in JobRun.objects.active().filter(environment=alias).order_by("created_at", "id"):
        refresh(job_run)


def _sync_rows(db: str, environments: list[Environment]) -> list[Row]:
    """sync() of each environment, REPEAT times in turn (so that a busy moment of the machine
    falls on both sizes alike): the median; then the baseline, once each."""
    for environment in environments:
        environment.record()
    times: dict[str, list[float]] = {environment.alias: [] for environment in environments}
    requests: dict[str, int] = {}
    for _attempt in range(REPEAT):
        for environment in environments:
            seconds, count = environment.timed(_synced)
            times[environment.alias].append(seconds)
            requests[environment.alias] = max(count, requests.get(environment.alias, 0))
    new = {alias: Measure(requests[alias], statistics.median(times[alias])) for alias in times}
    old = {}
    for environment in environments:
        seconds, count = environment.timed(_one_get_per_run)
        old[environment.alias] = Measure(count, seconds)
    small = new[environments[0].alias].seconds
    rows = []
    for environment in environments:
        alias, count = environment.alias, environment.count
        allowed = math.ceil(count / 100) + 5
        first = environment is environments[0]
        scales = first or new[alias].seconds <= 12 * small
        ratio = "" if first else f"; {new[alias].seconds / small:.1f} x t({environments[0].count:,})"
        rows.append(
            Row(
                what=f"sync() with {count:,} unfinished runs",
                db=db,
                measured=f"{new[alias].requests:,} requests, {new[alias].seconds:.2f} s{ratio}",
                baseline=f"one GET per run: {old[alias].requests:,} requests, {old[alias].seconds:.1f} s",
                target=f"<= ceil(N/100)+5 = {allowed} requests; t(10k) <= 12 x t(1k)",
                passed=new[alias].requests <= allowed and scales,
            )
        )
    return rows


def _since_last_sync_row(db: str, airflow: MockAirflow3) -> Row:
    """A DAG with 250 runs started in Airflow since the last sync: all of them recorded."""
    from airflow_client import sync
    from airflow_client.models import JobRun

    sync(environment="default")  # the last sync: nothing yet
    start = datetime.now(timezone.utc)
    for number in range(250):
        state = ("queued", "running", "success", "failed")[number % 4]
        airflow.add_run(DAG, f"new{number:04}", state, start + timedelta(seconds=number), {"id": number})
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
    _register_job()
    environments = [Environment(f"runs_{count}", MockAirflow3(LATENCY), count) for count in SIZES]
    discovery = MockAirflow3(LATENCY)
    with contextlib.ExitStack() as stack:
        urls = {env.alias: stack.enter_context(env.airflow.serving()) for env in environments}
        urls["default"] = stack.enter_context(discovery.serving())
        _settings(urls)
        return [*_sync_rows(db, environments), _since_last_sync_row(db, discovery)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    for row in rows(parser.parse_args().db):
        print(" | ".join(str(value) for value in vars(row).values()))


if __name__ == "__main__":
    main()
