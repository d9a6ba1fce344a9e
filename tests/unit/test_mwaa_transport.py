"""MwaaTransport against botocore's Stubber: the real boto3 client, no network."""

from __future__ import annotations

import functools
import sys
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import boto3
import botocore.exceptions
import pytest
from botocore.stub import ANY, Stubber
from django.test import override_settings

from airflow_client import transports
from airflow_client.exceptions import (
    AirflowTimeout,
    AirflowUnavailable,
    AuthenticationFailed,
    BadRequest,
    BadResponse,
    ConfigurationError,
    Conflict,
    NotFound,
)
from airflow_client.transports import mwaa
from airflow_client.transports.base import Capabilities, RunQuery
from airflow_client.transports.mwaa import MwaaTransport

ENV = "my-env"
UI = "https://abc.c10.eu-west-3.airflow.amazonaws.com"
_sessions: dict[str, Any] = {}


def session_factory() -> Any:
    """Referenced by dotted path from SESSION_FACTORY."""
    return _sessions["current"]


class RecordingSession:
    """Stands in for boto3.Session: hands out the stubbed client and records how it was asked."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def client(self, service_name: str, **kwargs: Any) -> Any:
        self.calls.append((service_name, kwargs))
        return self._client


def real_client() -> Any:
    session = boto3.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="eu-west-3"
    )
    return session.client("mwaa")


@functools.cache
def shared_client() -> Any:
    # Building a client loads botocore's models (slow): tests share one, each with its own Stubber.
    return real_client()


@pytest.fixture
def client() -> Any:
    return shared_client()


@pytest.fixture
def stub(client: Any) -> Iterator[Stubber]:
    with Stubber(client) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


@pytest.fixture
def session(client: Any, monkeypatch: pytest.MonkeyPatch) -> RecordingSession:
    recording = RecordingSession(client)
    monkeypatch.setitem(_sessions, "current", recording)
    return recording


@pytest.fixture
def make(session: RecordingSession, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(MwaaTransport, "retry_delay", 0)

    def build(**options: Any) -> MwaaTransport:
        merged = {
            "ENV_NAME": ENV,
            "REGION": "eu-west-3",
            "SESSION_FACTORY": f"{__name__}.session_factory",
            "UI_URL": UI,
            "API_VERSION": "v2",
            "RETRIES": 0,
            **options,
        }
        return MwaaTransport("default", merged)

    return build


def expect(
    stub: Stubber,
    method: str,
    path: str,
    response: Any,
    *,
    query: dict[str, Any] | None = None,
    body: dict[str, Any] | None = None,
) -> None:
    params: dict[str, Any] = {"Name": ENV, "Path": path, "Method": method}
    if query is not None:
        params["QueryParameters"] = query
    if body is not None:
        params["Body"] = body
    stub.add_response("invoke_rest_api", {"RestApiStatusCode": 200, "RestApiResponse": response}, params)


def airflow_error(stub: Stubber, status: int, body: Any) -> None:
    code = "RestApiServerException" if status >= 500 else "RestApiClientException"
    stub.add_client_error(
        "invoke_rest_api",
        service_error_code=code,
        service_message="Airflow said no",
        http_status_code=400,
        modeled_fields={"RestApiStatusCode": status, "RestApiResponse": body},
    )


def aws_error(stub: Stubber, code: str, message: str, http_status: int) -> None:
    stub.add_client_error(
        "invoke_rest_api", service_error_code=code, service_message=message, http_status_code=http_status
    )


def v2_run(run_id: str, state: str = "queued", dag_id: str = "harvest", **extra: Any) -> dict[str, Any]:
    return {
        "dag_id": dag_id,
        "dag_run_id": run_id,
        "state": state,
        "run_type": "manual",
        "triggered_by": "rest_api",
        "logical_date": None,
        "run_after": "2025-03-01T10:00:00Z",
        "queued_at": "2025-03-01T10:00:00Z",
        "start_date": None,
        "end_date": None,
        "conf": {"collection_id": 3},
        **extra,
    }


def v1_run(run_id: str, state: str = "queued", dag_id: str = "harvest") -> dict[str, Any]:
    return {
        "dag_id": dag_id,
        "dag_run_id": run_id,
        "state": state,
        "run_type": "manual",
        "execution_date": "2025-03-01T10:00:00+00:00",
        "logical_date": "2025-03-01T10:00:00+00:00",
        "external_trigger": True,
        "start_date": None,
        "end_date": None,
        "conf": {"collection_id": 3},
    }


# --- trigger ---------------------------------------------------------------------------------


def test_trigger_v2_sends_logical_date_null(make: Any, stub: Stubber) -> None:
    transport = make()
    expect(
        stub,
        "POST",
        "/dags/harvest/dagRuns",
        v2_run("dj_1", note="by ana"),
        body={"dag_run_id": "dj_1", "conf": {"collection_id": 3}, "logical_date": None, "note": "by ana"},
    )
    run = transport.trigger("harvest", run_id="dj_1", conf={"collection_id": 3}, note="by ana")
    assert (run.run_id, run.state, run.triggered_by, run.note) == ("dj_1", "queued", "rest_api", "by ana")


def test_trigger_v1_omits_logical_date(make: Any, stub: Stubber) -> None:
    transport = make(API_VERSION="v1")
    expect(
        stub,
        "POST",
        "/dags/harvest/dagRuns",
        v1_run("dj_1"),
        body={"dag_run_id": "dj_1", "conf": {"collection_id": 3}},
    )
    run = transport.trigger("harvest", run_id="dj_1", conf={"collection_id": 3})
    assert run.logical_date == datetime(2025, 3, 1, 10, tzinfo=timezone.utc)
    assert run.triggered_by is None


def test_trigger_posts_directly(make: Any, stub: Stubber) -> None:
    # Whether the DAG is paused is the service's question (triggering._send), not the transport's.
    transport = make()
    body: dict[str, Any] = {"dag_run_id": "dj_1", "conf": {}, "logical_date": None}
    expect(stub, "POST", "/dags/harvest/dagRuns", v2_run("dj_1"), body=body)
    assert transport.trigger("harvest", run_id="dj_1", conf={}).run_id == "dj_1"


def test_trigger_duplicate_run_id_is_conflict(make: Any, stub: Stubber) -> None:
    transport = make()
    airflow_error(stub, 409, {"detail": {"reason": "Unique constraint violation", "message": "exists"}})
    with pytest.raises(Conflict) as info:
        transport.trigger("harvest", run_id="dj_1", conf={})
    assert info.value.status_code == 409
    assert "exists" in str(info.value)


def test_trigger_is_not_retried(make: Any, stub: Stubber) -> None:
    transport = make(RETRIES=3)
    airflow_error(stub, 503, {"detail": "down"})
    with pytest.raises(AirflowUnavailable):
        transport.trigger("harvest", run_id="dj_1", conf={})


# --- version detection and capabilities -------------------------------------------------------


def test_auto_detects_the_version_once(make: Any, stub: Stubber) -> None:
    transport = make(API_VERSION="auto")
    expect(stub, "GET", "/version", {"version": "2.10.3", "git_version": "x"})
    expect(stub, "GET", "/dags/harvest/dagRuns/dj_1", v1_run("dj_1"))
    expect(stub, "GET", "/dags/harvest/dagRuns/dj_2", v1_run("dj_2"))
    assert transport.get_run("harvest", "dj_1").logical_date is not None
    assert transport.get_run("harvest", "dj_2").run_id == "dj_2"
    assert transport.capabilities == Capabilities(batch_listing=True, updated_since_filter=True)


@pytest.mark.parametrize("version", ["2.10.3", "3.0.6"])
def test_capabilities_once_the_version_is_known(make: Any, stub: Stubber, version: str) -> None:
    transport = make(API_VERSION="auto")
    expect(stub, "GET", "/version", {"version": version})
    assert transport.capabilities == Capabilities(batch_listing=True, updated_since_filter=True)


def test_configured_version_claims_capabilities_without_asking(make: Any, stub: Stubber) -> None:
    assert make(API_VERSION="v2").capabilities.batch_listing


def test_version_answer_without_version_is_bad_response(make: Any, stub: Stubber) -> None:
    transport = make(API_VERSION="auto")
    expect(stub, "GET", "/version", {"git_version": "x"})
    with pytest.raises(BadResponse):
        transport.get_run("harvest", "dj_1")


# --- runs ------------------------------------------------------------------------------------


def test_get_run_unknown_is_not_found(make: Any, stub: Stubber) -> None:
    airflow_error(stub, 404, {"detail": "The DagRun with dag_id: `harvest` and run_id: `dj_x` was not found"})
    with pytest.raises(NotFound, match="dj_x"):
        make().get_run("harvest", "dj_x")


def test_get_run_path_too_long_fails_before_calling(make: Any, stub: Stubber) -> None:
    with pytest.raises(BadRequest, match="at most 64") as info:
        make().get_run("a_rather_long_dag_identifier_here", "manual__2025-01-01T00:00:00+00:00")
    assert info.value.status_code is None


def test_max_run_id_length_fits_the_get_run_path() -> None:
    run_id = "r" * MwaaTransport.max_run_id_length
    dag_id = "index_finding_aid"
    assert len(f"/dags/{dag_id}/dagRuns/{run_id}") <= mwaa.MAX_PATH_LENGTH


def test_list_runs_follows_batch_pages(make: Any, stub: Stubber, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(MwaaTransport, "page_size", 2)
    transport = make()
    base = {"order_by": "-run_after", "dag_ids": ["harvest", "index"]}
    ids = ["dj_5", "dj_4", "dj_3", "dj_2", "dj_1"]
    for offset in (0, 2, 4):
        expect(
            stub,
            "POST",
            "/dags/~/dagRuns/list",
            {"dag_runs": [v2_run(i) for i in ids[offset : offset + 2]], "total_entries": 5},
            body={**base, "page_offset": offset, "page_limit": 2},
        )
    runs = list(transport.list_runs(RunQuery(dag_ids=["harvest", "index"])))
    assert [r.run_id for r in runs] == ids


def test_list_runs_stops_at_limit(make: Any, stub: Stubber, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(MwaaTransport, "page_size", 2)
    transport = make(API_VERSION="v1")
    for offset, size in ((0, 2), (2, 1)):
        expect(
            stub,
            "POST",
            "/dags/~/dagRuns/list",
            {"dag_runs": [v1_run(f"r{offset + i}") for i in range(size)], "total_entries": 50},
            body={"order_by": "-execution_date", "page_offset": offset, "page_limit": size},
        )
    assert [r.run_id for r in transport.list_runs(RunQuery(limit=3))] == ["r0", "r1", "r2"]


def test_list_runs_updated_since_uses_get_and_filters_here(
    make: Any, stub: Stubber, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(MwaaTransport, "page_size", 3)
    transport = make()
    since = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)
    query = {"order_by": "-run_after", "updated_at_gte": "2025-03-01T12:00:00Z"}
    expect(
        stub,
        "GET",
        "/dags/~/dagRuns",
        {
            "dag_runs": [
                v2_run("a", "running", "harvest"),
                v2_run("b", "success", "other"),
                v2_run("c", "running", "other"),
            ],
            "total_entries": 5,
        },
        query={**query, "offset": 0, "limit": 3},
    )
    expect(
        stub,
        "GET",
        "/dags/~/dagRuns",
        {
            "dag_runs": [v2_run("d", "running", "index"), v2_run("e", "running", "harvest")],
            "total_entries": 5,
        },
        query={**query, "offset": 3, "limit": 3},
    )
    runs = transport.list_runs(RunQuery(dag_ids=["harvest", "index"], updated_since=since, limit=2))
    assert [r.run_id for r in runs] == ["a", "d"]


def test_list_runs_updated_since_one_dag_uses_its_path(make: Any, stub: Stubber) -> None:
    transport = make(API_VERSION="v1")
    expect(
        stub,
        "GET",
        "/dags/harvest/dagRuns",
        {"dag_runs": [v1_run("x")], "total_entries": 1},
        query={
            "order_by": "-execution_date",
            "updated_at_gte": "2025-03-01T10:00:00Z",
            "offset": 0,
            "limit": 100,
        },
    )
    since = datetime(2025, 3, 1, 11, 0, tzinfo=timezone(timedelta(hours=1)))
    assert [r.run_id for r in transport.list_runs(RunQuery(dag_ids=["harvest"], updated_since=since))] == [
        "x"
    ]


# --- task instances and logs -----------------------------------------------------------------


def test_task_instances_use_batch_endpoint_and_pages(
    make: Any, stub: Stubber, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(MwaaTransport, "page_size", 2)
    long_run_id = "manual__2025-01-01T00:00:00.000000+00:00"  # far too long for a path
    ti = {"task_id": "t", "state": "success", "try_number": 1, "map_index": -1}
    for offset, tasks in ((0, ["a", "b"]), (2, ["c"])):
        expect(
            stub,
            "POST",
            "/dags/~/dagRuns/~/taskInstances/list",
            {"task_instances": [{**ti, "task_id": t} for t in tasks], "total_entries": 3},
            body={
                "dag_ids": ["harvest"],
                "dag_run_ids": [long_run_id],
                "page_offset": offset,
                "page_limit": 2,
            },
        )
    tis = make().task_instances("harvest", long_run_id)
    assert [t.task_id for t in tis] == ["a", "b", "c"]
    assert tis[0].state == "success"


def test_task_log_v2_structured_with_token(make: Any, stub: Stubber) -> None:
    expect(
        stub,
        "GET",
        "/dags/h/dagRuns/dj_1/taskInstances/run/logs/2",
        {
            "content": [{"event": "hello", "level": "info", "timestamp": "2025-03-01T10:00:00Z"}],
            "continuation_token": "next",
        },
        query={"map_index": -1, "token": "prev"},
    )
    chunk = make().task_log("h", "dj_1", "run", 2, continuation_token="prev")
    assert [(line.text, line.level) for line in chunk.lines] == [("hello", "INFO")]
    assert chunk.continuation_token == "next"


def test_task_log_v1_repr_content(make: Any, stub: Stubber) -> None:
    expect(
        stub,
        "GET",
        "/dags/h/dagRuns/dj_1/taskInstances/run/logs/1",
        {"content": repr([("host", "line one\nline two")]), "continuation_token": ""},
        query={"map_index": 2},
    )
    chunk = make(API_VERSION="v1").task_log("h", "dj_1", "run", 1, map_index=2)
    assert [line.text for line in chunk.lines] == ["line one", "line two"]
    assert chunk.continuation_token is None


def test_task_log_path_too_long(make: Any, stub: Stubber) -> None:
    with pytest.raises(BadRequest, match=r"MWAA accepts at most 64"):
        make().task_log("index_finding_aid", "dj_abcdefghijklmnop", "extract_records", 1)


# --- operators' controls --------------------------------------------------------------------


@pytest.mark.parametrize("version", ["v1", "v2"])
@pytest.mark.parametrize("state", ["success", "failed", "queued"])
def test_set_run_state_patches_the_run(make: Any, stub: Stubber, version: str, state: str) -> None:
    answer = (v2_run if version == "v2" else v1_run)("dj_1", state=state)
    expect(stub, "PATCH", "/dags/harvest/dagRuns/dj_1", answer, body={"state": state})

    run = make(API_VERSION=version).set_run_state("harvest", "dj_1", state)

    assert (run.run_id, run.state) == ("dj_1", state)


def test_set_run_state_refuses_other_states_without_calling(make: Any, stub: Stubber) -> None:
    with pytest.raises(BadRequest, match="not 'running'"):
        make().set_run_state("harvest", "dj_1", "running")


@pytest.mark.parametrize("version", ["v1", "v2"])
@pytest.mark.parametrize("only_failed", [False, True])
def test_clear_run_goes_through_clear_task_instances_then_reads_the_run(
    make: Any, stub: Stubber, version: str, only_failed: bool
) -> None:
    # The path holds no run id: whatever get_run can read, clear_run can clear.
    body: dict[str, Any] = {
        "dry_run": False,
        "dag_run_id": "dj_1",
        "only_failed": only_failed,  # said even when false: this endpoint defaults to true
        "reset_dag_runs": True,
    }
    if version == "v1":
        body |= {"include_subdags": True, "include_parentdag": True}
    expect(stub, "POST", "/dags/harvest/clearTaskInstances", {"task_instances": []}, body=body)
    run_json = v2_run if version == "v2" else v1_run
    expect(stub, "GET", "/dags/harvest/dagRuns/dj_1", run_json("dj_1", state="queued"))

    run = make(API_VERSION=version).clear_run("harvest", "dj_1", only_failed=only_failed)

    assert (run.run_id, run.state) == ("dj_1", "queued")


def test_clear_run_works_where_the_runs_own_clear_path_would_be_too_long(make: Any, stub: Stubber) -> None:
    dag_id, run_id = "index_finding_aid_collections", "dj_0123456789ab"  # an app-made run id
    assert len(f"/dags/{dag_id}/dagRuns/{run_id}") <= mwaa.MAX_PATH_LENGTH
    assert len(f"/dags/{dag_id}/dagRuns/{run_id}/clear") > mwaa.MAX_PATH_LENGTH
    body = {"dry_run": False, "dag_run_id": run_id, "only_failed": False, "reset_dag_runs": True}
    expect(stub, "POST", f"/dags/{dag_id}/clearTaskInstances", {"task_instances": []}, body=body)
    expect(stub, "GET", f"/dags/{dag_id}/dagRuns/{run_id}", v2_run(run_id, dag_id=dag_id))

    assert make().clear_run(dag_id, run_id).run_id == run_id


def test_clear_run_path_too_long_fails_before_calling(make: Any, stub: Stubber) -> None:
    with pytest.raises(BadRequest, match="at most 64"):
        make().clear_run("d" * 40, "dj_1")


@pytest.mark.parametrize(
    ("call", "method"),
    [
        (lambda t: t.set_run_state("harvest", "dj_x", "failed"), "PATCH"),
        (lambda t: t.clear_run("harvest", "dj_x"), "POST"),
    ],
    ids=["set_run_state", "clear_run"],
)
def test_controls_on_an_unknown_run_are_not_found(make: Any, stub: Stubber, call: Any, method: str) -> None:
    stub.add_client_error(
        "invoke_rest_api",
        service_error_code="RestApiClientException",
        service_message="Airflow said no",
        http_status_code=400,
        modeled_fields={"RestApiStatusCode": 404, "RestApiResponse": {"detail": "Dag Run id dj_x not found"}},
        expected_params={"Name": ENV, "Path": stub_path(method), "Method": method, "Body": ANY},
    )
    with pytest.raises(NotFound, match="dj_x not found") as info:
        call(make(RETRIES=3))
    assert info.value.status_code == 404


@pytest.mark.parametrize(
    "call",
    [lambda t: t.set_run_state("harvest", "dj_1", "failed"), lambda t: t.clear_run("harvest", "dj_1")],
    ids=["set_run_state", "clear_run"],
)
def test_controls_are_not_retried(make: Any, stub: Stubber, call: Any) -> None:
    airflow_error(stub, 503, {"detail": "down"})  # one answer only: a second call would fail the stub
    with pytest.raises(AirflowUnavailable, match="down"):
        call(make(RETRIES=3))


def stub_path(method: str) -> str:
    return "/dags/harvest/dagRuns/dj_x" if method == "PATCH" else "/dags/harvest/clearTaskInstances"


# --- error mapping ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequest),
        (401, AuthenticationFailed),
        (403, AuthenticationFailed),
        (404, NotFound),
        (409, Conflict),
        (422, BadRequest),
        (500, AirflowUnavailable),
        (503, AirflowUnavailable),
    ],
)
def test_airflow_statuses_map_to_the_exception_family(
    make: Any, stub: Stubber, status: int, cls: type[Exception]
) -> None:
    airflow_error(stub, status, {"title": "x", "status": status, "detail": f"Airflow detail {status}"})
    with pytest.raises(cls) as info:
        make().get_dag("harvest")
    assert type(info.value) is cls
    assert info.value.status_code == status  # type: ignore[attr-defined]
    assert f"Airflow detail {status}" in str(info.value)


@pytest.mark.parametrize(
    ("code", "http_status", "cls", "words"),
    [
        ("AccessDeniedException", 403, AuthenticationFailed, "AWS refused"),
        ("ResourceNotFoundException", 404, NotFound, "MWAA environment 'my-env' not found"),
        ("ValidationException", 400, BadRequest, "MWAA rejected"),
        ("InternalServerException", 500, AirflowUnavailable, "InternalServerException"),
        ("SomethingNew", 400, BadResponse, "SomethingNew"),
    ],
)
def test_aws_errors_map_to_the_exception_family(
    make: Any, stub: Stubber, code: str, http_status: int, cls: type[Exception], words: str
) -> None:
    aws_error(stub, code, "aws message", http_status)
    with pytest.raises(cls, match=words) as info:
        make().get_dag("harvest")
    assert type(info.value) is cls


def raising_client(exc: Exception) -> Any:
    """A real client whose HTTP send raises ``exc`` (as botocore would on the wire)."""
    client = real_client()

    def boom(**kwargs: Any) -> None:
        raise exc

    client.meta.events.register("before-send.mwaa.InvokeRestApi", boom)
    return client


@pytest.mark.parametrize(
    ("exc", "cls", "words"),
    [
        (
            botocore.exceptions.EndpointConnectionError(endpoint_url="https://env.x"),
            AirflowUnavailable,
            "reach",
        ),
        (botocore.exceptions.ConnectTimeoutError(endpoint_url="https://env.x"), AirflowTimeout, "in time"),
        (botocore.exceptions.ReadTimeoutError(endpoint_url="https://env.x"), AirflowTimeout, "in time"),
        (botocore.exceptions.NoCredentialsError(), AuthenticationFailed, "no usable AWS credentials"),
        (
            botocore.exceptions.ConnectionClosedError(endpoint_url="https://env.x"),
            AirflowUnavailable,
            "reach",
        ),
        (botocore.exceptions.ParamValidationError(report="Path too long"), BadRequest, "Path too long"),
    ],
)
def test_botocore_errors_map_to_the_exception_family(
    make: Any, monkeypatch: pytest.MonkeyPatch, exc: Exception, cls: type[Exception], words: str
) -> None:
    monkeypatch.setitem(_sessions, "current", RecordingSession(raising_client(exc)))
    with pytest.raises(cls, match=words) as info:
        make().get_dag("harvest")
    assert type(info.value) is cls


def test_reads_are_retried_on_unavailable(make: Any, stub: Stubber) -> None:
    airflow_error(stub, 502, {"detail": "bad gateway"})
    expect(stub, "GET", "/dags/harvest", {"dag_id": "harvest", "is_paused": False})
    assert make(RETRIES=1).get_dag("harvest").dag_id == "harvest"


def test_reads_give_up_after_retries(make: Any, stub: Stubber) -> None:
    airflow_error(stub, 503, {"detail": "one"})
    airflow_error(stub, 503, {"detail": "two"})
    with pytest.raises(AirflowUnavailable, match="two"):
        make(RETRIES=1).get_dag("harvest")


def test_reads_are_not_retried_on_client_errors(make: Any, stub: Stubber) -> None:
    airflow_error(stub, 404, {"detail": "gone"})
    with pytest.raises(NotFound):
        make(RETRIES=2).get_dag("harvest")


# --- boto3 setup -----------------------------------------------------------------------------


def test_session_factory_and_region_are_used_once(
    make: Any, stub: Stubber, session: RecordingSession
) -> None:
    transport = make(REGION="eu-west-3", TIMEOUT=3)
    expect(stub, "GET", "/dags/a", {"dag_id": "a", "is_paused": False})
    expect(stub, "GET", "/dags/b", {"dag_id": "b", "is_paused": False})
    transport.get_dag("a")
    transport.get_dag("b")
    assert len(session.calls) == 1
    service, kwargs = session.calls[0]
    assert service == "mwaa"
    assert kwargs["region_name"] == "eu-west-3"
    assert kwargs["config"].read_timeout == 3
    assert kwargs["config"].retries == {"total_max_attempts": 1}


def test_client_is_created_once_across_threads(make: Any, stub: Stubber, session: RecordingSession) -> None:
    transport = make()
    for _ in range(20):
        expect(stub, "GET", "/dags/a", {"dag_id": "a", "is_paused": False})
    barrier = threading.Barrier(20)

    def work() -> None:
        barrier.wait()
        transport.get_dag("a")

    threads = [threading.Thread(target=work) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(session.calls) == 1


def test_default_session_and_region(
    make: Any, stub: Stubber, client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    recording = RecordingSession(client)
    monkeypatch.setattr(boto3, "Session", lambda: recording)
    expect(stub, "GET", "/dags/a", {"dag_id": "a", "is_paused": False})
    make(SESSION_FACTORY="", REGION="").get_dag("a")
    assert recording.calls[0][1]["region_name"] is None


def test_no_region_is_a_configuration_error(
    make: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    for var in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setitem(_sessions, "current", boto3.Session(aws_access_key_id="x", aws_secret_access_key="y"))
    with pytest.raises(ConfigurationError, match="REGION"):
        make(REGION="").get_dag("a")


def test_missing_boto3_is_a_clear_configuration_error(make: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "boto3", None)
    with pytest.raises(ConfigurationError, match=r"django-airflow-client\[mwaa\]"):
        make().get_dag("harvest")


def test_unimportable_session_factory(make: Any) -> None:
    with pytest.raises(ConfigurationError, match="SESSION_FACTORY"):
        make(SESSION_FACTORY="tests.nowhere.factory").get_dag("harvest")


def test_env_name_is_required(make: Any) -> None:
    with pytest.raises(ConfigurationError, match="ENV_NAME"):
        make(ENV_NAME="")


def test_api_version_must_be_known(make: Any) -> None:
    with pytest.raises(ConfigurationError, match="API_VERSION"):
        make(API_VERSION="v3")


def test_close_drops_the_client(make: Any, stub: Stubber, session: RecordingSession) -> None:
    transport = make()
    expect(stub, "GET", "/dags/a", {"dag_id": "a", "is_paused": False})
    expect(stub, "GET", "/dags/a", {"dag_id": "a", "is_paused": False})
    transport.get_dag("a")
    transport.close()
    transport.get_dag("a")
    assert len(session.calls) == 2


def test_selected_by_transport_name(session: RecordingSession) -> None:
    environments = {"aws": {"TRANSPORT": "mwaa", "ENV_NAME": ENV, "UI_URL": UI}}
    with override_settings(AIRFLOW_ENVIRONMENTS=environments):
        assert isinstance(transports.get_transport("aws"), MwaaTransport)
    transports.reset()


# --- links ------------------------------------------------------------------------------


def test_links_v2(make: Any) -> None:
    transport = make()
    assert transport.run_url("harvest", "dj_1") == f"{UI}/dags/harvest/runs/dj_1"
    assert (
        transport.log_url("harvest", "dj_1", "run", 2)
        == f"{UI}/dags/harvest/runs/dj_1/tasks/run?try_number=2"
    )


def test_links_v1(make: Any) -> None:
    transport = make(API_VERSION="v1")
    assert transport.run_url("harvest", "dj_1") == f"{UI}/dags/harvest/grid?dag_run_id=dj_1"
    assert (
        transport.log_url("harvest", "dj_1", "run")
        == f"{UI}/dags/harvest/grid?dag_run_id=dj_1&task_id=run&tab=logs"
    )


def test_links_fall_back_to_v2_when_version_unknown(make: Any, stub: Stubber) -> None:
    airflow_error(stub, 503, {"detail": "starting"})
    assert make(API_VERSION="auto").run_url("harvest", "dj_1") == f"{UI}/dags/harvest/runs/dj_1"


def test_links_probe_once_without_retries_then_pause(
    make: Any, stub: Stubber, monkeypatch: pytest.MonkeyPatch
) -> None:
    transport = make(API_VERSION="auto", RETRIES=2)
    airflow_error(stub, 503, {"detail": "starting"})  # the one probe: not retried
    # A page with several links (and a sync reading capabilities) while Airflow is down:
    # the Stubber fails on any call beyond the queued one.
    assert transport.run_url("harvest", "dj_1") == f"{UI}/dags/harvest/runs/dj_1"
    assert transport.log_url("harvest", "dj_1", "run") == f"{UI}/dags/harvest/runs/dj_1/tasks/run"
    assert transport.run_url("harvest", "dj_2") == f"{UI}/dags/harvest/runs/dj_2"
    assert transport.capabilities == Capabilities()
    stub.assert_no_pending_responses()

    monkeypatch.setattr(MwaaTransport, "version_probe_pause", 0.0)  # the pause is over
    expect(stub, "GET", "/version", {"version": "2.10.3"})
    assert transport.run_url("harvest", "dj_1") == f"{UI}/dags/harvest/grid?dag_run_id=dj_1"
    assert transport.capabilities == Capabilities(batch_listing=True, updated_since_filter=True)


def test_capabilities_never_raise_while_airflow_is_down(make: Any, stub: Stubber) -> None:
    aws_error(stub, "AccessDeniedException", "No Airflow role granted in IAM", 403)
    assert make(API_VERSION="auto").capabilities == Capabilities()


def test_capabilities_without_boto3_do_not_raise(make: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "boto3", None)
    transport = make(API_VERSION="auto")
    assert transport.capabilities == Capabilities()
    assert transport.run_url("harvest", "dj_1") == f"{UI}/dags/harvest/runs/dj_1"


def test_request_paths_escape_colon_and_plus(make: Any, stub: Stubber) -> None:
    # The same escaping as the REST transport; links keep ":" and "+" readable.
    transport = make()
    expect(stub, "GET", "/dags/h/dagRuns/a%3Ab%2Bc%2Fd", v2_run("a:b+c/d", dag_id="h"))
    assert transport.get_run("h", "a:b+c/d").run_id == "a:b+c/d"
    assert transport.run_url("h", "a:b+c/d") == f"{UI}/dags/h/runs/a:b+c%2Fd"


def test_trigger_conflict_names_the_run(make: Any, stub: Stubber) -> None:
    airflow_error(stub, 409, {"detail": {"reason": "Unique constraint violation", "message": "exists"}})
    with pytest.raises(Conflict, match="The DAG 'harvest' already has a run with id 'dj_1'"):
        make().trigger("harvest", run_id="dj_1", conf={})


def test_list_runs_skips_a_run_repeated_across_pages(
    make: Any, stub: Stubber, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A run started between two requests pushes the last run of page 1 onto page 2.
    monkeypatch.setattr(MwaaTransport, "page_size", 2)
    transport = make()
    for offset, ids in ((0, ["dj_4", "dj_3"]), (2, ["dj_3", "dj_2"])):
        expect(
            stub,
            "POST",
            "/dags/~/dagRuns/list",
            {"dag_runs": [v2_run(i) for i in ids], "total_entries": 4},
            body={"order_by": "-run_after", "page_offset": offset, "page_limit": 2},
        )
    assert [r.run_id for r in transport.list_runs(RunQuery())] == ["dj_4", "dj_3", "dj_2"]


def test_list_runs_updated_since_of_an_unknown_dag_is_empty(make: Any, stub: Stubber) -> None:
    # Airflow 3 says 404 where Airflow 2 lists nothing: the same answer from both.
    airflow_error(stub, 404, {"detail": "Dag with dag_id: 'gone' not found"})
    since = datetime(2025, 3, 1, 10, 0)
    assert list(make().list_runs(RunQuery(dag_ids=["gone"], updated_since=since))) == []


def test_list_runs_reads_a_naive_since_as_utc(make: Any, stub: Stubber) -> None:
    expect(
        stub,
        "GET",
        "/dags/~/dagRuns",
        {"dag_runs": [], "total_entries": 0},
        query={"order_by": "-run_after", "updated_at_gte": "2025-03-01T10:00:00Z", "offset": 0, "limit": 100},
    )
    assert list(make().list_runs(RunQuery(updated_since=datetime(2025, 3, 1, 10, 0)))) == []


def test_list_runs_with_zero_limit_asks_nothing(make: Any, stub: Stubber) -> None:
    since = datetime(2025, 3, 1, 10, 0, tzinfo=timezone.utc)
    assert list(make().list_runs(RunQuery(limit=0))) == []
    assert list(make().list_runs(RunQuery(limit=0, updated_since=since))) == []


def test_other_exceptions_pass_through(make: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(_sessions, "current", RecordingSession(raising_client(RuntimeError("bug"))))
    with pytest.raises(RuntimeError, match="bug"):
        make().get_dag("harvest")


def test_error_status_in_a_normal_answer_is_still_an_error(make: Any, stub: Stubber) -> None:
    stub.add_response("invoke_rest_api", {"RestApiStatusCode": 404, "RestApiResponse": {"detail": "gone"}})
    with pytest.raises(NotFound, match="gone"):
        make().get_dag("harvest")


def test_server_exception_without_status_is_unavailable(make: Any, stub: Stubber) -> None:
    stub.add_client_error("invoke_rest_api", service_error_code="RestApiServerException", service_message="x")
    with pytest.raises(AirflowUnavailable) as info:
        make().get_dag("harvest")
    assert info.value.status_code == 500


# --- XCom (Django tasks' results) --------------------------------------------------------------


def test_xcom_reads_the_entry_value(make: Any, stub: Stubber) -> None:
    expect(
        stub, "GET", "/dags/t/dagRuns/r1/taskInstances/run/xcomEntries/k", {"key": "k", "value": '{"a": 1}'}
    )

    assert make().xcom("t", "r1", "run", "k") == '{"a": 1}'


def test_xcom_path_too_long_fails_before_calling(make: Any, stub: Stubber) -> None:
    """MWAA's 64-character path cap: the task DAG's XCom path fits short ids only."""
    with pytest.raises(BadRequest, match="at most 64"):
        make().xcom("django_tasks", "dj_0123456789abcdef", "run", "django_task")
