"""Airflow JSON (v1 and v2 shapes) -> dataclasses, error details, status mapping and UI links."""

from __future__ import annotations

import base64
import json
import time
import zlib
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from airflow_client.exceptions import (
    AirflowUnavailable,
    AuthenticationFailed,
    BadRequest,
    BadResponse,
    Conflict,
    NotFound,
)
from airflow_client.transports import payloads
from airflow_client.transports.base import LogChunk, LogLine

UTC = timezone.utc

V1_RUN: dict[str, Any] = {
    "dag_run_id": "dj_abc",
    "dag_id": "index_finding_aid",
    "state": "running",
    "run_type": "manual",
    "execution_date": "2025-03-01T10:00:00+00:00",
    "logical_date": None,
    "external_trigger": True,
    "start_date": "2025-03-01T10:00:01.123456+00:00",
    "end_date": None,
    "conf": {"finding_aid_id": 7},
    "note": "from Django",
}

V2_RUN: dict[str, Any] = {
    "dag_run_id": "dj_def",
    "dag_id": "harvest",
    "state": "success",
    "run_type": "manual",
    "triggered_by": "rest_api",
    "triggering_user_name": "admin",
    "logical_date": None,
    "run_after": "2025-03-01T10:00:00Z",
    "queued_at": "2025-03-01T10:00:00.5Z",
    "start_date": "2025-03-01T10:00:02Z",
    "end_date": "2025-03-01T10:05:00Z",
    "conf": None,
    "note": None,
    "dag_versions": [],
}


def itsdangerous_token(metadata: dict[str, object], *, compress: bool = False) -> str:
    """A token shaped like Airflow 2's (itsdangerous URLSafeSerializer, signature is junk)."""
    raw = json.dumps(metadata, separators=(",", ":")).encode()
    prefix = ""
    if compress:
        raw, prefix = zlib.compress(raw), "."
    return prefix + base64.urlsafe_b64encode(raw).decode().rstrip("=") + ".c2lnbmF0dXJl"


class TestParseDatetime:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("2025-03-01T10:00:00Z", datetime(2025, 3, 1, 10, tzinfo=UTC)),
            ("2025-03-01T10:00:00+00:00", datetime(2025, 3, 1, 10, tzinfo=UTC)),
            ("2025-03-01T12:00:00+02:00", datetime(2025, 3, 1, 10, tzinfo=UTC)),
            ("2025-03-01T10:00:00.5Z", datetime(2025, 3, 1, 10, 0, 0, 500000, tzinfo=UTC)),
            ("2025-03-01T10:00:00", datetime(2025, 3, 1, 10, tzinfo=UTC)),  # naive = UTC
        ],
    )
    def test_reads_airflow_dates_as_aware(self, text: str, expected: datetime) -> None:
        parsed = payloads.parse_datetime(text)
        assert parsed == expected
        assert parsed is not None
        assert parsed.utcoffset() is not None

    def test_datetime_passes_through_as_aware(self) -> None:
        naive = datetime(2025, 3, 1, 10)
        assert payloads.parse_datetime(naive) == naive.replace(tzinfo=UTC)

    def test_none_and_empty_are_none(self) -> None:
        assert payloads.parse_datetime(None) is None
        assert payloads.parse_datetime("") is None

    @pytest.mark.parametrize("junk", ["yesterday", "2025-13-45T99:00:00", 12])
    def test_junk_is_bad_response(self, junk: object) -> None:
        with pytest.raises(BadResponse, match="unreadable date"):
            payloads.parse_datetime(junk)


class TestParseDagRun:
    def test_v1_run_falls_back_to_execution_date(self) -> None:
        run = payloads.parse_dag_run(V1_RUN, "v1")
        assert run.dag_id == "index_finding_aid"
        assert run.run_id == "dj_abc"
        assert run.state == "running"
        assert run.logical_date == datetime(2025, 3, 1, 10, tzinfo=UTC)
        assert run.start_date == datetime(2025, 3, 1, 10, 0, 1, 123456, tzinfo=UTC)
        assert run.end_date is None
        assert run.conf == {"finding_aid_id": 7}
        assert run.note == "from Django"
        assert run.triggered_by is None
        assert run.run_after is None
        assert not run.finished

    def test_v2_run_keeps_airflow3_fields(self) -> None:
        run = payloads.parse_dag_run(V2_RUN, "v2")
        assert run.triggered_by == "rest_api"
        assert run.triggering_user == "admin"
        assert run.logical_date is None
        assert run.run_after == datetime(2025, 3, 1, 10, tzinfo=UTC)
        assert run.queued_at == datetime(2025, 3, 1, 10, 0, 0, 500000, tzinfo=UTC)
        assert run.end_date - run.start_date == timedelta(minutes=4, seconds=58)  # type: ignore[operator]
        assert run.conf == {}  # v2 may send null
        assert run.note is None
        assert run.finished

    @pytest.mark.parametrize("missing", ["dag_run_id", "dag_id", "state"])
    def test_missing_identity_is_bad_response(self, missing: str) -> None:
        data = {k: v for k, v in V2_RUN.items() if k != missing}
        with pytest.raises(BadResponse, match=missing):
            payloads.parse_dag_run(data, "v2")

    def test_not_an_object_is_bad_response(self) -> None:
        with pytest.raises(BadResponse, match="not a JSON object"):
            payloads.parse_dag_run(["dj_abc"], "v1")

    @pytest.mark.parametrize(("key", "limit"), [("state", 20), ("dag_run_id", 250), ("dag_id", 250)])
    def test_values_too_long_to_store_are_bad_response(self, key: str, limit: int) -> None:
        with pytest.raises(BadResponse, match=f"longer than {limit}"):
            payloads.parse_dag_run({**V2_RUN, key: "x" * (limit + 1)}, "v2")

    def test_long_optional_values_are_cut_to_what_is_stored(self) -> None:
        run = payloads.parse_dag_run({**V2_RUN, "run_type": "m" * 80, "triggered_by": "t" * 80}, "v2")
        assert (len(run.run_type), len(run.triggered_by or "")) == (50, 50)

    def test_run_list_returns_runs_and_total(self) -> None:
        runs, total = payloads.parse_run_list({"dag_runs": [V2_RUN, V2_RUN], "total_entries": 9}, "v2")
        assert [r.run_id for r in runs] == ["dj_def", "dj_def"]
        assert total == 9

    def test_run_list_without_runs_is_bad_response(self) -> None:
        with pytest.raises(BadResponse, match="dag_runs"):
            payloads.parse_run_list({"total_entries": 0}, "v1")


class TestParseDag:
    def test_paused_v1_dag(self) -> None:
        dag = payloads.parse_dag({"dag_id": "d", "is_paused": True, "is_active": True})
        assert dag.is_paused
        assert dag.is_active

    def test_stale_v2_dag_is_inactive(self) -> None:
        dag = payloads.parse_dag({"dag_id": "d", "is_paused": False, "is_stale": True})
        assert not dag.is_paused
        assert not dag.is_active


class TestTriggerBody:
    def test_v1_omits_logical_date(self) -> None:
        body = payloads.trigger_body("dj_1", {"a": 1}, None, "v1")
        assert body == {"dag_run_id": "dj_1", "conf": {"a": 1}}

    def test_v2_sends_logical_date_null_and_note(self) -> None:
        body = payloads.trigger_body("dj_1", {}, "why", "v2")
        assert body == {"dag_run_id": "dj_1", "conf": {}, "logical_date": None, "note": "why"}
        assert "logical_date" in json.loads(json.dumps(body))


class TestClearBodies:
    def test_v1_run_clear_cannot_say_only_failed(self) -> None:
        assert payloads.clear_run_body(False, "v1") == {"dry_run": False}
        with pytest.raises(ValueError, match="clear_task_instances_body"):
            payloads.clear_run_body(True, "v1")

    def test_v2_clear_task_instances_has_no_v1_only_keys(self) -> None:
        # Airflow 3's body model forbids unknown keys (422).
        body = payloads.clear_task_instances_body("dj_1", False, "v2")
        assert body == {"dry_run": False, "dag_run_id": "dj_1", "only_failed": False, "reset_dag_runs": True}


class TestTaskInstances:
    def test_parses_a_page(self) -> None:
        page = {
            "task_instances": [
                {
                    "task_id": "extract",
                    "state": "success",
                    "try_number": 2,
                    "map_index": -1,
                    "start_date": "2025-03-01T10:00:00Z",
                    "end_date": "2025-03-01T10:00:30Z",
                    "duration": 30,
                    "operator": "PythonOperator",
                },
                {"task_id": "load", "state": None, "try_number": 0, "map_index": 3},
                {"task_id": "old", "state": "none"},
            ],
            "total_entries": 3,
        }
        tis, total = payloads.parse_task_instances(page)
        assert total == 3
        first, second, third = tis
        assert (first.task_id, first.state, first.try_number, first.duration) == (
            "extract",
            "success",
            2,
            30.0,
        )
        assert first.operator == "PythonOperator"
        assert (second.state, second.map_index, second.start_date) == (None, 3, None)
        assert (third.state, third.try_number, third.map_index) == (None, 0, -1)

    def test_missing_list_is_bad_response(self) -> None:
        with pytest.raises(BadResponse, match="task_instances"):
            payloads.parse_task_instances({})


class TestParseLog:
    def test_v1_repr_content_becomes_lines(self) -> None:
        text = (
            "*** Found local files:\n"
            "[2025-03-01T10:00:00.123+0000] {taskinstance.py:12} INFO - Starting attempt 1\n"
            "[2025-03-01T10:00:01.000+0000] {logging_mixin.py:3} WARNING - careful"
        )
        content = repr([("worker-1", text)])
        chunk = payloads.parse_log(
            {
                "content": content,
                "continuation_token": itsdangerous_token({"end_of_log": False, "log_pos": 3}),
            },
            "v1",
        )
        assert [line.text for line in chunk.lines] == text.splitlines()
        assert chunk.lines[0].level is None
        assert chunk.lines[1].level == "INFO"
        assert chunk.lines[1].timestamp == datetime(2025, 3, 1, 10, 0, 0, 123000, tzinfo=UTC)
        assert chunk.lines[2].level == "WARNING"
        assert chunk.continuation_token is not None  # the task may still write more

    @pytest.mark.parametrize("compress", [False, True])
    def test_v1_token_dropped_at_end_of_log(self, compress: bool) -> None:
        token = itsdangerous_token({"end_of_log": True, "log_pos": 99, "pad": "x" * 50}, compress=compress)
        chunk = payloads.parse_log({"content": "[('h', 'done')]", "continuation_token": token}, "v1")
        assert [line.text for line in chunk.lines] == ["done"]
        assert chunk.continuation_token is None

    def test_v1_token_dropped_when_nothing_new(self) -> None:
        chunk = payloads.parse_log({"content": "[]", "continuation_token": "opaque.sig"}, "v1")
        assert chunk.lines == ()
        assert chunk.continuation_token is None

    def test_v1_plain_string_content_is_kept(self) -> None:
        chunk = payloads.parse_log({"content": "no repr here\nsecond", "continuation_token": None}, "v1")
        assert [line.text for line in chunk.lines] == ["no repr here", "second"]

    def test_v2_structured_events(self) -> None:
        content = [
            {"event": "::group::Log message source details", "sources": ["/logs/a.log"]},
            {"event": "::endgroup::"},
            {"timestamp": "2025-03-01T10:00:00.5Z", "level": "info", "event": "Task started", "logger": "x"},
            {
                "timestamp": "2025-03-01T10:00:02Z",
                "level": "error",
                "event": "Task failed",
                "error_detail": [{"exc_type": "ValueError", "exc_value": "bad id", "frames": []}],
            },
            "a plain line",
        ]
        chunk = payloads.parse_log({"content": content, "continuation_token": "tok"}, "v2")
        assert [line.text for line in chunk.lines] == [
            "Log message source details",
            "Task started",
            "Task failed",
            "ValueError: bad id",
            "a plain line",
        ]
        assert chunk.lines[1].level == "INFO"
        assert chunk.lines[1].timestamp == datetime(2025, 3, 1, 10, 0, 0, 500000, tzinfo=UTC)
        assert chunk.lines[3].level == "ERROR"
        assert chunk.continuation_token == "tok"

    def test_v1_odd_content(self) -> None:
        assert payloads.parse_log({"content": None, "continuation_token": None}, "v1").lines == ()
        chunk = payloads.parse_log({"content": "[1, 2]", "continuation_token": None}, "v1")
        assert [line.text for line in chunk.lines] == ["[1, 2]"]
        chunk = payloads.parse_log({"content": "[not-a-date] {x.py:1} INFO - hi"}, "v1")
        assert (chunk.lines[0].level, chunk.lines[0].timestamp) == ("INFO", None)

    def test_v2_odd_content(self) -> None:
        assert payloads.parse_log({"content": None}, "v2").lines == ()
        chunk = payloads.parse_log({"content": "one\ntwo"}, "v2")
        assert [line.text for line in chunk.lines] == ["one", "two"]
        chunk = payloads.parse_log({"content": [42, {"event": "e", "timestamp": "soon", "level": 5}]}, "v2")
        assert chunk.lines == (LogLine(text="e"),)

    def test_v2_null_token_means_end(self) -> None:
        chunk = payloads.parse_log({"content": [], "continuation_token": None}, "v2")
        assert chunk == LogChunk(lines=(), continuation_token=None)


class TestErrors:
    @pytest.mark.parametrize(
        ("body", "expected"),
        [
            (
                {
                    "type": "https://x",
                    "title": "DAGRun ID exists",
                    "status": 409,
                    "detail": "DAGRun dj_1 exists",
                },
                "DAGRun dj_1 exists",
            ),
            ({"title": "Unauthorized", "status": 401}, "Unauthorized"),
            ({"detail": "Dag with dag_id: 'x' not found"}, "Dag with dag_id: 'x' not found"),
            (
                {"detail": [{"type": "missing", "loc": ["body", "logical_date"], "msg": "Field required"}]},
                "logical_date: Field required",
            ),
            (
                {"detail": {"reason": "Unique constraint violation", "message": "already exists"}},
                "already exists",
            ),
            ({"detail": {"reason": "Unique constraint violation"}}, "Unique constraint violation"),
            ('{"detail": "as text"}', "as text"),
            (b"<html>  Bad   gateway </html>", "<html> Bad gateway </html>"),
            ({"detail": ["plain", {"msg": "no location"}]}, "plain; no location"),
            ({"detail": {"code": 7}}, '{"code": 7}'),
            ({"error": "/api/v1 has been removed in Airflow 3"}, "/api/v1 has been removed in Airflow 3"),
            ({"unexpected": 1}, '{"unexpected": 1}'),
            (None, ""),
            (["odd"], '["odd"]'),
        ],
    )
    def test_error_detail(self, body: object, expected: str) -> None:
        assert payloads.error_detail(body) == expected

    def test_long_detail_is_shortened(self) -> None:
        assert len(payloads.error_detail("x" * 5000)) == 500

    @pytest.mark.parametrize(
        ("status", "cls"),
        [
            (401, AuthenticationFailed),
            (403, AuthenticationFailed),
            (404, NotFound),
            (409, Conflict),
            (400, BadRequest),
            (422, BadRequest),
            (429, AirflowUnavailable),
            (500, AirflowUnavailable),
            (503, AirflowUnavailable),
            (418, BadResponse),
        ],
    )
    def test_error_for_status(self, status: int, cls: type[Exception]) -> None:
        error = payloads.error_for_status(status, {"detail": "nope"}, action="trigger d")
        assert type(error) is cls
        assert str(error) == "trigger d: nope"
        assert error.status_code == status
        assert error.body == {"detail": "nope"}

    def test_error_without_body_names_the_status(self) -> None:
        assert payloads.error_for_status(502, None).detail == "HTTP 502"


class TestVersion:
    @pytest.mark.parametrize(("text", "api"), [("2.10.3", "v1"), ("3.0.6", "v2"), ("3.2.1", "v2")])
    def test_version_from_string(self, text: str, api: str) -> None:
        assert payloads.version_from_string(text) == api

    def test_airflow_1_is_unsupported(self) -> None:
        with pytest.raises(BadResponse, match="Unsupported"):
            payloads.version_from_string("1.10.15")


class TestLinks:
    def test_v2_run_url(self) -> None:
        url = payloads.run_url(
            "https://af.example.org/", "harvest", "manual__2025-01-01T00:00:00+00:00", "v2"
        )
        assert url == "https://af.example.org/dags/harvest/runs/manual__2025-01-01T00:00:00+00:00"

    def test_v1_run_url_is_the_grid(self) -> None:
        url = payloads.run_url("https://af.example.org", "harvest", "a+b", "v1")
        assert url == "https://af.example.org/dags/harvest/grid?dag_run_id=a%2Bb"

    def test_v2_log_url_with_map_index_and_try(self) -> None:
        url = payloads.log_url("https://af", "d", "r", "t", "v2", try_number=2, map_index=4)
        assert url == "https://af/dags/d/runs/r/tasks/t/mapped/4?try_number=2"

    def test_v2_log_url_plain(self) -> None:
        assert payloads.log_url("https://af", "d", "r", "t", "v2") == "https://af/dags/d/runs/r/tasks/t"

    def test_v1_log_url(self) -> None:
        url = payloads.log_url("https://af", "d", "r", "t", "v1", try_number=1, map_index=0)
        assert url == "https://af/dags/d/grid?dag_run_id=r&task_id=t&map_index=0&tab=logs"

    def test_path_segment_escapes_slashes_and_spaces_only(self) -> None:
        assert payloads.link_segment("a b/c:d+e~f") == "a%20b%2Fc:d+e~f"

    def test_api_segment_escapes_colon_and_plus_too(self) -> None:
        # Request paths escape everything Airflow decodes; only "every DAG" (~) stays.
        assert payloads.api_segment("a b/c:d+e~f") == "a%20b%2Fc%3Ad%2Be~f"
        assert payloads.api_segment("~") == "~"


@pytest.fixture
def local_time_is_not_utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "IST-5:30")  # a POSIX rule: no tz database needed
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


class TestQueryDatetime:
    @pytest.mark.usefixtures("local_time_is_not_utc")
    def test_naive_is_utc_not_local_time(self) -> None:
        assert payloads.query_datetime(datetime(2026, 1, 2, 3, 4, 5)) == "2026-01-02T03:04:05Z"

    def test_aware_is_converted_to_utc_with_z(self) -> None:
        since = datetime(2026, 1, 2, 3, 4, 5, 600, tzinfo=timezone(timedelta(hours=-2)))
        assert payloads.query_datetime(since) == "2026-01-02T05:04:05.000600Z"


class TestFollowPages:
    @staticmethod
    def pages(items: list[int], total: int | None = None) -> tuple[list[tuple[int, int]], Any]:
        """A fetch over ``items`` that records what it was asked."""
        asked: list[tuple[int, int]] = []

        def fetch(offset: int, size: int) -> tuple[list[int], int]:
            asked.append((offset, size))
            return items[offset : offset + size], len(items) if total is None else total

        return asked, fetch

    def test_reads_every_page_without_limit(self) -> None:
        asked, fetch = self.pages(list(range(5)))
        assert list(payloads.follow_pages(fetch, None, 2)) == [0, 1, 2, 3, 4]
        assert asked == [(0, 2), (2, 2), (4, 2)]

    def test_last_page_asks_only_for_what_the_limit_leaves(self) -> None:
        asked, fetch = self.pages(list(range(10)))
        assert list(payloads.follow_pages(fetch, 5, 2)) == [0, 1, 2, 3, 4]
        assert asked == [(0, 2), (2, 2), (4, 1)]

    def test_an_empty_page_ends_a_growing_listing(self) -> None:
        asked, fetch = self.pages([0, 1, 2], total=50)
        assert list(payloads.follow_pages(fetch, None, 2)) == [0, 1, 2]
        assert asked == [(0, 2), (2, 2), (3, 2)]

    def test_is_lazy(self) -> None:
        asked, fetch = self.pages(list(range(10)))
        pages = payloads.follow_pages(fetch, None, 2)
        assert asked == []
        assert next(pages) == 0
        assert asked == [(0, 2)]
