"""The `make bench` harness itself: the mock Airflow 3 answers the real RestTransport, and
benchmarks/run.py tables the rows and turns a crashing module into a FAIL row."""

from __future__ import annotations

import http.client
import os
import textwrap
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

import pytest

from airflow_client import conf
from airflow_client.exceptions import BadRequest, NotFound
from airflow_client.transports import payloads
from airflow_client.transports.base import RunQuery
from airflow_client.transports.rest import RestTransport
from benchmarks import run
from benchmarks.harness import MockAirflow, Row, mock_airflow3, timed

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def airflow() -> Iterator[tuple[MockAirflow, RestTransport]]:
    with mock_airflow3(latency=0) as (_base_url, state):
        transport = RestTransport("default", conf.environment(state.environment()))
        yield state, transport
        transport.close()


def test_the_mock_answers_get_run_and_the_run_listing_of_the_rest_transport(
    airflow: tuple[MockAirflow, RestTransport],
) -> None:
    state, transport = airflow
    state.add_runs("index", 150, state="running")
    state.add_run("other", "elsewhere", state="success")

    run = transport.get_run("index", "run_7")
    listed = list(transport.list_runs(RunQuery(dag_ids=("index",), limit=1000)))

    assert (run.dag_id, run.run_id, run.state, run.triggered_by) == ("index", "run_7", "running", "rest_api")
    assert run.start_date is not None
    assert run.end_date is None
    assert len(listed) == 150
    assert listed[0].run_id == "run_149"  # newest first
    # One version probe, one token, one GET of the run, two pages of 100.
    assert state.counts() == {"version": 1, "token": 1, "run": 1, "runs": 2}
    assert state.requests == 5
    with pytest.raises(NotFound):
        transport.get_run("index", "missing")


def test_the_listing_filters_on_updated_at_as_a_sync_asks(airflow: tuple[MockAirflow, RestTransport]) -> None:
    state, transport = airflow
    state.add_runs("index", 5)
    since = datetime.now(timezone.utc)
    state.update_run("index", "run_2", state="failed")

    changed = list(transport.list_runs(RunQuery(dag_ids=("index",), updated_since=since)))

    assert [(r.run_id, r.state) for r in changed] == [("run_2", "failed")]
    assert changed[0].end_date is not None


def test_the_batch_listing_reads_airflows_request_body_and_refuses_unknown_keys(
    airflow: tuple[MockAirflow, RestTransport],
) -> None:
    state, transport = airflow
    state.add_runs("a", 3, state="running")
    state.add_runs("b", 2, state="success")
    state.add_runs("c", 2, state="running")
    body = {"dag_ids": ["a", "c"], "states": ["running"], "order_by": "dag_run_id", "page_limit": 4}

    page, total = payloads.parse_run_list(
        transport.http.request("POST", "/dags/~/dagRuns/list", json=body), "v2"
    )
    rest, _ = payloads.parse_run_list(
        transport.http.request("POST", "/dags/~/dagRuns/list", json={**body, "page_offset": 4}), "v2"
    )

    assert total == 5
    assert [(r.dag_id, r.run_id) for r in page + rest] == [
        ("a", "run_0"),
        ("c", "run_0"),
        ("a", "run_1"),
        ("c", "run_1"),
        ("a", "run_2"),
    ]
    with pytest.raises(BadRequest, match="updated_at_gte"):
        transport.http.request(
            "POST", "/dags/~/dagRuns/list", json={"updated_at_gte": "2026-01-01T00:00:00Z"}
        )


def test_the_mock_answers_task_instances_and_starts_runs(airflow: tuple[MockAirflow, RestTransport]) -> None:
    state, transport = airflow
    state.tasks["index"] = ["extract", "load"]

    started = transport.trigger("index", run_id="bench_1", conf={"pk": 1})
    state.update_run("index", "bench_1", state="running")

    assert (started.state, started.conf) == ("queued", {"pk": 1})
    assert [(t.task_id, t.state) for t in transport.task_instances("index", "bench_1")] == [
        ("extract", "running"),
        ("load", "running"),
    ]


def test_the_request_counter_counts_concurrent_requests_and_each_waits_the_latency() -> None:
    with mock_airflow3(latency=0.02) as (base_url, state):
        host, port = base_url.removeprefix("http://").split(":")

        def ask() -> None:
            connection = http.client.HTTPConnection(host, int(port))  # keep-alive, as the transport's pool
            for _ in range(5):
                connection.request("GET", "/api/v2/version")
                connection.getresponse().read()
            connection.close()

        threads = [threading.Thread(target=ask) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        one = timed(ask, repeat=1)

        assert state.count("version") == 35
        assert one >= 5 * 0.02
        state.reset_counts()
        assert state.requests == 0


# --- run.py ----------------------------------------------------------------------------------------

ROWS = [
    Row(
        "sync() with 10,000 unfinished runs",
        "sqlite",
        "101 requests, 4.2 s",
        "10,000 requests",
        "<= 105",
        True,
    ),
    Row("sync() with 10,000 unfinished runs", "postgresql", "130 requests", "-", "<= 105", False),
    Row("a figure", "-", "7 | 8", "-", "-", None),
]


def test_the_table_aligns_its_columns_and_says_pass_fail_or_nothing() -> None:
    lines = run.text_table(ROWS).splitlines()

    assert lines[0].split() == ["what", "db", "measured", "baseline", "target", "result"]
    assert [line.split()[-1] for line in lines[2:]] == ["PASS", "FAIL", "-"]
    # Every column starts where its header starts.
    for header in ("db", "measured", "baseline", "target", "result"):
        start = lines[0].index(header)
        assert all(line[start - 2 : start] == "  " and line[start] != " " for line in lines[2:])
    markdown = run.markdown_table(ROWS).splitlines()
    assert markdown[-1] == "| a figure | - | 7 \\| 8 | - | - | - |"


def test_rows_of_both_databases_sit_side_by_side_and_a_database_free_row_shows_once() -> None:
    sqlite = [Row("one", "sqlite", "1", "-", "-", None), Row("two", "-", "2", "-", "-", None)]
    postgres = [Row("one", "postgresql", "3", "-", "-", None), Row("two", "-", "4", "-", "-", None)]

    merged = run.merge([("bench_x", sqlite), ("bench_x", postgres)])

    assert [(r.what, r.db, r.measured) for r in merged] == [
        ("one", "sqlite", "1"),
        ("one", "postgresql", "3"),
        ("two", "-", "2"),
    ]


def test_a_crashing_or_empty_module_is_a_fail_row_and_a_chatty_one_still_gives_its_rows(
    tmp_path: Path,
) -> None:
    package = tmp_path / "fakebench"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "bench_boom.py").write_text("def rows(db):\n    raise ValueError('no figures today')\n")
    (package / "bench_empty.py").write_text("def rows(db):\n    return []\n")
    (package / "bench_chatty.py").write_text(
        textwrap.dedent(
            """
            import os
            from benchmarks.harness import Row

            def rows(db):
                print("progress on stdout")
                os.system("echo a subprocess prints too")
                return [Row("chatty", db, "1 s", "-", "-", True)]
            """
        )
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}

    with ThreadPoolExecutor(3) as pool:  # three processes at once: the suite stays fast
        boom, chatty, empty = pool.map(
            lambda name, db: run.run_module(name, db, env, timeout=60, package="fakebench"),
            ["bench_boom", "bench_chatty", "bench_empty"],
            ["sqlite", "sqlite", "postgresql"],
        )

    assert boom == [
        Row(
            "bench_boom: did not finish",
            "sqlite",
            "ValueError: no figures today",
            "-",
            "rows from every module",
            False,
        )
    ]
    assert chatty == [Row("chatty", "sqlite", "1 s", "-", "-", True)]
    assert [(r.what, r.db, r.measured, r.passed) for r in empty] == [
        ("bench_empty: did not finish", "postgresql", "rows() returned no rows", False)
    ]
    assert run.discover(package) == ["bench_boom", "bench_chatty", "bench_empty"]
    assert run.module_name("chatty") == run.module_name("benchmarks/bench_chatty.py") == "bench_chatty"
    assert "FAIL" in run.text_table(boom)


def test_the_report_names_the_machine_and_how_to_run_it_again() -> None:
    when = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)
    text = run.report(ROWS, run.machine("17.2"), when)

    assert "2026-11-30 12:00 UTC" in text
    assert "| PostgreSQL | 17.2 |" in text
    assert "| SQLite |" in text
    assert "| CPU |" in text
    assert run.markdown_table(ROWS) in text
    assert "`make bench`" in text
    assert "1 rows met their target, 1 did not" in text
