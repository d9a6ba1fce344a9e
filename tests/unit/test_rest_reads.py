"""REST transport: listing runs, task instances, logs, clearing and health."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from pytest_httpx import HTTPXMock

from airflow_client.exceptions import AirflowUnavailable
from airflow_client.transports.base import LogLine, RunQuery
from airflow_client.transports.rest import RestTransport
from tests.unit.rest_helpers import BASE, api_url, make_transport, run_json

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


# --- list_runs ---------------------------------------------------------------------------------


def test_list_filters_in_query_string_v2(httpx_mock: HTTPXMock) -> None:
    transport = make_transport("v2", TOKEN="static")
    httpx_mock.add_response(
        url=api_url("v2", "/dags/etl/dagRuns"),
        match_params={
            "order_by": "-run_after",
            "state": ["queued", "running"],
            "updated_at_gte": "2026-01-02T02:04:05Z",
            "conf_contains": '"record": 7',
            "limit": "50",
            "offset": "0",
        },
        json=_page("v2", ["a"], 1),
    )
    since = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=1)))
    query = RunQuery(
        dag_ids=["etl"],
        states=["queued", "running"],
        updated_since=since,
        conf_contains='"record": 7',
        limit=50,
    )

    assert [run.run_id for run in transport.list_runs(query)] == ["a"]


def test_list_filters_in_query_string_v1(httpx_mock: HTTPXMock) -> None:
    # Airflow 2 has no conf filter: the substring is left for the caller to check.
    transport = make_transport("v1")
    httpx_mock.add_response(
        url=api_url("v1", "/dags/~/dagRuns"),
        match_params={
            "order_by": "-execution_date",
            "state": "failed",
            "updated_at_gte": "2026-01-02T03:04:05Z",
            "limit": "100",
            "offset": "0",
        },
        json=_page("v1", ["a"], 1),
    )
    query = RunQuery(states=["failed"], updated_since=datetime(2026, 1, 2, 3, 4, 5), conf_contains="x")

    assert [run.run_id for run in transport.list_runs(query)] == ["a"]


def test_list_follows_pages(httpx_mock: HTTPXMock, transport: RestTransport, version: str) -> None:
    first = [f"r{i:03}" for i in range(100)]
    second = [f"r{i:03}" for i in range(100, 150)]
    httpx_mock.add_response(url=_listing(version), json=_page(version, first, 150))
    httpx_mock.add_response(url=_listing(version, offset="100"), json=_page(version, second, 150, start=100))

    runs = list(transport.list_runs(RunQuery()))

    assert [run.run_id for run in runs] == first + second


def test_list_stops_at_the_limit(httpx_mock: HTTPXMock, transport: RestTransport, version: str) -> None:
    httpx_mock.add_response(url=_listing(version, limit="3"), json=_page(version, ["a", "b", "c"], 50))

    assert [run.run_id for run in transport.list_runs(RunQuery(limit=3))] == ["a", "b", "c"]


def test_list_with_zero_limit_asks_nothing(transport: RestTransport) -> None:
    assert list(transport.list_runs(RunQuery(limit=0))) == []


def test_list_stops_on_an_empty_page(httpx_mock: HTTPXMock, transport: RestTransport, version: str) -> None:
    # total_entries can grow while we page; an empty page still ends the listing.
    httpx_mock.add_response(url=_listing(version), json=_page(version, [f"r{i}" for i in range(100)], 300))
    httpx_mock.add_response(url=_listing(version, offset="100"), json=_page(version, [], 300))

    assert len(list(transport.list_runs(RunQuery()))) == 100


def test_list_skips_a_run_repeated_across_pages(
    httpx_mock: HTTPXMock, transport: RestTransport, version: str
) -> None:
    # A run started between two requests pushes the last run of page 1 onto page 2.
    first = [f"r{i:03}" for i in range(100)]
    httpx_mock.add_response(url=_listing(version), json=_page(version, first, 101))
    httpx_mock.add_response(url=_listing(version, offset="100"), json=_page(version, ["r099", "r100"], 102))

    runs = [run.run_id for run in transport.list_runs(RunQuery())]

    assert runs == [*first, "r100"]


def test_list_several_dags_newest_first(
    httpx_mock: HTTPXMock, transport: RestTransport, version: str
) -> None:
    httpx_mock.add_response(url=_listing(version, "a"), json=_page(version, ["a1", "a2"], 2, "a", start=0))
    httpx_mock.add_response(url=_listing(version, "b"), json=_page(version, ["b1", "b2"], 2, "b", start=1))
    # dag_ids repeated: asked once.
    runs = list(transport.list_runs(RunQuery(dag_ids=["a", "b", "a"])))

    assert [run.run_id for run in runs] == ["a1", "b1", "a2", "b2"]


def test_list_unknown_dag_has_no_runs(httpx_mock: HTTPXMock, transport: RestTransport, version: str) -> None:
    httpx_mock.add_response(url=_listing(version, "gone"), status_code=404, json={"detail": "not found"})
    httpx_mock.add_response(url=_listing(version, "etl"), json=_page(version, ["e1"], 1))

    runs = list(transport.list_runs(RunQuery(dag_ids=["gone", "etl"])))

    assert [run.run_id for run in runs] == ["e1"]


def test_list_is_lazy(httpx_mock: HTTPXMock, transport: RestTransport, version: str) -> None:
    httpx_mock.add_response(url=_listing(version), json=_page(version, [f"r{i}" for i in range(100)], 500))

    runs = transport.list_runs(RunQuery())
    assert httpx_mock.get_requests() == []
    assert next(runs).run_id == "r0"
    assert len(httpx_mock.get_requests()) == 1


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


# --- clear -------------------------------------------------------------------------------------


@pytest.mark.parametrize("only_failed", [True, False])
def test_v2_clear(httpx_mock: HTTPXMock, only_failed: bool) -> None:
    transport = make_transport("v2", TOKEN="static")
    httpx_mock.add_response(
        method="POST",
        url=api_url("v2", "/dags/etl/dagRuns/dj_1/clear"),
        match_json={"dry_run": False, "only_failed": only_failed},
        json=run_json("v2", state="queued"),
    )

    assert transport.clear_run("etl", "dj_1", only_failed=only_failed).state == "queued"


def test_v1_clear_whole_run(httpx_mock: HTTPXMock) -> None:
    transport = make_transport("v1")
    httpx_mock.add_response(
        method="POST",
        url=api_url("v1", "/dags/etl/dagRuns/dj_1/clear"),
        match_json={"dry_run": False},
        json=run_json("v1", state="queued"),
    )

    assert transport.clear_run("etl", "dj_1").state == "queued"


def test_v1_clear_only_failed_tasks(httpx_mock: HTTPXMock) -> None:
    transport = make_transport("v1")
    httpx_mock.add_response(
        method="POST",
        url=api_url("v1", "/dags/etl/clearTaskInstances"),
        match_json={"dry_run": False, "dag_run_id": "dj_1", "only_failed": True, "reset_dag_runs": True},
        json={"task_instances": [{"task_id": "greet", "dag_run_id": "dj_1"}]},
    )
    httpx_mock.add_response(url=api_url("v1", "/dags/etl/dagRuns/dj_1"), json=run_json("v1", state="queued"))

    assert transport.clear_run("etl", "dj_1", only_failed=True).state == "queued"


# --- health ------------------------------------------------------------------------------------

HEALTH = {"v1": "/health", "v2": "/monitor/health"}


def _health(scheduler: str = "healthy") -> dict[str, Any]:
    return {
        "metadatabase": {"status": "healthy"},
        "scheduler": {"status": scheduler, "latest_scheduler_heartbeat": "2026-11-25T19:44:06+00:00"},
        "triggerer": {"status": None},
    }


def test_health(httpx_mock: HTTPXMock, version: str) -> None:
    transport = make_transport(version)  # credentials are not needed, nor sent
    httpx_mock.add_response(url=api_url(version, HEALTH[version]), json=_health())
    httpx_mock.add_response(url=api_url(version, "/version"), json={"version": "3.3.2"})

    health = transport.health()

    assert (health.healthy, health.version) == (True, "3.3.2")
    assert health.detail["scheduler"]["status"] == "healthy"
    assert all("Authorization" not in request.headers for request in httpx_mock.get_requests())


def test_unhealthy_scheduler(httpx_mock: HTTPXMock, transport: RestTransport, version: str) -> None:
    httpx_mock.add_response(url=api_url(version, HEALTH[version]), json=_health("unhealthy"))
    httpx_mock.add_response(url=api_url(version, "/version"), json={"version": "2.11.2"})

    assert transport.health().healthy is False


@pytest.mark.parametrize("failure", ["status", "connection"])
def test_health_without_version(httpx_mock: HTTPXMock, version: str, failure: str) -> None:
    transport = make_transport(version, RETRIES=0)
    httpx_mock.add_response(url=api_url(version, HEALTH[version]), json=_health())
    if failure == "status":
        httpx_mock.add_response(url=api_url(version, "/version"), status_code=500)
    else:
        httpx_mock.add_exception(httpx.ConnectError("refused"), url=api_url(version, "/version"))

    health = transport.health()

    assert (health.healthy, health.version) == (True, None)


def test_health_of_unreachable_airflow(httpx_mock: HTTPXMock) -> None:
    transport = make_transport("auto", RETRIES=0)
    httpx_mock.add_exception(httpx.ConnectError("refused"), url=f"{BASE}/api/v2/version")

    with pytest.raises(AirflowUnavailable):
        transport.health()
