"""Issue 12, items 2 and 3: a record's widget, the job history and its CSV at 100,000 runs.

``rows(db)`` builds one record with 100,000 runs (5 % failed), one with 10, one
with 1,000, and 100 records of a list page, then measures through Django's test client:
the widget's answer when something changed (200) and once the run finished (286)
for the first two, the history unfiltered, sorted by records and filtered to the
big record and a state (and to the 1,000-run one), the CSV export of every run (time, and its peak
memory traced in a second pass), and the queries of a list page of compact widgets.

Run alone: ``.venv/bin/python -m benchmarks.bench_records [sqlite|postgresql]``
(PostgreSQL: ``scripts/postgres.sh start``; ``DAC_POSTGRES_PORT`` says where);
``make bench`` runs it with the others.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
import tracemalloc
from datetime import timedelta
from typing import Any

from benchmarks.harness import Row, count_queries, setup_django, timed

#: the big record's history, and the history page's whole table
RUNS = 100_000
#: the small record's history (the widget's reference figures)
FEW = 10
#: a record whose history fills the filtered page as the big one does (25 rows, 50 bars): its reference
SOME = 1_000
#: one run in FAILED_EVERY failed: the filtered history's matches
FAILED_EVERY = 20
BATCH = 5_000


# --- the data -----------------------------------------------------------------------------------


def _history(record: Any, count: int, prefix: str) -> None:
    """``count`` finished runs of ``record`` (one in FAILED_EVERY failed), one minute apart, oldest first."""
    from django.contrib.contenttypes.models import ContentType
    from django.utils import timezone

    from airflow_client.models import JobRecord, JobRun

    content_type = ContentType.objects.get_for_model(record)
    start = timezone.now() - timedelta(minutes=count + 10)
    for first in range(0, count, BATCH):
        runs = []
        for i in range(first, min(first + BATCH, count)):
            when = start + timedelta(minutes=i)
            runs.append(
                JobRun(
                    environment="default",
                    dag_id="index_finding_aid",
                    dag_run_id=f"{prefix}_{i}",
                    state="failed" if i % FAILED_EVERY == 0 else "success",
                    run_type="manual",
                    queued_at=when - timedelta(seconds=30),
                    start_date=when - timedelta(seconds=20),
                    end_date=when,
                    refreshed_at=when,
                )
            )
        made = JobRun.objects.bulk_create(runs)
        # auto_now_add dated them all now: spread them as if read over the past weeks
        for run, created in zip(
            made, (start + timedelta(minutes=i) for i in range(first, first + len(made))), strict=False
        ):
            run.created_at = created
            run.record_key = str(record.pk)
        JobRun.objects.bulk_update(made, ["created_at", "record_key"], batch_size=1000)
        # bulk_create skips JobRecord.save(): the copies of the runs' fields are written here
        JobRecord.objects.bulk_create(
            JobRecord(
                job_run=run,
                content_type=content_type,
                object_id=str(record.pk),
                dag_id=run.dag_id,
                environment=run.environment,
                run_state=run.state,
                run_created_at=run.created_at,
            )
            for run in made
        )


def _running(record: Any, name: str) -> Any:
    """A running run of ``record``, read from Airflow a moment ago (not due: the bench measures this side)."""
    from django.contrib.contenttypes.models import ContentType
    from django.utils import timezone

    from airflow_client.models import JobRun

    run = JobRun.objects.create(
        environment="default",
        dag_id="index_finding_aid",
        dag_run_id=name,
        state="running",
        run_type="manual",
        queued_at=timezone.now(),
        start_date=timezone.now(),
        refreshed_at=timezone.now() + timedelta(days=1),
    )
    run.link_record(ContentType.objects.get_for_model(record).pk, str(record.pk))
    return run


def _analyze() -> None:
    from django.db import connection

    if connection.vendor == "postgresql":  # what autovacuum does on a live site
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")


# --- the measurements ---------------------------------------------------------------------------


def _client() -> Any:
    """Signed in as a superuser, as issue 12 counted: Django's two permission queries (a user's
    and their groups') are the auth backend's, not the pages', and are left out of the counts."""
    from django.contrib.auth.models import User
    from django.test import Client

    user = User.objects.create(username="bench", is_superuser=True, is_staff=True)
    client = Client()
    client.force_login(user)
    return client


def _get(client: Any, url: str, status: int = 200, htmx: bool = False) -> Any:
    response = client.get(url, headers={"HX-Request": "true"} if htmx else {})
    if getattr(response, "streaming", False):
        for _chunk in response.streaming_content:
            pass
    assert response.status_code == status, (url, response.status_code)
    return response


def _widget_url(record: Any, run: Any) -> str:
    from django.urls import reverse

    url = reverse(
        "airflow_client:status",
        kwargs={"model": "testapp.findingaid", "dag_id": "index_finding_aid", "object_id": str(record.pk)},
    )
    return url + f"?uid=1&tag=stale&run={run.pk}"  # a stale fingerprint: the widget is sent again


def _widgets(client: Any, records: list[Any], repeat: int) -> dict[str, list[tuple[float, int]]]:
    """{"200"|"286": [(median seconds, queries) per record]} of each record's widget answering a poll.

    The records take turns, request by request, so a change in the machine's load
    weighs on all of them alike (the figures compared are their ratio).
    """
    runs = [_running(record, f"polled_{record.pk}") for record in records]
    urls = [_widget_url(record, run) for record, run in zip(records, runs, strict=True)]
    found: dict[str, list[tuple[float, int]]] = {}
    for status in ("200", "286"):
        times: list[list[float]] = [[] for _ in urls]
        for url in urls:
            _get(client, url, int(status), htmx=True)  # warm
        for _ in range(repeat):
            for i, url in enumerate(urls):
                started = time.perf_counter()
                _get(client, url, int(status), htmx=True)
                times[i].append(time.perf_counter() - started)
        code = int(status)
        found[status] = [
            (
                statistics.median(taken),
                count_queries(lambda url=url, code=code: _get(client, url, code, htmx=True)),
            )
            for taken, url in zip(times, urls, strict=True)
        ]
        for run in runs:
            run.set_state("success")  # finished: the next answers are 286
    return found


def _list_page_queries(finished: list[Any], active: list[Any]) -> int:
    """Queries of a list page of compact widgets (prefetched), from the records' query on."""
    from django.contrib.auth.models import User
    from django.template import Context, Template
    from django.test import RequestFactory

    from airflow_client.mixins import prefetch_job_runs
    from tests.testapp.models import FindingAid

    template = Template(
        "{% load airflow_client %}{% for obj in objects %}"
        "{% airflow_status obj job='index_finding_aid' compact=True %}{% endfor %}"
    )
    request = RequestFactory().get("/findingaids/")
    request.user = User.objects.get(username="bench")
    pks = [obj.pk for obj in [*finished, *active]]

    def render() -> None:
        objects = prefetch_job_runs(FindingAid.objects.filter(pk__in=pks))
        html = template.render(Context({"request": request, "objects": objects}))
        assert html.count('class="ac-widget') == len(pks)

    render()  # warm the content-type cache, as a running site has it
    queries: int = count_queries(render)
    return queries


def _csv(client: Any, url: str) -> tuple[float, float]:
    """(seconds, peak MiB traced while streaming) of one CSV download."""
    started = time.perf_counter()
    _get(client, url)
    seconds = time.perf_counter() - started
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    _get(client, url)
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    return seconds, peak / 2**20


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms" if seconds >= 0.01 else f"{seconds * 1000:.1f} ms"


#: what issue 12 measured before this work (2 cores), per database where it said
BASELINE_HISTORY = {"sqlite": "1,170 ms", "postgresql": "255 ms"}
BASELINE = {
    "widget_200": "173-239 ms at 100,000 runs vs 15-23 ms at 10",
    "widget_286": "430 ms at 100,000 runs vs 23-45 ms at 10",
    "sorted": "712 ms",
    "filtered": "99-111 ms, 11 queries",
    "csv": "43 s, +18 MiB peak",
    "list": "5 queries (must stay <= 8)",
}


def _load() -> str:
    return f"load {os.getloadavg()[0]:.1f}"


def rows(db: str) -> list[Row]:
    setup_django(db)
    from django.urls import reverse

    from tests.testapp.models import FindingAid

    big = FindingAid.objects.create(title="A record with a long history")
    small = FindingAid.objects.create(title="A record with a short history")
    built = time.perf_counter()
    _history(big, RUNS, "big")
    _history(small, FEW, "small")
    some = FindingAid.objects.create(title="A record with a thousand runs")
    _history(some, SOME, "some")
    listed_finished = [FindingAid.objects.create(title=f"Finished {i}") for i in range(50)]
    listed_active = [FindingAid.objects.create(title=f"Active {i}") for i in range(50)]
    for i, obj in enumerate(listed_finished):
        _history(obj, 1, f"listed_{i}")
    for obj in listed_active:
        _running(obj, f"active_{obj.pk}")
    _analyze()
    print(f"[bench_records] {db}: data built in {time.perf_counter() - built:.0f} s", file=sys.stderr)
    client = _client()
    found: list[Row] = []

    answers = _widgets(client, [small, big], repeat=40)
    for status in ("200", "286"):
        (t_few, q_few), (t_many, q_many) = answers[status]
        ratio = t_many / t_few
        found.append(
            Row(
                f"widget answer {status} ({'changed' if status == '200' else 'finished'}), "
                f"{RUNS:,} runs vs {FEW} runs",
                db,
                f"{_ms(t_many)} vs {_ms(t_few)} ({ratio:.2f}x); {q_many} vs {q_few} queries; {_load()}",
                BASELINE[f"widget_{status}"],
                "<= 1.5x the 10-run time; same queries",
                ratio <= 1.5 and q_many == q_few,
            )
        )

    history = reverse("airflow_client:run_list")
    seconds = timed(lambda: _get(client, history), repeat=7)
    found.append(
        Row(
            f"history, {RUNS:,} runs, unfiltered",
            db,
            f"{_ms(seconds)}; {_load()}",
            BASELINE_HISTORY[db],
            "<= 150 ms median",
            seconds <= 0.150,
        )
    )
    seconds = timed(lambda: _get(client, history + "?sort=records"), repeat=7)
    found.append(
        Row(
            "history sorted by records",
            db,
            _ms(seconds),
            BASELINE["sorted"],
            "<= 150 ms median",
            seconds <= 0.150,
        )
    )
    filtered = f"{history}?record_type=testapp.findingaid&object_id={big.pk}&state=failed"
    seconds = timed(lambda: _get(client, filtered), repeat=7)
    queries = count_queries(lambda: _get(client, filtered))
    # the same page of a record with 1,000 runs (the same 25 rows and 50 bars): what it costs anyway
    reference = filtered.replace(f"object_id={big.pk}", f"object_id={some.pk}")
    few = timed(lambda: _get(client, reference), repeat=7)
    found.append(
        Row(
            "history filtered to one record and a state (queries as a superuser)",
            db,
            f"{_ms(seconds)} ({_ms(few)} for a record of {SOME:,} runs), {queries} queries; {_load()}",
            BASELINE["filtered"],
            "<= 50 ms, <= 8 queries",
            seconds <= 0.050 and queries <= 8,
        )
    )

    csv_url = reverse("airflow_client:run_list_csv")
    seconds, peak = _csv(client, csv_url)
    _small_seconds, small_peak = _csv(client, f"{csv_url}?state=failed")
    from airflow_client.models import JobRun

    total, failed = JobRun.objects.count(), JobRun.objects.filter(state="failed").count()
    found.append(
        Row(
            f"CSV export of {total:,} runs",
            db,
            f"{seconds:.1f} s, peak +{peak:.1f} MiB (+{small_peak:.1f} MiB for {failed:,} runs); " + _load(),
            BASELINE["csv"],
            "<= 10 s; peak memory flat (all runs <= 2 x the failed ones)",
            seconds <= 10 and peak <= 2 * max(small_peak, 1.0),
        )
    )

    queries = _list_page_queries(listed_finished, listed_active)
    found.append(
        Row(
            "list page, 50 finished and 50 active compact widgets (queries as a superuser)",
            db,
            f"{queries} queries",
            BASELINE["list"],
            "<= 8 queries",
            queries <= 8,
        )
    )
    return found


def main() -> None:
    db = sys.argv[1] if len(sys.argv) > 1 else "sqlite"
    for row in rows(db):
        mark = {True: "ok", False: "MISSED", None: "-"}[row.passed]
        print(
            f"{row.what} [{row.db}]: {row.measured} | before: {row.baseline} | target: {row.target} | {mark}"
        )


if __name__ == "__main__":
    main()
