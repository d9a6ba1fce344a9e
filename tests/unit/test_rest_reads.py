"""REST transport: listing runs, task instances and logs."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from pytest_httpx import HTTPXMock

from airflow_client.transports import payloads
from airflow_client.transports.base import LogLine, RunQuery
from airflow_client.transports.rest import RestTransport
from tests.unit.rest_helpers import api_url, make_transport, run_json

ORDER = {"v1": "-execution_date", "v2": "-run_after"}


@pytest.fixture(params=["v1", "v2"])
def version(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def transport(version: str) -> RestTransport:
    return make_transport(version, TOKEN="static")


def _page(
    version: str, run_ids: list[str], total: int, dag_id: str = "etl", start: int = 0
) -> dict[str, Any]:
    """Runs named ``run_ids``, each two minutes older than the previous one."""
    first = datetime(2026, 11, 25, 12, 0) - timedelta(minutes=start)
    runs = [
        run_json(version, run_id, dag_id, (first - timedelta(minutes=2 * i)).isoformat())
        for i, run_id in enumerate(run_ids)
    ]
    return {"dag_runs": runs, "total_entries": total}


def _listing(version: str, dag: str = "~", **params: Any) -> str:
    query = {"order_by": ORDER[version], "limit": "100", "offset": "0", **params}
    return api_url(version, f"/dags/{dag}/dagRuns?") + "&".join(f"{k}={v}" for k, v in query.items())


def _batch(
    httpx_mock: HTTPXMock,
    version: str,
    page: dict[str, Any],
    offset: int = 0,
    size: int = 100,
    **filters: Any,
) -> None:
    """Expect one page of the batch listing, with exactly this JSON body."""
    httpx_mock.add_response(
        method="POST",
        url=api_url(version, "/dags/~/dagRuns/list"),
        match_json={"order_by": ORDER[version], **filters, "page_offset": offset, "page_limit": size},
        json=page,
    )


# --- list_runs: the batch listing ---------------------------------------------------------------


def test_list_sends_dags_states_and_end_in_the_body(
    httpx_mock: HTTPXMock, transport: RestTransport, version: str
) -> None:
    _batch(
        httpx_mock,
        version,
        _page(version, ["a"], 1),
        dag_ids=["etl", "harvest"],
        states=["failed", "success"],
        end_date_gte="2026-01-02T02:04:05Z",  # in UTC, with Z
    )
    query = RunQuery(
        dag_ids=["etl", "harvest"],
        states=("failed", "success"),
        ended_since=datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=1))),
        limit=None,
    )

    assert [run.run_id for run in transport.list_runs(query)] == ["a"]
    (request,) = httpx_mock.get_requests()
    assert (request.method, request.url.path) == ("POST", f"/api/{version}/dags/~/dagRuns/list")


def test_list_without_filters_sends_only_the_order(
    httpx_mock: HTTPXMock, transport: RestTransport, version: str
) -> None:
    _batch(httpx_mock, version, _page(version, ["a"], 1))  # an empty filter means "any" to Airflow

    assert [run.run_id for run in transport.list_runs(RunQuery(dag_ids=(), states=()))] == ["a"]


def test_list_reads_a_naive_end_as_utc(httpx_mock: HTTPXMock, transport: RestTransport, version: str) -> None:
    _batch(httpx_mock, version, _page(version, [], 0), end_date_gte="2026-01-02T03:04:05Z")

    assert list(transport.list_runs(RunQuery(ended_since=datetime(2026, 1, 2, 3, 4, 5)))) == []


def test_list_follows_pages(httpx_mock: HTTPXMock, transport: RestTransport, version: str) -> None:
    first = [f"r{i:03}" for i in range(100)]
    second = [f"r{i:03}" for i in range(100, 150)]
    _batch(httpx_mock, version, _page(version, first, 150), states=["queued", "running"])
    _batch(
        httpx_mock, version, _page(version, second, 150, start=100), offset=100, states=["queued", "running"]
    )

    runs = list(transport.list_runs(RunQuery(states=("queued", "running"), limit=None)))

    assert [run.run_id for run in runs] == first + second


def test_list_without_limit_stops_at_the_page_bound_and_says_so(
    httpx_mock: HTTPXMock, transport: RestTransport, version: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(payloads, "MAX_RUN_PAGES", 2)
    for page in range(2):
        names = [f"r{page}_{i}" for i in range(100)]
        _batch(httpx_mock, version, _page(version, names, 1000, start=100 * page), offset=100 * page)
    truncated: list[bool] = []

    runs = list(transport.list_runs(RunQuery(limit=None, on_truncated=lambda: truncated.append(True))))

    assert len(runs) == 200
    assert truncated == [True]


def test_list_stops_at_the_limit(httpx_mock: HTTPXMock, transport: RestTransport, version: str) -> None:
    _batch(httpx_mock, version, _page(version, ["a", "b", "c"], 50), size=3)

    assert [run.run_id for run in transport.list_runs(RunQuery(limit=3))] == ["a", "b", "c"]


def test_list_with_zero_limit_asks_nothing(transport: RestTransport) -> None:
    assert list(transport.list_runs(RunQuery(limit=0))) == []


def test_list_stops_on_an_empty_page(httpx_mock: HTTPXMock, transport: RestTransport, version: str) -> None:
    # total_entries can grow while we page; an empty page still ends the listing.
    _batch(httpx_mock, version, _page(version, [f"r{i}" for i in range(100)], 300))
    _batch(httpx_mock, version, _page(version, [], 300), offset=100)

    assert len(list(transport.list_runs(RunQuery()))) == 100


def test_list_skips_a_run_repeated_across_pages(
    httpx_mock: HTTPXMock, transport: RestTransport, version: str
) -> None:
    # A run started between two requests pushes the last run of page 1 onto page 2.
    first = [f"r{i:03}" for i in range(100)]
    _batch(httpx_mock, version, _page(version, first, 101))
    _batch(httpx_mock, version, _page(version, ["r099", "r100"], 102), offset=100)

    runs = [run.run_id for run in transport.list_runs(RunQuery())]

    assert runs == [*first, "r100"]


def test_list_several_dags_is_one_request(
    httpx_mock: HTTPXMock, transport: RestTransport, version: str
) -> None:
    assert transport.capabilities.batch_listing is True
    page = {"dag_runs": [run_json(version, "a1", "a"), run_json(version, "b1", "b")], "total_entries": 2}
    _batch(httpx_mock, version, page, dag_ids=["a", "b"])

    runs = list(transport.list_runs(RunQuery(dag_ids=["a", "b"])))

    assert [(run.dag_id, run.run_id) for run in runs] == [("a", "a1"), ("b", "b1")]


def test_list_is_lazy(httpx_mock: HTTPXMock, transport: RestTransport, version: str) -> None:
    _batch(httpx_mock, version, _page(version, [f"r{i}" for i in range(100)], 500))

    runs = transport.list_runs(RunQuery())
    assert httpx_mock.get_requests() == []
    assert next(runs).run_id == "r0"
    assert len(httpx_mock.get_requests()) == 1


# --- list_runs: "updated since", the GET listing ------------------------------------------------


def test_list_updated_since_in_query_string_v2(httpx_mock: HTTPXMock) -> None:
    transport = make_transport("v2", TOKEN="static")
    httpx_mock.add_response(
        url=api_url("v2", "/dags/etl/dagRuns"),
        match_params={
            "order_by": "-run_after",
            "updated_at_gte": "2026-01-02T02:04:05Z",
            "limit": "50",
            "offset": "0",
        },
        json=_page("v2", ["a"], 1),
    )
    since = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=1)))
    query = RunQuery(dag_ids=["etl"], updated_since=since, limit=50)

    assert [run.run_id for run in transport.list_runs(query)] == ["a"]


def test_list_updated_since_in_query_string_v1(httpx_mock: HTTPXMock) -> None:
    transport = make_transport("v1")
    httpx_mock.add_response(
        url=api_url("v1", "/dags/~/dagRuns"),
        match_params={
            "order_by": "-execution_date",
            "updated_at_gte": "2026-01-02T03:04:05Z",
            "limit": "100",
            "offset": "0",
        },
        json=_page("v1", ["a"], 1),
    )
    query = RunQuery(updated_since=datetime(2026, 1, 2, 3, 4, 5))

    assert [run.run_id for run in transport.list_runs(query)] == ["a"]


def test_list_updated_since_of_several_dags_and_states_picks_them_here(
    httpx_mock: HTTPXMock, transport: RestTransport, version: str
) -> None:
    runs = [
        run_json(version, "a1", "a", state="running"),
        run_json(version, "a2", "a", state="success"),
        run_json(version, "b1", "b", state="running"),
        run_json(version, "c1", "c", state="running"),
    ]
    httpx_mock.add_response(
        url=_listing(version, updated_at_gte="2026-01-02T03:04:05Z", end_date_gte="2026-01-01T00:00:00Z"),
        json={"dag_runs": runs, "total_entries": 4},
    )
    query = RunQuery(
        dag_ids=["a", "b"],
        states=("running",),
        updated_since=datetime(2026, 1, 2, 3, 4, 5),
        ended_since=datetime(2026, 1, 1),
    )

    assert [run.run_id for run in transport.list_runs(query)] == ["a1", "b1"]


def test_list_updated_since_of_an_unknown_dag_has_no_runs(
    httpx_mock: HTTPXMock, transport: RestTransport, version: str
) -> None:
    httpx_mock.add_response(
        url=_listing(version, "gone", updated_at_gte="2026-01-02T03:04:05Z"),
        status_code=404,
        json={"detail": "not found"},
    )

    query = RunQuery(dag_ids=["gone"], updated_since=datetime(2026, 1, 2, 3, 4, 5))
    assert list(transport.list_runs(query)) == []


# --- task instances ----------------------------------------------------------------------------


def _tis(task_ids: list[str], total: int) -> dict[str, Any]:
    return {
        "task_instances": [
            {
                "task_id": task_id,
                "state": "success",
                "try_number": 2,
                "map_index": -1,
                "start_date": "2026-11-25T19:42:04.772561Z",
                "end_date": "2026-11-25T19:42:11.096040Z",
                "duration": 6.3,
                "operator": "PythonOperator",
            }
            for task_id in task_ids
        ],
        "total_entries": total,
    }


def test_task_instances_follow_pages(httpx_mock: HTTPXMock, transport: RestTransport, version: str) -> None:
    url = api_url(version, "/dags/etl/dagRuns/dj_1/taskInstances")
    httpx_mock.add_response(url=f"{url}?limit=100&offset=0", json=_tis([f"t{i}" for i in range(100)], 101))
    httpx_mock.add_response(url=f"{url}?limit=100&offset=100", json=_tis(["last"], 101))

    tis = transport.task_instances("etl", "dj_1")

    assert len(tis) == 101
    assert (tis[-1].task_id, tis[-1].state, tis[-1].try_number, tis[-1].operator) == (
        "last",
        "success",
        2,
        "PythonOperator",
    )
    assert tis[0].start_date == datetime(2026, 11, 25, 19, 42, 4, 772561, tzinfo=timezone.utc)


# --- logs --------------------------------------------------------------------------------------

LOG_PATH = "/dags/etl/dagRuns/dj_1/taskInstances/greet/logs/2"


def test_v1_log_of_host_text_pairs(httpx_mock: HTTPXMock) -> None:
    transport = make_transport("v1")
    content = repr(
        [
            (
                "worker-1",
                "*** Found local files:\n[2026-11-25T19:42:04.807+0000] {taskinstance.py:1} INFO - hi",
            ),
            ("worker-1", "bye"),
        ]
    )
    httpx_mock.add_response(
        url=api_url("v1", LOG_PATH) + "?map_index=3&token=tok1",
        json={"content": content, "continuation_token": "tok2"},
    )

    chunk = transport.task_log("etl", "dj_1", "greet", 2, map_index=3, continuation_token="tok1")

    assert [line.text for line in chunk.lines] == [
        "*** Found local files:",
        "[2026-11-25T19:42:04.807+0000] {taskinstance.py:1} INFO - hi",
        "bye",
    ]
    assert chunk.continuation_token == "tok2"


def test_v1_log_of_plain_text(httpx_mock: HTTPXMock) -> None:
    transport = make_transport("v1")
    httpx_mock.add_response(
        url=api_url("v1", LOG_PATH), json={"content": "line one\nline two", "continuation_token": "t"}
    )

    chunk = transport.task_log("etl", "dj_1", "greet", 2)

    assert [line.text for line in chunk.lines] == ["line one", "line two"]


def test_v2_log_of_structured_events(httpx_mock: HTTPXMock) -> None:
    transport = make_transport("v2", TOKEN="static")
    content = [
        {"event": "::group::Log message source details"},
        {"event": "/logs/attempt=2.log"},
        {"event": "::endgroup::"},
        {
            "timestamp": "2026-11-25T19:42:11.095609Z",
            "event": "hello",
            "level": "info",
            "logger": "task.stdout",
        },
        "a plain line",
    ]
    httpx_mock.add_response(
        url=api_url("v2", LOG_PATH), json={"content": content, "continuation_token": None}
    )

    chunk = transport.task_log("etl", "dj_1", "greet", 2)

    assert chunk.lines == (
        LogLine("Log message source details"),
        LogLine("/logs/attempt=2.log"),
        LogLine("hello", datetime(2026, 11, 25, 19, 42, 11, 95609, tzinfo=timezone.utc), "INFO"),
        LogLine("a plain line"),
    )
    assert chunk.continuation_token is None


def test_v2_log_token_passed_back(httpx_mock: HTTPXMock) -> None:
    transport = make_transport("v2", TOKEN="static")
    httpx_mock.add_response(
        url=api_url("v2", LOG_PATH) + "?token=abc", json={"content": [], "continuation_token": "def"}
    )

    chunk = transport.task_log("etl", "dj_1", "greet", 2, continuation_token="abc")

    assert (chunk.lines, chunk.continuation_token) == ((), "def")


def test_log_asks_for_json(httpx_mock: HTTPXMock, transport: RestTransport, version: str) -> None:
    # Airflow 3 refuses text/plain; both versions answer JSON.
    httpx_mock.add_response(url=api_url(version, LOG_PATH), json={"content": [], "continuation_token": None})

    transport.task_log("etl", "dj_1", "greet", 2)

    assert httpx_mock.get_requests()[0].headers["Accept"] == "application/json"
