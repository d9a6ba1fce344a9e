"""Every public call of the REST transport, on both API versions, against each kind of failure."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from pytest_httpx import HTTPXMock

from airflow_client.exceptions import (
    AirflowTimeout,
    AirflowUnavailable,
    AuthenticationFailed,
    BadRequest,
    BadResponse,
    Conflict,
    NotFound,
)
from airflow_client.transports.base import Dag, DagRun, LogChunk, RunQuery, TaskInstance
from airflow_client.transports.rest import RestTransport
from tests.unit.rest_helpers import (
    PASSWORD,
    TOKEN,
    VERSIONS,
    any_query,
    api_url,
    error_json,
    expect_token,
    jwt,
    make_transport,
    run_json,
)

RUN = "/dags/etl/dagRuns/dj_1"


@dataclass(frozen=True)
class Call:
    name: str
    method: str
    paths: dict[str, str]  # per API version, under /api/{version}
    ok: Callable[[str], Any]  # the success body for a version
    invoke: Callable[[RestTransport], Any]
    check: Callable[[Any], bool]
    #: only reads (retried like a GET), whatever its method.
    read: bool = False

    def url(self, version: str) -> Any:
        return any_query(api_url(version, self.paths[version]))

    def expect(self, httpx_mock: HTTPXMock, version: str, **response: Any) -> None:
        httpx_mock.add_response(method=self.method, url=self.url(version), **response)

    def expect_ok(self, httpx_mock: HTTPXMock, version: str) -> None:
        self.expect(httpx_mock, version, json=self.ok(version))


def _both(path: str) -> dict[str, str]:
    return {"v1": path, "v2": path}


def _log_ok(version: str) -> dict[str, Any]:
    if version == "v1":
        return {"content": "[('worker', 'hello')]", "continuation_token": "more"}
    return {"content": [{"event": "hello", "level": "info"}], "continuation_token": None}


CALLS = [
    Call(
        "get_dag",
        "GET",
        _both("/dags/etl"),
        lambda v: {"dag_id": "etl", "is_paused": False},
        lambda t: t.get_dag("etl"),
        lambda r: r == Dag("etl", is_paused=False),
    ),
    Call(
        "trigger",
        "POST",
        _both("/dags/etl/dagRuns"),
        run_json,
        lambda t: t.trigger("etl", run_id="dj_1", conf={"record": 1}),
        lambda r: isinstance(r, DagRun) and r.run_id == "dj_1" and r.conf == {"record": 1},
    ),
    Call(
        "get_run",
        "GET",
        _both(RUN),
        run_json,
        lambda t: t.get_run("etl", "dj_1"),
        lambda r: isinstance(r, DagRun) and (r.dag_id, r.run_id, r.state) == ("etl", "dj_1", "queued"),
    ),
    Call(
        "list_runs",
        "POST",
        _both("/dags/~/dagRuns/list"),  # the batch listing: a read sent as a POST
        lambda v: {"dag_runs": [run_json(v)], "total_entries": 1},
        lambda t: list(t.list_runs(RunQuery())),
        lambda r: [run.run_id for run in r] == ["dj_1"],
        read=True,
    ),
    Call(
        "task_instances",
        "GET",
        _both(f"{RUN}/taskInstances"),
        lambda v: {
            "task_instances": [{"task_id": "greet", "state": "success", "try_number": 1}],
            "total_entries": 1,
        },
        lambda t: t.task_instances("etl", "dj_1"),
        lambda r: r == [TaskInstance("greet", "success", 1)],
    ),
    Call(
        "task_log",
        "GET",
        _both(f"{RUN}/taskInstances/greet/logs/1"),
        _log_ok,
        lambda t: t.task_log("etl", "dj_1", "greet", 1),
        lambda r: isinstance(r, LogChunk) and [line.text for line in r.lines] == ["hello"],
    ),
    Call(
        "set_run_state",
        "PATCH",
        _both(RUN),
        lambda v: run_json(v, state="failed"),
        lambda t: t.set_run_state("etl", "dj_1", "failed"),
        lambda r: isinstance(r, DagRun) and (r.run_id, r.state) == ("dj_1", "failed"),
    ),
    Call(
        "clear_run",
        "POST",
        _both(f"{RUN}/clear"),
        run_json,
        lambda t: t.clear_run("etl", "dj_1"),
        lambda r: isinstance(r, DagRun) and (r.run_id, r.state) == ("dj_1", "queued"),
    ),
]
READ_CALLS = [call for call in CALLS if call.method == "GET" or call.read]
#: triggering, marking and clearing: never sent twice once Airflow may have seen them.
WRITE_CALLS = [call for call in CALLS if call.method != "GET" and not call.read]


def _ids(call: Call) -> str:
    return call.name


@pytest.fixture(params=VERSIONS)
def version(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def transport(version: str, sleeps: list[float]) -> Any:
    transport = make_transport(version, sleeps)
    yield transport
    transport.close()


def _authenticate(httpx_mock: HTTPXMock, call: Call, version: str) -> None:
    if version == "v2":
        expect_token(httpx_mock)


@pytest.mark.parametrize("call", CALLS, ids=_ids)
def test_success(httpx_mock: HTTPXMock, transport: RestTransport, version: str, call: Call) -> None:
    _authenticate(httpx_mock, call, version)
    call.expect_ok(httpx_mock, version)

    assert call.check(call.invoke(transport))


@pytest.mark.parametrize("call", CALLS, ids=_ids)
def test_connect_error_is_retried_then_unavailable(
    httpx_mock: HTTPXMock, transport: RestTransport, version: str, call: Call, sleeps: list[float]
) -> None:
    # Retried for POSTs too: a refused connection never reached Airflow.
    _authenticate(httpx_mock, call, version)
    for _ in range(3):
        httpx_mock.add_exception(httpx.ConnectError("refused"), url=call.url(version))

    with pytest.raises(AirflowUnavailable, match="Cannot reach Airflow"):
        call.invoke(transport)
    assert sleeps == [0.2, 0.4]


@pytest.mark.parametrize("call", CALLS, ids=_ids)
def test_timeout_is_not_retried(
    httpx_mock: HTTPXMock, transport: RestTransport, version: str, call: Call, sleeps: list[float]
) -> None:
    _authenticate(httpx_mock, call, version)
    httpx_mock.add_exception(httpx.ReadTimeout("slow"), url=call.url(version))

    with pytest.raises(AirflowTimeout, match="did not answer within 10 s"):
        call.invoke(transport)
    assert sleeps == []


@pytest.mark.parametrize("call", CALLS, ids=_ids)
@pytest.mark.parametrize("status", [401, 403])
def test_v2_refused_token_is_renewed_once(httpx_mock: HTTPXMock, call: Call, status: int) -> None:
    transport = make_transport("v2")
    renewed = jwt()  # no exp: kept until Airflow refuses it
    expect_token(httpx_mock, TOKEN)
    call.expect(httpx_mock, "v2", status_code=status, json={"detail": "Token Expired"})
    expect_token(httpx_mock, renewed)
    call.expect(httpx_mock, "v2", json=call.ok("v2"), match_headers={"Authorization": f"Bearer {renewed}"})

    assert call.check(call.invoke(transport))


@pytest.mark.parametrize("call", CALLS, ids=_ids)
def test_v2_refused_twice_is_authentication_failed(httpx_mock: HTTPXMock, call: Call) -> None:
    transport = make_transport("v2")
    expect_token(httpx_mock)
    call.expect(httpx_mock, "v2", status_code=403, json={"detail": "Forbidden"})
    expect_token(httpx_mock)
    call.expect(httpx_mock, "v2", status_code=403, json={"detail": "Forbidden"})

    with pytest.raises(AuthenticationFailed, match="Forbidden") as caught:
        call.invoke(transport)
    assert caught.value.status_code == 403


@pytest.mark.parametrize("call", CALLS, ids=_ids)
@pytest.mark.parametrize("status", [401, 403])
def test_v1_refused_credentials(httpx_mock: HTTPXMock, call: Call, status: int) -> None:
    transport = make_transport("v1")
    call.expect(httpx_mock, "v1", status_code=status, json=error_json("v1", status, "Invalid credentials"))

    with pytest.raises(AuthenticationFailed, match="Invalid credentials") as caught:
        call.invoke(transport)
    assert caught.value.status_code == status
    assert PASSWORD not in repr(caught.value.body)


@pytest.mark.parametrize("call", CALLS, ids=_ids)
@pytest.mark.parametrize(
    ("status", "error"), [(404, NotFound), (409, Conflict), (400, BadRequest), (422, BadRequest)]
)
def test_client_errors(
    httpx_mock: HTTPXMock,
    transport: RestTransport,
    version: str,
    call: Call,
    status: int,
    error: type[Exception],
    sleeps: list[float],
) -> None:
    _authenticate(httpx_mock, call, version)
    body = error_json(version, status, "Airflow's reason")
    call.expect(httpx_mock, version, status_code=status, json=body)
    # A refused trigger names the existing run instead of Airflow's generic words.
    expected = (
        "already has a run with id 'dj_1'" if (call.name, status) == ("trigger", 409) else "Airflow's reason"
    )

    with pytest.raises(error, match=expected) as caught:
        call.invoke(transport)
    assert caught.value.status_code == status  # type: ignore[attr-defined]
    assert caught.value.body == body  # type: ignore[attr-defined]
    assert sleeps == []


@pytest.mark.parametrize("call", READ_CALLS, ids=_ids)
@pytest.mark.parametrize("status", [500, 503, 429])
def test_get_retried_after_server_error(
    httpx_mock: HTTPXMock,
    transport: RestTransport,
    version: str,
    call: Call,
    status: int,
    sleeps: list[float],
) -> None:
    _authenticate(httpx_mock, call, version)
    call.expect(httpx_mock, version, status_code=status, text="busy")
    call.expect_ok(httpx_mock, version)

    assert call.check(call.invoke(transport))
    assert sleeps == [0.2]


@pytest.mark.parametrize("call", READ_CALLS, ids=_ids)
@pytest.mark.parametrize("status", [500, 429])
def test_get_retries_exhausted(
    httpx_mock: HTTPXMock,
    transport: RestTransport,
    version: str,
    call: Call,
    status: int,
    sleeps: list[float],
) -> None:
    _authenticate(httpx_mock, call, version)
    for _ in range(3):
        call.expect(httpx_mock, version, status_code=status, json={"detail": "Internal Server Error"})

    with pytest.raises(AirflowUnavailable, match="Internal Server Error") as caught:
        call.invoke(transport)
    assert caught.value.status_code == status
    assert sleeps == [0.2, 0.4]


@pytest.mark.parametrize("call", WRITE_CALLS, ids=_ids)
@pytest.mark.parametrize("status", [500, 502, 429])
def test_write_not_retried_after_server_error(
    httpx_mock: HTTPXMock,
    transport: RestTransport,
    version: str,
    call: Call,
    status: int,
    sleeps: list[float],
) -> None:
    _authenticate(httpx_mock, call, version)
    call.expect(httpx_mock, version, status_code=status, text="<html>Bad gateway</html>")

    with pytest.raises(AirflowUnavailable, match="Bad gateway") as caught:
        call.invoke(transport)
    assert caught.value.status_code == status
    assert sleeps == []


@pytest.mark.parametrize("call", WRITE_CALLS, ids=_ids)
def test_write_not_retried_after_lost_connection(
    httpx_mock: HTTPXMock, transport: RestTransport, version: str, call: Call, sleeps: list[float]
) -> None:
    # The request may have reached Airflow: sending it again could start a second run
    # (or clear a run's tasks again while they run).
    _authenticate(httpx_mock, call, version)
    httpx_mock.add_exception(httpx.RemoteProtocolError("peer closed connection"), url=call.url(version))

    with pytest.raises(AirflowUnavailable, match="Lost the connection"):
        call.invoke(transport)
    assert sleeps == []


@pytest.mark.parametrize("call", CALLS, ids=_ids)
def test_garbage_instead_of_json(
    httpx_mock: HTTPXMock, transport: RestTransport, version: str, call: Call
) -> None:
    _authenticate(httpx_mock, call, version)
    call.expect(httpx_mock, version, text="<html>login</html>")

    with pytest.raises(BadResponse, match="not JSON") as caught:
        call.invoke(transport)
    assert caught.value.body == "<html>login</html>"


@pytest.mark.parametrize("call", CALLS, ids=_ids)
@pytest.mark.parametrize("body", [[], "text", {"unexpected": True}])
def test_wrong_shape(
    httpx_mock: HTTPXMock, transport: RestTransport, version: str, call: Call, body: Any
) -> None:
    _authenticate(httpx_mock, call, version)
    call.expect(httpx_mock, version, json=body)

    if call.name == "task_log" and isinstance(body, dict):
        # A log answer without content is an empty chunk, not an error.
        assert call.invoke(transport).lines == ()
        return
    with pytest.raises(BadResponse):
        call.invoke(transport)
