"""Whatever Airflow answers, the transports parse it or raise the package's own error.

Property tests: any JSON value to each parse function, and any bytes (with any
status) through ApiSession's reading and decoding, end in a result or in an
AirflowClientError subclass, never in anything else (KeyError, TypeError,
RecursionError, OverflowError, UnicodeError, httpx errors...).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from pytest_httpx import HTTPXMock

from airflow_client.exceptions import AirflowClientError
from airflow_client.transports import payloads
from airflow_client.transports.base import RunQuery
from airflow_client.transports.rest import RestTransport
from tests.unit.rest_helpers import make_transport

#: Examples per property (per parametrised case); the session's, which read bytes, get twice as many.
EXAMPLES = 100

#: The keys Airflow's answers hold: dictionaries drawn with them reach past the first check.
KEYS = [
    "dag_id",
    "dag_run_id",
    "state",
    "run_type",
    "triggered_by",
    "triggering_user_name",
    "logical_date",
    "execution_date",
    "run_after",
    "queued_at",
    "start_date",
    "end_date",
    "conf",
    "note",
    "is_paused",
    "is_active",
    "is_stale",
    "dag_runs",
    "task_instances",
    "total_entries",
    "task_id",
    "try_number",
    "map_index",
    "duration",
    "operator",
    "content",
    "continuation_token",
    "event",
    "timestamp",
    "level",
    "error_detail",
    "exc_type",
    "exc_value",
    "detail",
    "title",
    "loc",
    "msg",
    "message",
    "reason",
    "version",
    "access_token",
]

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text()
    | st.sampled_from(
        [
            "2026-11-25T19:42:03.607564Z",
            "9999-12-31T23:59:59-05:00",
            "0001-01-01T00:00:00+14:00",
            "2026-02-30T00:00:00",
            "none",
            "success",
            "running",
            "::group::x",
            "::endgroup::",
            "[('host', 'a\\nb')]",
            "[2026-11-25T19:42:03.607+0000] {x.py:1} INFO - text",
            ".eJyrVkrNS8_MS1WyUkpNTE5NLkosyczPUwIA",
        ]
    )
)
keys = st.sampled_from(KEYS) | st.text(max_size=20)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=6) | st.dictionaries(keys, children, max_size=8),
    max_leaves=20,
)
objects = st.dictionaries(keys, json_values, max_size=12)
answers = (
    objects
    | json_values
    | st.dictionaries(
        st.sampled_from(["dag_runs", "task_instances", "content"]), st.lists(objects, max_size=4), max_size=3
    ).map(lambda page: {**page, "total_entries": 3})
)

PARSERS: dict[str, Callable[[Any], Any]] = {
    "parse_dag": payloads.parse_dag,
    "parse_dag_run v1": lambda data: payloads.parse_dag_run(data, "v1"),
    "parse_dag_run v2": lambda data: payloads.parse_dag_run(data, "v2"),
    "parse_run_list v1": lambda data: payloads.parse_run_list(data, "v1"),
    "parse_run_list v2": lambda data: payloads.parse_run_list(data, "v2"),
    "parse_task_instance": payloads.parse_task_instance,
    "parse_task_instances": payloads.parse_task_instances,
    "parse_log v1": lambda data: payloads.parse_log(data, "v1"),
    "parse_log v2": lambda data: payloads.parse_log(data, "v2"),
    "parse_datetime": payloads.parse_datetime,
    "version_from_string": lambda data: payloads.version_from_string(data) if isinstance(data, str) else None,
    "error_for_status": lambda data: payloads.error_for_status(400, data),
}


def parses_or_raises_own(parse: Callable[[Any], Any], data: Any) -> None:
    with contextlib.suppress(AirflowClientError):
        parse(data)


@pytest.mark.parametrize("name", list(PARSERS))
@settings(max_examples=EXAMPLES, deadline=None)
@given(data=answers)
def test_any_json_parses_or_raises_the_packages_error(name: str, data: Any) -> None:
    parses_or_raises_own(PARSERS[name], data)


@settings(max_examples=EXAMPLES, deadline=None)
@given(body=json_values | st.binary() | st.text())
def test_error_detail_is_always_text(body: Any) -> None:
    assert isinstance(payloads.error_detail(body), str)


@pytest.mark.parametrize("version", ["v1", "v2"])
@settings(max_examples=EXAMPLES, deadline=None)
@given(
    text=st.text() | answers.map(json.dumps).flatmap(lambda t: st.integers(0, len(t)).map(lambda n: t[:n]))
)
def test_any_log_prefix_parses_or_raises_the_packages_error(version: str, text: str) -> None:
    parses_or_raises_own(lambda data: payloads.parse_log_prefix(data, version), text)


# --- any bytes through ApiSession ------------------------------------------------------------------

bodies = (
    st.binary(max_size=2_000)
    | answers.map(lambda value: json.dumps(value).encode())
    | st.integers(1, 5_000).map(lambda depth: b"[" * depth + b"]" * depth)
    | st.sampled_from([b"", b"null", b"NaN", b'{"a": 1e999999}', b"\xff\xfe", b"<html>502</html>"])
)
statuses = st.sampled_from([200, 201, 204, 302, 400, 401, 403, 404, 409, 418, 422, 429, 500, 502, 503])

CALLS: dict[str, Callable[[RestTransport], Any]] = {
    "get_dag": lambda t: t.get_dag("etl"),
    "get_run": lambda t: t.get_run("etl", "dj_1"),
    "list_runs": lambda t: list(t.list_runs(RunQuery(dag_ids=["etl"], limit=250))),
    "task_instances": lambda t: t.task_instances("etl", "dj_1"),
    "task_log": lambda t: t.task_log("etl", "dj_1", "load", 1),
    "trigger": lambda t: t.trigger("etl", run_id="dj_1", conf={}),
}


@pytest.mark.parametrize("version", ["v1", "v2"])
@settings(
    max_examples=2 * EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(call=st.sampled_from(sorted(CALLS)), status=statuses, body=bodies)
def test_any_answer_through_the_session_is_read_or_the_packages_error(
    httpx_mock: HTTPXMock, version: str, call: str, status: int, body: bytes
) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=body)

    httpx_mock.reset()
    httpx_mock.add_callback(answer, is_reusable=True, is_optional=True)
    transport = make_transport(version, USERNAME="", PASSWORD="", TOKEN="static-token-1234", RETRIES=0)
    try:
        CALLS[call](transport)
    except AirflowClientError:
        pass
    finally:
        transport.close()
