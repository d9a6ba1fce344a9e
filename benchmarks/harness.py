"""What every ``benchmarks/bench_*.py`` module uses: the Row it returns and the helpers it measures with.

A bench module defines ``rows(db: str) -> list[Row]``; ``benchmarks/run.py`` calls it in a
fresh process per database ("sqlite", "postgresql"), so ``rows()`` may start with
:func:`setup_django`. Benchmarks print and return figures; they never assert.

Pages are fetched with Django's test ``Client`` but without ``setup_test_environment()``:
that hook copies every template's context on each render (for ``response.context``),
which doubles a page's time, a cost no site pays.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from benchmarks.airflow3 import MockAirflow, serve

__all__ = ["MockAirflow", "Row", "count_queries", "mock_airflow3", "postgres_port", "setup_django", "timed"]

#: The environment variable benchmarks.settings reads the database from (JSON of one DATABASES entry).
DATABASE_ENV = "DAC_BENCH_DATABASE"
DATABASES = ("sqlite", "postgresql")


@dataclass(frozen=True)
class Row:
    """One line of the results table."""

    what: str  # the row, e.g. "sync() with 10,000 unfinished runs"
    db: str  # "sqlite" | "postgresql" | "-" (no database involved)
    measured: str  # human text, e.g. "101 requests, 4.2 s"
    baseline: str  # e.g. "one GET per run: 10,000 requests, 80 s" or "-"
    target: str  # e.g. "<= ceil(N/100)+5 requests; t(10k) <= 12 x t(1k)"
    passed: bool | None  # None: informational


def postgres_port() -> int:
    """The port of the PostgreSQL that scripts/postgres.sh starts (DAC_POSTGRES_PORT, default 25432)."""
    return int(os.environ.get("DAC_POSTGRES_PORT") or 25432)


def _postgres_admin() -> Any:
    """An autocommit connection to the cluster's maintenance database (CREATE/DROP DATABASE)."""
    import psycopg

    return psycopg.connect(
        host="127.0.0.1", port=postgres_port(), user="postgres", dbname="postgres", autocommit=True
    )


def _sqlite_database() -> dict[str, Any]:
    # A file, not ":memory:": gunicorn's workers (bench_endpoints) open the same database.
    folder = tempfile.mkdtemp(prefix="dac-bench-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return {"ENGINE": "django.db.backends.sqlite3", "NAME": os.path.join(folder, "bench.sqlite3")}


def _postgres_database() -> dict[str, Any]:
    name = f"dac_bench_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with _postgres_admin() as admin:
        admin.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        from django.db import connections

        connections.close_all()
        with contextlib.suppress(Exception), _postgres_admin() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    atexit.register(drop)
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": name,
        "USER": "postgres",
        "HOST": "127.0.0.1",
        "PORT": str(postgres_port()),
    }


def setup_django(db: str) -> None:
    """Configure Django for a throwaway database of kind ``db`` and migrate it.

    ``db`` is "sqlite" (a temporary file) or "postgresql" (a new database in the
    cluster on DAC_POSTGRES_PORT, dropped at exit). The settings are the test
    suite's (``tests.settings``: the test app, its Jobs, the fake transport as
    "default") with this database and ``benchmarks.urls``; see benchmarks/settings.py.
    Child processes (e.g. gunicorn) inherit the environment and so the same database.
    """
    if db not in DATABASES:
        raise ValueError(f"db is {db!r}: use one of {', '.join(DATABASES)}.")
    import django
    from django.conf import settings
    from django.core.management import call_command

    if settings.configured:
        raise RuntimeError("setup_django() runs once per process (run.py starts one per module and db).")
    database = _sqlite_database() if db == "sqlite" else _postgres_database()
    # Persistent connections, as a production site runs: a server's figures are then the
    # views' work, not a new database connection per request.
    database["CONN_MAX_AGE"] = 600
    os.environ[DATABASE_ENV] = json.dumps(database)
    os.environ["DJANGO_SETTINGS_MODULE"] = "benchmarks.settings"
    django.setup()
    call_command("migrate", verbosity=0, interactive=False)


def timed(fn: Callable[[], object], repeat: int = 5) -> float:
    """The median wall-clock seconds of ``repeat`` calls of ``fn``."""
    if repeat < 1:
        raise ValueError("repeat must be at least 1.")
    durations = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        durations.append(time.perf_counter() - started)
    return statistics.median(durations)


def count_queries(fn: Callable[[], object]) -> int:
    """How many SQL queries one call of ``fn`` sends on the default database."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        fn()
    return len(queries)


@contextlib.contextmanager
def mock_airflow3(latency: float = 0.005) -> Iterator[tuple[str, MockAirflow]]:
    """An in-memory Airflow 3 on 127.0.0.1 (see benchmarks/airflow3.py): yields (base_url, state).

    ``state.environment()`` is the ``AIRFLOW_ENVIRONMENTS`` entry that reaches it;
    ``state.add_run()``/``add_runs()``/``update_run()`` change its runs;
    ``state.requests`` (and ``state.count(route)``, ``state.reset_counts()``) count requests.
    """
    airflow = MockAirflow(latency)
    server, thread = serve(airflow)
    try:
        yield airflow.base_url, airflow
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
