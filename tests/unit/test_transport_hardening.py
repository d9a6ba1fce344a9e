"""What a misbehaving Airflow sends, and how the transport keeps it bounded and readable.

Huge logs, error bodies echoing the password, nesting deep enough to break the
JSON decoder, URLs too long to build, listings that ignore ``offset``, long
continuation tokens and ``.``/``..`` ids: each is the package's own error or a
bounded answer, never an exception from below and never a secret.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest
from django.test import override_settings
from django.views.debug import ExceptionReporter
from pytest_httpx import HTTPXMock

from airflow_client.exceptions import AirflowError, BadRequest, BadResponse
from airflow_client.transports import payloads
from airflow_client.transports.base import TaskInstance
from tests.unit.rest_helpers import (
    BASE,
    PASSWORD,
    TOKEN,
    any_query,
    api_url,
    expect_token,
    make_transport,
    run_json,
)

LOG = "/dags/etl/dagRuns/dj_1/taskInstances/load/logs/1"


def big_v2_log(lines: int) -> bytes:
    events = [
        {"timestamp": "2026-11-25T19:42:03.607564Z", "level": "info", "event": f"line {n} " + "x" * 200}
        for n in range(lines)
    ]
    return json.dumps({"content": events, "continuation_token": None}).encode()


# --- defect 1: a huge log is read up to AIRFLOW_MAX_LOG_BYTES ----------------------------------------


@override_settings(AIRFLOW_MAX_LOG_BYTES=2_000_000)
def test_a_huge_json_log_is_read_up_to_the_size_limit(httpx_mock: HTTPXMock) -> None:
    body = big_v2_log(250_000)
    assert len(body) > 60_000_000
    expect_token(httpx_mock)
    httpx_mock.add_response(url=any_query(api_url("v2", LOG)), content=body)
    chunk = make_transport("v2").task_log("etl", "dj_1", "load", 1)
    assert chunk.truncated
    assert chunk.continuation_token is None  # it came after the part read
    # About 2 MB of ~270-byte events: the lines read before the limit, all of them whole.
    assert 5_000 < len(chunk.lines) < 8_000
    assert chunk.lines[0].text.startswith("line 0 ")
    assert chunk.lines[-1].text == f"line {len(chunk.lines) - 1} " + "x" * 200
    assert chunk.lines[0].level == "INFO"


@override_settings(AIRFLOW_MAX_LOG_BYTES=1_000)
def test_a_v1_log_cut_by_the_limit_keeps_the_text_read(httpx_mock: HTTPXMock) -> None:
    text = "\n".join(f"[2026-11-25T19:42:03.607+0000] {{x.py:1}} INFO - line {n}" for n in range(200))
    content = repr([("worker", text)])
    httpx_mock.add_response(
        url=any_query(api_url("v1", LOG)), json={"content": content, "continuation_token": "abc"}
    )
    chunk = make_transport("v1").task_log("etl", "dj_1", "load", 1)
    assert chunk.truncated
    assert chunk.lines[0].text.endswith("INFO - line 0")
    assert chunk.lines[0].level == "INFO"
    assert 5 < len(chunk.lines) < 40
    assert all("\\n" not in line.text for line in chunk.lines)


def test_a_log_under_the_limit_is_whole(httpx_mock: HTTPXMock) -> None:
    expect_token(httpx_mock)
    httpx_mock.add_response(url=any_query(api_url("v2", LOG)), content=big_v2_log(10))
    chunk = make_transport("v2").task_log("etl", "dj_1", "load", 1)
    assert not chunk.truncated
    assert len(chunk.lines) == 10


def test_any_other_answer_larger_than_the_cap_is_a_bad_response(
    httpx_mock: HTTPXMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_client.transports import _http

    monkeypatch.setattr(_http, "MAX_ANSWER_BYTES", 10_000)
    expect_token(httpx_mock)
    httpx_mock.add_response(
        url=any_query(api_url("v2", "/dags/etl/dagRuns/dj_1")),
        json={**run_json("v2"), "note": "n" * 20_000},
    )
    with pytest.raises(BadResponse, match="larger than"):
        make_transport("v2").get_run("etl", "dj_1")


# --- defect 2: no secret in an error, nor in a frame's variables -----------------------------------


def test_a_token_refusal_echoing_the_password_does_not_carry_it(httpx_mock: HTTPXMock) -> None:
    echo = {"detail": f"Rejected request body: {{'username': 'admin', 'password': '{PASSWORD}'}}"}
    httpx_mock.add_response(method="POST", url=f"{BASE}/auth/token", status_code=400, json=echo)
    with pytest.raises(AirflowError) as caught:
        make_transport("v2").get_run("etl", "dj_1")
    error = caught.value
    for text in (str(error), error.detail, repr(error.args), json.dumps(error.body, default=str)):
        assert PASSWORD not in text
    assert "Rejected request body" in error.detail  # the reason stays readable


def test_an_error_body_echoing_the_token_or_password_does_not_carry_them(httpx_mock: HTTPXMock) -> None:
    expect_token(httpx_mock)
    echo = {"detail": f"bad header Bearer {TOKEN}", "password": PASSWORD, "nested": [f"x{PASSWORD}y"]}
    httpx_mock.add_response(url=any_query(api_url("v2", "/dags/etl")), status_code=400, json=echo)
    with pytest.raises(AirflowError) as caught:
        make_transport("v2").get_dag("etl")
    error = caught.value
    dumped = f"{error} {error.detail} {error.args} {json.dumps(error.body)}"
    assert TOKEN not in dumped
    assert PASSWORD not in dumped


def test_a_static_token_echoed_in_a_text_body_is_hidden(httpx_mock: HTTPXMock) -> None:
    static = "static-token-0123456789"
    httpx_mock.add_response(
        url=any_query(api_url("v2", "/dags/etl")), status_code=502, text=f"upstream saw Bearer {static}"
    )
    transport = make_transport("v2", USERNAME="", PASSWORD="", TOKEN=static, RETRIES=0)
    with pytest.raises(AirflowError) as caught:
        transport.get_dag("etl")
    assert static not in f"{caught.value} {caught.value.body}"


def _report(exc: BaseException, *, debug: bool) -> str:
    with override_settings(DEBUG=debug):
        reporter = ExceptionReporter(None, type(exc), exc, exc.__traceback__)
        return reporter.get_traceback_text() + reporter.get_traceback_html()


@pytest.mark.parametrize("debug", [False, True])
def test_an_error_report_over_a_transport_frame_shows_no_credentials(
    httpx_mock: HTTPXMock, debug: bool
) -> None:
    expect_token(httpx_mock)
    httpx_mock.add_exception(
        RuntimeError("boom inside the request"), url=any_query(api_url("v2", "/dags/etl"))
    )
    with pytest.raises(RuntimeError) as caught:
        make_transport("v2").get_dag("etl")
    report = _report(caught.value, debug=debug)
    assert "_send" in report  # the transport's frames are in the report
    assert TOKEN not in report
    assert PASSWORD not in report


@pytest.mark.parametrize("debug", [False, True])
def test_an_error_report_during_the_token_fetch_shows_no_password(httpx_mock: HTTPXMock, debug: bool) -> None:
    httpx_mock.add_exception(RuntimeError("boom"), url=f"{BASE}/auth/token")
    with pytest.raises(RuntimeError) as caught:
        make_transport("v2").get_dag("etl")
    report = _report(caught.value, debug=debug)
    assert "_fetch_token" in report
    assert PASSWORD not in report


@pytest.mark.parametrize("debug", [False, True])
def test_an_error_report_with_basic_auth_shows_no_password(httpx_mock: HTTPXMock, debug: bool) -> None:
    import base64

    httpx_mock.add_exception(RuntimeError("boom"), url=any_query(api_url("v1", "/dags/etl")))
    with pytest.raises(RuntimeError) as caught:
        make_transport("v1").get_dag("etl")
    report = _report(caught.value, debug=debug)
    pair = base64.b64encode(f"admin:{PASSWORD}".encode()).decode()
    assert pair not in report
    assert PASSWORD not in report


# --- defect 5: decoding and URL errors are the package's own ---------------------------------------


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def test_deeply_nested_json_is_a_bad_response(httpx_mock: HTTPXMock) -> None:
    expect_token(httpx_mock)
    httpx_mock.add_response(url=any_query(api_url("v2", "/dags/etl/dagRuns/dj_1")), content=nested(200_000))
    with pytest.raises(BadResponse):
        make_transport("v2").get_run("etl", "dj_1")


def test_deeply_nested_json_in_an_error_body_is_still_the_status_error(httpx_mock: HTTPXMock) -> None:
    expect_token(httpx_mock)
    httpx_mock.add_response(
        url=any_query(api_url("v2", "/dags/etl")), status_code=400, content=nested(200_000)
    )
    with pytest.raises(BadRequest):
        make_transport("v2").get_dag("etl")


@override_settings(AIRFLOW_MAX_LOG_BYTES=10_000_000)
def test_deeply_nested_log_is_a_bad_response(httpx_mock: HTTPXMock) -> None:
    expect_token(httpx_mock)
    httpx_mock.add_response(
        url=any_query(api_url("v2", LOG)), content=b'{"content": ' + nested(200_000) + b"}"
    )
    with pytest.raises(BadResponse):
        make_transport("v2").task_log("etl", "dj_1", "load", 1)


def test_error_detail_of_a_deep_structure_is_text() -> None:
    deep: Any = []
    for _ in range(sys.getrecursionlimit() + 100):
        deep = [deep]
    assert isinstance(payloads.error_detail({"x": deep}), str)
    assert isinstance(payloads.error_detail(nested(100_000)), str)


def test_a_url_too_long_to_build_is_a_bad_request(httpx_mock: HTTPXMock) -> None:
    expect_token(httpx_mock, optional=True)
    with pytest.raises(BadRequest):
        make_transport("v2").task_log("etl", "dj_1", "load", 1, continuation_token="t" * 70_000)


def test_a_url_httpx_refuses_is_a_bad_request(httpx_mock: HTTPXMock) -> None:
    transport = make_transport("v2", API_VERSION="v2")
    expect_token(httpx_mock)
    with pytest.raises(BadRequest):
        transport.http.request("GET", "/dags/" + "a" * 70_000)


# --- defect 6: paging that trusts Airflow -----------------------------------------------------------


def ti_json(task_id: str) -> dict[str, Any]:
    return {"task_id": task_id, "state": "success", "try_number": 1, "map_index": -1}


def test_a_listing_that_ignores_offset_stops_at_the_repeated_page(httpx_mock: HTTPXMock) -> None:
    expect_token(httpx_mock)
    page = {"task_instances": [ti_json(f"t{n}") for n in range(100)], "total_entries": 1_000_000}
    httpx_mock.add_response(
        url=any_query(api_url("v2", "/dags/etl/dagRuns/dj_1/taskInstances")), json=page, is_reusable=True
    )
    tasks = make_transport("v2").task_instances("etl", "dj_1")
    assert [task.task_id for task in tasks] == [f"t{n}" for n in range(100)]
    assert len(httpx_mock.get_requests()) == 1 + 2  # the token, the page, the same page again


def test_a_listing_without_end_stops_at_the_page_cap() -> None:
    calls = []

    def fetch(offset: int, size: int) -> tuple[list[TaskInstance], int]:
        calls.append(offset)
        return [TaskInstance(task_id=f"t{offset + n}", state=None, try_number=1) for n in range(size)], 10**9

    items = list(payloads.follow_pages(fetch, None, 100))
    assert len(calls) == payloads.MAX_PAGES
    assert len(items) == payloads.MAX_PAGES * 100


# --- defect 13: whole continuation tokens, escaped dot segments ------------------------------------


def test_a_long_continuation_token_is_kept_whole() -> None:
    token = "t" * 5_000
    chunk = payloads.parse_log({"content": ["a"], "continuation_token": token}, "v2")
    assert chunk.continuation_token == token


def test_a_continuation_token_beyond_the_maximum_is_a_bad_response() -> None:
    with pytest.raises(BadResponse):
        payloads.parse_log({"content": ["a"], "continuation_token": "t" * 100_000}, "v2")


def test_a_long_token_travels_back_to_airflow_whole(httpx_mock: HTTPXMock) -> None:
    token = "t" * 5_000
    expect_token(httpx_mock)
    httpx_mock.add_response(
        url=any_query(api_url("v2", LOG)), json={"content": ["b"], "continuation_token": None}
    )
    make_transport("v2").task_log("etl", "dj_1", "load", 1, continuation_token=token)
    request = httpx_mock.get_requests()[-1]
    assert request.url.params["token"] == token


@pytest.mark.parametrize("segment", [".", ".."])
def test_dot_segments_do_not_collapse_the_path(httpx_mock: HTTPXMock, segment: str) -> None:
    expect_token(httpx_mock)
    httpx_mock.add_response(json=run_json("v2"), is_optional=True)
    make_transport("v2").get_run(segment, segment)
    request = httpx_mock.get_requests()[-1]
    escaped = segment.replace(".", "%2E")
    assert request.url.raw_path.decode() == f"/api/v2/dags/{escaped}/dagRuns/{escaped}"
    assert payloads.api_segment(segment) == escaped
    assert "/.." not in payloads.log_url("https://ui", "..", "..", "..", "v2")
    assert payloads.api_segment("a.b") == "a.b"  # only whole dot segments are escaped


def test_a_body_trickling_slower_than_the_deadline_is_a_timeout(httpx_mock: HTTPXMock) -> None:
    import time

    from pytest_httpx import IteratorStream

    from airflow_client.exceptions import AirflowTimeout

    def trickle() -> Any:
        for _ in range(50):
            time.sleep(0.02)
            yield b" "

    httpx_mock.add_response(url=any_query(api_url("v2", "/dags/etl")), stream=IteratorStream(trickle()))
    transport = make_transport("v2", USERNAME="", PASSWORD="", TOKEN="static-token-1234", TIMEOUT=0.1)
    started = time.monotonic()
    with pytest.raises(AirflowTimeout, match="did not finish its answer"):
        transport.get_dag("etl")
    assert time.monotonic() - started < 0.6  # 3 x TIMEOUT, not the 1 s the whole body takes
