"""What the widget's poll costs a server: the status endpoint under gunicorn, and per poll by history.

1. Requests per second of the status endpoint answering an unchanged poll of one
   running run (204), served by gunicorn (2 sync workers) on 127.0.0.1, next to a
   bare login-protected view (benchmarks/urls.py) measured in the same run: the
   difference is what the package adds to sessions and authentication. The load
   comes from threads of this process, alternating between the two views in
   rounds (DAC_BENCH_SECONDS per view in all, default 10) so that other work on
   the machine weighs on both alike.
2. benchmarks/poll.py's figures: one poll's median time and queries through
   Django's test client as the record's history grows from 10 to 100,000 runs,
   each beside a record with 10 runs polled in turn with it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from benchmarks import harness, poll
from benchmarks.harness import Row

if TYPE_CHECKING:
    from django.test import Client

ROOT = Path(__file__).resolve().parents[1]
WORKERS = 2
#: Concurrent clients: two per worker, so a worker never waits for the next request.
CLIENTS = 2 * WORKERS
ROUNDS = 2
#: Never more requests than this in one measurement, however fast the server.
MAX_REQUESTS = 500_000
#: A poll's time with up to 100,000 runs of history stays within this factor of its time with 10.
MAX_GROWTH = 2.0


def seconds() -> float:
    return float(os.environ.get("DAC_BENCH_SECONDS") or 10)


@dataclass
class Load:
    """What one view answered under load."""

    requests: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    unexpected: dict[int, int] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def median_ms(self) -> float:
        return statistics.median(self.latencies) * 1000 if self.latencies else 0.0


def load(url: str, headers: dict[str, str], expect: int, duration: float, into: Load) -> None:
    """GET ``url`` from CLIENTS threads for ``duration`` seconds, adding to ``into``."""
    lock = threading.Lock()
    deadline = time.monotonic() + duration
    budget = iter(range(MAX_REQUESTS))

    def client() -> None:
        latencies: list[float] = []
        unexpected: dict[int, int] = {}
        with httpx.Client(headers=headers, timeout=30) as http:
            while time.monotonic() < deadline and next(budget, None) is not None:
                started = time.perf_counter()
                status = http.get(url).status_code
                latencies.append(time.perf_counter() - started)
                if status != expect:
                    unexpected[status] = unexpected.get(status, 0) + 1
        with lock:
            into.latencies.extend(latencies)
            into.requests += len(latencies)
            for status, count in unexpected.items():
                into.unexpected[status] = into.unexpected.get(status, 0) + count

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    into.seconds += time.monotonic() - started


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@contextlib.contextmanager
def gunicorn() -> Iterator[str]:
    """gunicorn serving benchmarks.wsgi with WORKERS sync workers on 127.0.0.1; yields its base URL.

    The workers inherit this process's environment: the same settings and database.
    """
    if importlib.util.find_spec("gunicorn") is None:
        raise RuntimeError("gunicorn is not installed: `make bench` installs the `bench` dependency group")
    port = free_port()
    command = [sys.executable, "-m", "gunicorn", "benchmarks.wsgi:application"]
    command += ["--workers", str(WORKERS), "--bind", f"127.0.0.1:{port}", "--log-level", "warning"]
    server = subprocess.Popen(command, cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"gunicorn exited with status {server.returncode}")
            with contextlib.suppress(httpx.HTTPError):
                httpx.get(f"{base}/bench/bare/", timeout=2)  # a redirect to the login page: it serves
                break
            if time.monotonic() > deadline:
                raise RuntimeError("gunicorn did not answer within 60 s")
            time.sleep(0.2)
        yield base
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def throughput(db: str, client: Client, record: Any) -> Row:
    from django.urls import reverse

    from airflow_client.models import JobRun

    run, status_url = poll.running_poll(record)
    bare_url = reverse("bench_bare")
    status_queries = harness.count_queries(lambda: client.get(status_url, headers=poll.HTMX))
    bare_queries = harness.count_queries(lambda: client.get(bare_url))
    # Both views must answer 204 to a signed-in user, or the comparison means nothing.
    for url, headers in ((status_url, poll.HTMX), (bare_url, {})):
        answered = client.get(url, headers=headers).status_code
        if answered != 204:
            raise RuntimeError(f"{url} answered {answered}, not 204")
    cookie = {"Cookie": f"sessionid={client.cookies['sessionid'].value}"}
    status, bare = Load(), Load()
    per_round = seconds() / ROUNDS
    with gunicorn() as base:
        load(f"{base}{bare_url}", cookie, 204, 1.0, Load())  # warm both workers up
        load(f"{base}{status_url}", {**cookie, **poll.HTMX}, 204, 1.0, Load())
        for _ in range(ROUNDS):
            load(f"{base}{bare_url}", cookie, 204, per_round, bare)
            load(f"{base}{status_url}", {**cookie, **poll.HTMX}, 204, per_round, status)
    JobRun.objects.filter(pk=run.pk).update(state="success")
    if status.unexpected or bare.unexpected:
        raise RuntimeError(f"unexpected answers: status {status.unexpected}, bare view {bare.unexpected}")
    return Row(
        what=f"status endpoint, unchanged poll of a running run (204), gunicorn {WORKERS} workers",
        db=db,
        measured=(
            f"{status.rate:,.0f} requests/s ({status.rate / bare.rate:.0%} of the bare view), "
            f"median {status.median_ms:.1f} ms, {status_queries} queries"
        ),
        baseline=(
            f"bare login-protected view: {bare.rate:,.0f} requests/s, "
            f"median {bare.median_ms:.1f} ms, {bare_queries} queries"
        ),
        target="-",  # a figure to follow, set beside its yardstick; no target
        passed=None,
    )


def pair(client: Client, record: Any, small: Any, polls: int = poll.POLLS) -> tuple[float, int, float, int]:
    """Median ms and queries of the unchanged polls of ``record`` and of ``small``, taken in turns.

    Taken in turns, both medians see the same moments of the machine's other work,
    so their ratio holds where either figure alone would wander.
    """
    from airflow_client.models import JobRun

    (run, url), (small_run, small_url) = poll.running_poll(record), poll.running_poll(small)
    timings: dict[str, list[float]] = {url: [], small_url: []}
    for _ in range(polls):
        for each in timings:
            started = time.perf_counter()
            answered = client.get(each, headers=poll.HTMX).status_code
            timings[each].append((time.perf_counter() - started) * 1000)
            if answered != 204:
                raise RuntimeError(f"the poll answered {answered}, not 204")
    queries = harness.count_queries(lambda: client.get(url, headers=poll.HTMX))
    small_queries = harness.count_queries(lambda: client.get(small_url, headers=poll.HTMX))
    JobRun.objects.filter(pk__in=[run.pk, small_run.pk]).update(state="success")
    return statistics.median(timings[url]), queries, statistics.median(timings[small_url]), small_queries


def poll_rows(db: str, client: Client, record: Any) -> list[Row]:
    """One row per history size past the first, beside a record with the first size's history."""
    from tests.testapp.models import FindingAid

    small = FindingAid.objects.create(title="Benchmark, short history")
    poll.history(small, poll.SIZES[0], 10**9)  # run ids of its own
    rows = []
    done = 0
    for size in poll.SIZES:
        poll.history(record, size - done, done)
        done = size
        if size == poll.SIZES[0]:
            continue
        ms, queries, small_ms, small_queries = pair(client, record, small)
        rows.append(
            Row(
                f"unchanged poll (204), record with {size:,} runs of history (test client, median of {poll.POLLS})",
                db,
                f"{ms:.2f} ms, {queries} queries",
                f"record with {poll.SIZES[0]} runs, polled in turn: {small_ms:.2f} ms, {small_queries} queries",
                f"same queries; <= {MAX_GROWTH:g} x the time of the {poll.SIZES[0]}-run record",
                queries == small_queries and ms <= MAX_GROWTH * small_ms,
            )
        )
    return rows


def rows(db: str) -> list[Row]:
    harness.setup_django(db)

    client, record = poll.prepare()
    return [throughput(db, client, record), *poll_rows(db, client, record)]
