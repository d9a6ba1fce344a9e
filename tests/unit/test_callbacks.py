"""The DAG-side callbacks: the event each one sends, where it goes, and that nothing ever fails a task.

A local HTTP server stands in for the Django site; contexts are shaped like the ones
Airflow 2.11 and 3.3 hand to callbacks (tests/contract/test_callbacks_airflow.py
builds the real ones). boto3 is exercised through botocore's Stubber.
"""

from __future__ import annotations

import enum
import json
import logging
import re
import socket
import subprocess
import sys
import time
import types
import urllib.parse
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from airflow_client import callbacks
from tests.event_receiver import Receiver, running_receiver

ROOT = Path(__file__).resolve().parents[2]
SECRET = "s3cr3t-shared-Key"
LOGGER = "airflow_client.callbacks"
CONFIG_VARIABLES = (
    callbacks.CONNECTION_ENV,
    callbacks.URL_ENV,
    callbacks.SECRET_ENV,
    callbacks.ENVIRONMENT_ENV,
    callbacks.TIMEOUT_ENV,
    callbacks.SQS_ENV,
    callbacks.SNS_ENV,
    callbacks.REGION_ENV,
)

QUEUED = datetime(2025, 3, 1, 9, 0, 0, tzinfo=timezone.utc)
STARTED = datetime(2025, 3, 1, 9, 0, 2, tzinfo=timezone.utc)
TASK_STARTED = datetime(2025, 3, 1, 9, 0, 5, tzinfo=timezone.utc)
TASK_ENDED = datetime(2025, 3, 1, 9, 0, 9, tzinfo=timezone.utc)
ENDED = datetime(2025, 3, 1, 9, 0, 10, tzinfo=timezone.utc)


# --- contexts as each Airflow major hands them to callbacks -----------------------------------


class DagRunType(str, enum.Enum):  # Airflow 3's run_type is an enum
    MANUAL = "manual"


class TaskInstanceState(str, enum.Enum):
    RUNNING = "running"


class DetachedDagRun(types.SimpleNamespace):
    """Airflow 2's DagRun ORM object after its session closed: ``note`` is a lazy load that raises."""

    @property
    def note(self) -> str:
        raise RuntimeError("Parent instance <DagRun> is not bound to a Session")


def airflow2_context(**extra: Any) -> dict[str, Any]:
    ti = types.SimpleNamespace(
        dag_id="harvest",
        run_id="manual__2025-03-01",
        task_id="fetch",
        map_index=-1,
        try_number=1,
        state="running",
        start_date=TASK_STARTED,
        end_date=None,
    )
    dag_run = types.SimpleNamespace(
        dag_id="harvest",
        run_id="manual__2025-03-01",
        run_type="manual",
        execution_date=QUEUED,
        logical_date=QUEUED,
        queued_at=QUEUED,
        start_date=STARTED,
        end_date=None,
        conf={"finding_aid_id": 7},
        note="started from the admin",
        state="running",
    )
    dag = types.SimpleNamespace(dag_id="harvest", task_ids=["fetch", "index", "publish"])
    return {"ti": ti, "task_instance": ti, "dag_run": dag_run, "dag": dag, "run_id": dag_run.run_id, **extra}


def airflow3_context(**extra: Any) -> dict[str, Any]:
    # A RuntimeTaskInstance carries no state before the task has run; the dag run has no queued_at.
    ti = types.SimpleNamespace(
        dag_id="harvest",
        run_id="manual__2025-03-01",
        task_id="fetch",
        map_index=3,
        try_number=2,
        state=None,
        start_date=TASK_STARTED,
        end_date=TASK_ENDED,
    )
    dag_run = types.SimpleNamespace(
        dag_id="harvest",
        run_id="manual__2025-03-01",
        logical_date=None,
        run_after=QUEUED,
        data_interval_start=None,
        data_interval_end=None,
        start_date=STARTED,
        end_date=None,
        run_type=DagRunType.MANUAL,
        state="running",
        conf=None,
        note=None,
    )
    dag = types.SimpleNamespace(dag_id="harvest", task_ids=["fetch", "index"])
    return {"ti": ti, "task_instance": ti, "dag_run": dag_run, "dag": dag, "run_id": dag_run.run_id, **extra}


# --- fixtures -------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _no_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in CONFIG_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The back-off waits asked for, instead of sleeping them."""
    asked: list[float] = []
    monkeypatch.setattr(callbacks, "sleep", asked.append)
    return asked


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as receiver:
        yield receiver


@pytest.fixture
def configured(monkeypatch: pytest.MonkeyPatch, receiver: Receiver) -> Receiver:
    """Events go to the receiver, configured by the connection's environment variable (JSON form)."""
    connection = {
        "conn_type": "http",
        "host": receiver.url,
        "password": SECRET,
        "extra": {"environment": "prod"},
    }
    monkeypatch.setenv(callbacks.CONNECTION_ENV, json.dumps(connection))
    return receiver


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno == logging.WARNING]


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/events/"


# --- the event body -------------------------------------------------------------------------

RUN_OF_AIRFLOW2 = {
    "dag_id": "harvest",
    "run_id": "manual__2025-03-01",
    "state": "running",
    "run_type": "manual",
    "logical_date": "2025-03-01T09:00:00+00:00",
    "run_after": None,
    "queued_at": "2025-03-01T09:00:00+00:00",
    "start_date": "2025-03-01T09:00:02+00:00",
    "end_date": None,
    "conf": {"finding_aid_id": 7},
    "note": "started from the admin",
    "task_count": 3,
}


@pytest.mark.parametrize("kind", ["task_start", "task_success", "task_failure", "task_retry"])
def test_a_task_event_from_an_airflow2_context(kind: str) -> None:
    event = callbacks.build_event(airflow2_context(), kind, environment="prod")
    assert event["version"] == 1
    assert event["kind"] == kind
    assert re.fullmatch("[0-9a-f]{32}", event["id"])
    assert datetime.fromisoformat(event["sent_at"]).utcoffset() is not None
    assert event["environment"] == "prod"
    assert event["host"] == socket.gethostname()
    assert event["run"] == RUN_OF_AIRFLOW2
    assert event["task"] == {
        "task_id": "fetch",
        "map_index": -1,
        "try_number": 1,
        "state": "running",
        "start_date": "2025-03-01T09:00:05+00:00",
        "end_date": None,
        "error": None,
    }
    assert event["payload"] is None


def test_a_task_event_from_an_airflow3_context() -> None:
    event = callbacks.build_event(airflow3_context(), "task_success")
    assert event["environment"] is None
    assert event["run"] == {
        "dag_id": "harvest",
        "run_id": "manual__2025-03-01",
        "state": "running",
        "run_type": "manual",
        "logical_date": None,
        "run_after": "2025-03-01T09:00:00+00:00",
        "queued_at": None,
        "start_date": "2025-03-01T09:00:02+00:00",
        "end_date": None,
        "conf": {},
        "note": None,
        "task_count": 2,
    }
    # No state on the task instance: the callback's kind says it.
    assert event["task"] == {
        "task_id": "fetch",
        "map_index": 3,
        "try_number": 2,
        "state": "success",
        "start_date": "2025-03-01T09:00:05+00:00",
        "end_date": "2025-03-01T09:00:09+00:00",
        "error": None,
    }


def test_enum_states_are_sent_as_their_values() -> None:
    context = airflow3_context()
    context["ti"].state = TaskInstanceState.RUNNING
    assert callbacks.build_event(context, "task_start")["task"]["state"] == "running"


@pytest.mark.parametrize(("kind", "state"), [("dag_success", "success"), ("dag_failure", "failed")])
def test_a_dag_event_has_no_task_even_when_airflow_passes_one(kind: str, state: str) -> None:
    # Airflow 2 (and 3 when it knows the last task) passes some task instance to DAG callbacks.
    context = airflow2_context(reason="success" if state == "success" else "task_failure")
    context["dag_run"].end_date = ENDED
    event = callbacks.build_event(context, kind)
    assert event["task"] is None
    assert event["run"]["state"] == state
    assert event["run"]["end_date"] == "2025-03-01T09:00:10+00:00"


def test_a_dag_event_from_airflow3s_minimal_dag_callback_context() -> None:
    """Airflow 3's dag processor passes only dag, run_id and reason when it has no last task."""
    dag = types.SimpleNamespace(dag_id="harvest", task_ids=["fetch"])
    event = callbacks.build_event(
        {"dag": dag, "run_id": "manual__2025-03-01", "reason": "success"}, "dag_success"
    )
    assert event["run"]["dag_id"] == "harvest"
    assert event["run"]["run_id"] == "manual__2025-03-01"
    assert event["run"]["state"] == "success"
    assert event["run"]["conf"] == {}
    assert event["run"]["task_count"] == 1
    assert event["task"] is None


def test_a_detached_airflow2_dag_run_loses_only_its_note() -> None:
    context = airflow2_context()
    context["dag_run"] = DetachedDagRun(**{k: v for k, v in vars(context["dag_run"]).items() if k != "note"})
    event = callbacks.build_event(context, "task_start")
    assert event["run"]["note"] is None
    assert event["run"]["conf"] == {"finding_aid_id": 7}


def test_naive_datetimes_are_read_as_utc() -> None:
    context = airflow2_context()
    context["ti"].start_date = datetime(2025, 3, 1, 9, 0, 5)
    assert callbacks.build_event(context, "task_start")["task"]["start_date"] == "2025-03-01T09:00:05+00:00"


@pytest.mark.parametrize("kind", ["task_failure", "task_retry"])
def test_a_failure_carries_the_exception_cut_to_1000_characters(kind: str) -> None:
    event = callbacks.build_event(airflow2_context(exception=RuntimeError("x" * 5000)), kind)
    assert event["task"]["error"] == "x" * 1000


def test_an_exception_without_a_message_is_named_by_its_type() -> None:
    event = callbacks.build_event(airflow3_context(exception=TimeoutError()), "task_failure")
    assert event["task"]["error"] == "TimeoutError"


def test_a_success_carries_no_error_even_with_an_exception_in_the_context() -> None:
    event = callbacks.build_event(airflow2_context(exception=RuntimeError("old")), "task_success")
    assert event["task"]["error"] is None


def test_a_custom_event_carries_its_payload() -> None:
    event = callbacks.build_event(airflow3_context(), "pages.fetched", {"count": 500})
    assert event["kind"] == "pages.fetched"
    assert event["payload"] == {"count": 500}
    assert event["task"]["task_id"] == "fetch"


@pytest.mark.parametrize("kind", ["", "Pages", "pages fetched", "x" * 51, "é"])
def test_malformed_kinds_are_refused(kind: str) -> None:
    with pytest.raises(ValueError, match="kind must be"):
        callbacks.build_event(airflow3_context(), kind)


def test_each_event_has_its_own_id() -> None:
    ids = {callbacks.build_event(airflow3_context(), "task_start")["id"] for _ in range(5)}
    assert len(ids) == 5


def test_a_task_event_needs_a_task_instance() -> None:
    context = airflow3_context()
    del context["ti"], context["task_instance"]
    with pytest.raises(ValueError, match="no task instance"):
        callbacks.build_event(context, "task_start")


def test_the_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    # Known answer from `printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac key`.
    assert callbacks.signature("key", "1700000000", b'{"a":1}') == (
        "sha256=a438e398bfafc57e4396bb7fc2304422f0f768e965d073ca313cb52e22e6ad03"
    )


# --- sending over HTTP ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("callback", "kind", "make_context"),
    [
        (callbacks.on_task_start, "task_start", airflow2_context),
        (callbacks.on_task_success, "task_success", airflow3_context),
        (callbacks.on_task_failure, "task_failure", airflow2_context),
        (callbacks.on_task_retry, "task_retry", airflow3_context),
        (callbacks.on_dag_success, "dag_success", airflow3_context),
        (callbacks.on_dag_failure, "dag_failure", airflow2_context),
    ],
)
def test_each_callback_posts_its_signed_event(
    callback: Any, kind: str, make_context: Any, configured: Receiver
) -> None:
    assert callback(make_context(exception=ValueError("boom"))) is None
    [request] = configured.received
    assert request.path == "/airflow-client/events/"
    assert request.headers["Content-Type"] == "application/json"
    assert request.signed_with(SECRET)
    assert not request.signed_with(SECRET + "x")
    assert abs(int(request.headers[callbacks.TIMESTAMP_HEADER]) - time.time()) < 60
    event = request.event
    assert event["kind"] == kind
    assert event["environment"] == "prod"
    assert event["run"]["dag_id"] == "harvest"
    assert (event["task"] is None) == kind.startswith("dag_")
    if kind in ("task_failure", "task_retry"):
        assert event["task"]["error"] == "boom"


def test_send_event_posts_a_custom_message_and_says_it_was_delivered(configured: Receiver) -> None:
    assert callbacks.send_event(airflow3_context(), "pages.fetched", {"count": 500, "at": STARTED}) is True
    [event] = configured.events
    assert event["kind"] == "pages.fetched"
    # Values JSON lacks are sent in their plain form rather than losing the event.
    assert event["payload"] == {"count": 500, "at": "2025-03-01T09:00:02+00:00"}


def test_a_connection_uri_in_the_environment(monkeypatch: pytest.MonkeyPatch, receiver: Receiver) -> None:
    # Airflow's URI form: conn-type://login:password@host:port/schema?extra
    uri = f"http://:{SECRET}@127.0.0.1:{receiver.port}/airflow-client/events/?environment=staging&timeout=3"
    monkeypatch.setenv(callbacks.CONNECTION_ENV, uri)
    assert callbacks.send_event(airflow2_context(), "task_start") is True
    [request] = receiver.received
    assert request.path == "/airflow-client/events/"
    assert request.signed_with(SECRET)
    assert request.event["environment"] == "staging"


def test_a_connection_uri_with_its_extra_as_json(monkeypatch: pytest.MonkeyPatch, receiver: Receiver) -> None:
    extra = urllib.parse.quote(json.dumps({"environment": "qa"}))
    password = urllib.parse.quote(SECRET, safe="")
    uri = f"http://:{password}@127.0.0.1:{receiver.port}/airflow-client/events/?__extra__={extra}"
    monkeypatch.setenv(callbacks.CONNECTION_ENV, uri)
    assert callbacks.send_event(airflow2_context(), "task_start") is True
    assert receiver.received[0].signed_with(SECRET)
    assert receiver.events[0]["environment"] == "qa"


def test_a_json_connection_with_host_port_and_schema_apart(
    monkeypatch: pytest.MonkeyPatch, receiver: Receiver
) -> None:
    connection = {
        "conn_type": "http",
        "host": "127.0.0.1",
        "port": receiver.port,
        "schema": "airflow-client/events/",
        "password": SECRET,
    }
    monkeypatch.setenv(callbacks.CONNECTION_ENV, json.dumps(connection))
    assert callbacks.send_event(airflow3_context(), "task_start") is True
    assert receiver.received[0].path == "/airflow-client/events/"
    assert receiver.events[0]["environment"] is None


def test_the_plain_environment_variables(monkeypatch: pytest.MonkeyPatch, receiver: Receiver) -> None:
    monkeypatch.setenv(callbacks.URL_ENV, receiver.url)
    monkeypatch.setenv(callbacks.SECRET_ENV, SECRET)
    monkeypatch.setenv(callbacks.ENVIRONMENT_ENV, "airflow3")
    assert callbacks.send_event(airflow3_context(), "task_start") is True
    assert receiver.received[0].signed_with(SECRET)
    assert receiver.events[0]["environment"] == "airflow3"


def test_the_connection_wins_over_the_plain_variables(
    monkeypatch: pytest.MonkeyPatch, configured: Receiver
) -> None:
    monkeypatch.setenv(callbacks.URL_ENV, closed_port_url())
    monkeypatch.setenv(callbacks.SECRET_ENV, "another")
    assert callbacks.send_event(airflow3_context(), "task_start") is True
    assert configured.received[0].signed_with(SECRET)


def fake_airflow_hook(monkeypatch: pytest.MonkeyPatch, get_connection: Any) -> list[str]:
    """Airflow's BaseHook as `airflow.sdk` exposes it, answering with ``get_connection``."""
    asked: list[str] = []

    class BaseHook:
        @classmethod
        def get_connection(cls, conn_id: str) -> Any:
            asked.append(conn_id)
            logging.getLogger("airflow.hooks.base").info("Retrieving connection '%s'", conn_id)
            return get_connection(conn_id)

    monkeypatch.setitem(sys.modules, "airflow.sdk", types.SimpleNamespace(BaseHook=BaseHook))
    return asked


def test_the_connection_is_read_through_airflow_when_airflow_is_there(
    monkeypatch: pytest.MonkeyPatch, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    def get_connection(conn_id: str) -> Any:
        return types.SimpleNamespace(
            conn_type="http",
            host=receiver.url,
            schema=None,
            port=None,
            password=SECRET,
            extra_dejson={"environment": "from-a-secrets-backend"},
        )

    asked = fake_airflow_hook(monkeypatch, get_connection)
    caplog.set_level(logging.DEBUG)
    assert callbacks.send_event(airflow3_context(), "task_start") is True
    assert asked == ["django_airflow_client"]
    assert receiver.events[0]["environment"] == "from-a-secrets-backend"
    # Airflow 2 logs every look-up at INFO: not in the task log each time an event is sent.
    assert "Retrieving connection" not in caplog.text


def test_the_environment_variable_is_read_directly_where_airflow_cannot_look_it_up(
    monkeypatch: pytest.MonkeyPatch, configured: Receiver
) -> None:
    """E.g. a DAG callback in a process that cannot reach the API server."""

    def get_connection(conn_id: str) -> Any:
        raise LookupError(f"The conn_id `{conn_id}` isn't defined")

    asked = fake_airflow_hook(monkeypatch, get_connection)
    assert callbacks.send_event(airflow3_context(), "dag_success") is True
    assert asked == ["django_airflow_client"]
    assert configured.received[0].signed_with(SECRET)


# --- problems are warnings, never exceptions ------------------------------------------------


def test_not_configured_is_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    assert callbacks.send_event(airflow3_context(), "task_start") is False
    assert callbacks.on_task_success(airflow3_context()) is None
    assert len(warnings_of(caplog)) == 2
    assert "events not sent" in warnings_of(caplog)[0]
    assert "not configured" in warnings_of(caplog)[0]


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({callbacks.CONNECTION_ENV: '{"host": "https://django.example/events/"}'}, "no shared secret"),
        (
            {callbacks.CONNECTION_ENV: '{"host": "https://x.example/", "password": "k", "extra": "{oops"}'},
            "not JSON",
        ),
        ({callbacks.CONNECTION_ENV: '{"host": "file:///etc/passwd", "password": "k"}'}, "must be http(s)"),
        ({callbacks.CONNECTION_ENV: '{"password": "k"}'}, "no URL"),
        ({callbacks.CONNECTION_ENV: "{not json"}, "not JSON"),
        ({callbacks.CONNECTION_ENV: "nonsense"}, "neither JSON nor a URI"),
        (
            {
                callbacks.CONNECTION_ENV: '{"host": "https://x.example/", "password": "k", "extra": {"timeout": "soon"}}'
            },
            "not a number of seconds",
        ),
        ({callbacks.URL_ENV: "https://django.example/events/"}, "no shared secret"),
        ({callbacks.SECRET_ENV: "k"}, "no URL"),
        (
            {callbacks.URL_ENV: "https://x.example/", callbacks.SECRET_ENV: "k", callbacks.TIMEOUT_ENV: "-1"},
            "between 0 and 300",
        ),
        (
            {
                callbacks.SECRET_ENV: "k",
                callbacks.SQS_ENV: "https://q.example/1/q",
                callbacks.SNS_ENV: "arn:x",
            },
            "set one",
        ),
    ],
)
def test_a_broken_configuration_is_one_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, variables: dict[str, str], message: str
) -> None:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    assert callbacks.send_event(airflow3_context(), "task_start") is False
    [warning] = warnings_of(caplog)
    assert message in warning


@pytest.mark.parametrize("context", [None, 42, {}, {"ti": object()}, {"dag_run": types.SimpleNamespace()}])
def test_a_context_without_a_run_is_a_warning(
    context: Any, configured: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    assert callbacks.on_task_start(context) is None
    assert callbacks.on_dag_success(context) is None
    assert configured.received == []
    assert len(warnings_of(caplog)) == 2


def test_a_payload_that_is_no_object_is_a_warning(
    configured: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    assert callbacks.send_event(airflow3_context(), "pages.fetched", [1, 2]) is False  # type: ignore[arg-type]
    assert configured.received == []
    assert "payload must be a mapping" in warnings_of(caplog)[0]


def test_server_down_is_tried_three_times_then_a_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, waits: list[float]
) -> None:
    monkeypatch.setenv(callbacks.URL_ENV, closed_port_url())
    monkeypatch.setenv(callbacks.SECRET_ENV, SECRET)
    assert callbacks.on_task_start(airflow3_context()) is None
    assert waits == [1.0, 2.0]
    [warning] = warnings_of(caplog)
    assert "after 3 attempts" in warning
    assert "cannot connect" in warning


@pytest.mark.parametrize("status", [500, 502, 503, 429])
def test_a_busy_server_is_asked_again_with_the_same_event(
    status: int, configured: Receiver, waits: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    configured.script = [(status, 0.0)]
    assert callbacks.send_event(airflow2_context(), "task_success") is True
    first, second = configured.received
    assert first.event["id"] == second.event["id"]
    assert first.body == second.body
    assert second.signed_with(SECRET)
    assert waits == [1.0]
    assert warnings_of(caplog) == []


def test_a_server_failing_every_time_is_a_warning(
    configured: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    configured.script = [(500, 0.0)] * 3
    assert callbacks.send_event(airflow2_context(), "task_success") is False
    assert len(configured.received) == 3
    [warning] = warnings_of(caplog)
    assert "after 3 attempts: HTTP 500" in warning


@pytest.mark.parametrize("status", [400, 401, 403, 404, 302])
def test_a_refusal_is_not_asked_again(
    status: int, configured: Receiver, waits: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    configured.script = [(status, 0.0)]
    assert callbacks.send_event(airflow2_context(), "task_success") is False
    assert len(configured.received) == 1  # a redirect is not followed either
    assert waits == []
    [warning] = warnings_of(caplog)
    assert f"HTTP {status} (not retried)" in warning


def test_a_slow_server_times_out_each_attempt(
    monkeypatch: pytest.MonkeyPatch, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    connection = {"host": receiver.url, "password": SECRET, "extra": {"timeout": 0.2}}
    monkeypatch.setenv(callbacks.CONNECTION_ENV, json.dumps(connection))
    receiver.script = [(204, 2.0)] * 3
    started = time.monotonic()
    assert callbacks.send_event(airflow3_context(), "task_start") is False
    assert time.monotonic() - started < 1.8  # three 0.2 s deadlines, not three slow answers
    assert len(receiver.received) == 3
    [warning] = warnings_of(caplog)
    assert "after 3 attempts" in warning
    assert "timed out" in warning


def test_the_secret_never_reaches_the_logs(
    monkeypatch: pytest.MonkeyPatch, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    connection = {"host": receiver.url, "password": SECRET, "extra": {"timeout": 0.2}}
    monkeypatch.setenv(callbacks.CONNECTION_ENV, json.dumps(connection))
    receiver.script = [(500, 0.0), (503, 0.0), (429, 0.0), (400, 0.0), (204, 1.0), (204, 1.0), (204, 1.0)]
    callbacks.send_event(airflow3_context(), "task_start")
    callbacks.send_event(airflow3_context(), "task_start")
    callbacks.send_event(airflow3_context(), "task_start")
    monkeypatch.setenv(callbacks.CONNECTION_ENV, json.dumps({**connection, "host": closed_port_url()}))
    callbacks.send_event(airflow3_context(), "task_start")
    # A secret mistakenly in the URL too.
    monkeypatch.setenv(callbacks.CONNECTION_ENV, json.dumps({**connection, "host": f"gopher://{SECRET}/"}))
    callbacks.send_event(airflow3_context(), "task_start")
    monkeypatch.setenv(callbacks.CONNECTION_ENV, json.dumps({**connection, "host": f"http://[{SECRET}/"}))
    callbacks.send_event(airflow3_context(), "task_start")
    assert len(warnings_of(caplog)) == 6
    assert SECRET not in caplog.text
    monkeypatch.setenv(callbacks.CONNECTION_ENV, json.dumps(connection))
    assert SECRET not in repr(callbacks.resolve_destination())


def test_importing_the_module_loads_neither_django_nor_airflow() -> None:
    code = (
        "import sys, airflow_client.callbacks;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('django', 'airflow')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


# --- SQS and SNS ----------------------------------------------------------------------------


class AwsClients:
    """Stands in for boto3.client: real clients under Stubber, recording what each was asked.

    Each call succeeds, or fails with ``error`` (an AWS error code) when given.
    """

    def __init__(self, error: str | None = None) -> None:
        self.error = error
        self.created: list[tuple[str, dict[str, Any]]] = []
        self.sent: list[dict[str, Any]] = []
        self.stubbers: dict[str, Stubber] = {}

    def __call__(self, service: str, **kwargs: Any) -> Any:
        self.created.append((service, kwargs))
        session = boto3.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name=kwargs["region_name"]
        )
        client = session.client(service, config=kwargs.get("config"))
        client.meta.events.register("provide-client-params.*.*", self._record)
        stubber = self.stubbers[service] = Stubber(client)
        operation = "send_message" if service == "sqs" else "publish"
        if self.error:
            stubber.add_client_error(operation, self.error, "not allowed", 403)
        elif service == "sqs":
            stubber.add_response(operation, {"MessageId": "m-1", "MD5OfMessageBody": "0" * 32})
        else:
            stubber.add_response(operation, {"MessageId": "m-1"})
        stubber.activate()
        return client

    def _record(self, params: dict[str, Any], **kwargs: Any) -> None:
        self.sent.append(params)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> AwsClients:
    clients = AwsClients()
    monkeypatch.setattr(boto3, "client", clients)
    return clients


def assert_signed_envelope(message: str, kind: str) -> dict[str, Any]:
    envelope = json.loads(message)
    assert set(envelope) == {"timestamp", "signature", "body"}
    assert envelope["signature"] == callbacks.signature(
        SECRET, envelope["timestamp"], envelope["body"].encode()
    )
    assert abs(int(envelope["timestamp"]) - time.time()) < 60
    event: dict[str, Any] = json.loads(envelope["body"])
    assert event["kind"] == kind
    return event


def test_sqs_gets_the_signed_envelope(monkeypatch: pytest.MonkeyPatch, aws: AwsClients) -> None:
    queue = "https://sqs.eu-west-3.amazonaws.com/123456789012/airflow-events"
    connection = {
        "password": SECRET,
        "extra": {"sqs_queue_url": queue, "region_name": "eu-west-3", "environment": "mwaa"},
    }
    monkeypatch.setenv(callbacks.CONNECTION_ENV, json.dumps(connection))
    assert callbacks.send_event(airflow2_context(), "task_start") is True
    [(service, kwargs)] = aws.created
    assert (service, kwargs["region_name"]) == ("sqs", "eu-west-3")
    [params] = aws.sent
    assert params["QueueUrl"] == queue
    event = assert_signed_envelope(params["MessageBody"], "task_start")
    assert event["environment"] == "mwaa"
    aws.stubbers["sqs"].assert_no_pending_responses()


def test_sns_gets_the_signed_envelope(monkeypatch: pytest.MonkeyPatch, aws: AwsClients) -> None:
    topic = "arn:aws:sns:us-east-1:123456789012:airflow-events"
    monkeypatch.setenv(callbacks.SECRET_ENV, SECRET)
    monkeypatch.setenv(callbacks.SNS_ENV, topic)
    monkeypatch.setenv(callbacks.REGION_ENV, "us-east-1")
    assert callbacks.on_dag_failure(airflow3_context()) is None
    [(service, kwargs)] = aws.created
    assert (service, kwargs["region_name"]) == ("sns", "us-east-1")
    [params] = aws.sent
    assert params["TopicArn"] == topic
    event = assert_signed_envelope(params["Message"], "dag_failure")
    assert event["task"] is None


def test_an_aws_error_is_a_warning(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(boto3, "client", AwsClients(error="AccessDenied"))
    monkeypatch.setenv(callbacks.SECRET_ENV, SECRET)
    monkeypatch.setenv(callbacks.SQS_ENV, "https://sqs.eu-west-3.amazonaws.com/123456789012/q")
    monkeypatch.setenv(callbacks.REGION_ENV, "eu-west-3")
    assert callbacks.send_event(airflow3_context(), "task_start") is False
    [warning] = warnings_of(caplog)
    assert "AccessDenied" in warning


def test_without_boto3_aws_is_a_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "boto3", None)  # import boto3 -> ImportError
    monkeypatch.setenv(callbacks.SECRET_ENV, SECRET)
    monkeypatch.setenv(callbacks.SNS_ENV, "arn:aws:sns:us-east-1:123456789012:airflow-events")
    assert callbacks.send_event(airflow3_context(), "task_start") is False
    [warning] = warnings_of(caplog)
    assert "boto3 is not installed" in warning
