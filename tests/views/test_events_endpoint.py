"""The events endpoint: what Airflow's callbacks push, as the site sees it."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from airflow_client.models import JobEvent, JobRun
from airflow_client.states import RunState
from tests.events import SECRET, encode, event, signed
from tests.factories import make_run

URL = "/airflow/events/"


def post(
    client: Client, data: Any, *, headers: dict[str, str] | None = None, raw: bytes | None = None
) -> Any:
    body = raw if raw is not None else encode(data)
    return client.post(
        URL, body, content_type="application/json", headers=signed(body) if headers is None else headers
    )


def test_the_url_name_is_public() -> None:
    assert reverse("airflow_client:events") == URL


@pytest.mark.django_db
def test_a_success_pushed_for_a_run_never_seen_records_it_on_its_record(
    client: Client, finding_aid: Any, changes: list[Any]
) -> None:
    response = post(client, event("dag_success", conf={"finding_aid_id": finding_aid.pk}))

    assert response.status_code == 200
    assert response.json()["status"] == "stored"
    run = JobRun.objects.for_object(finding_aid).get()
    assert (run.dag_id, run.dag_run_id, run.state) == ("index_finding_aid", "manual__1", RunState.SUCCESS)
    assert run.end_date is not None
    assert run.pushed_at is not None
    assert [event.kind for event in run.events.all()] == ["dag_success"]
    assert changes == [(None, RunState.SUCCESS)]


@pytest.mark.django_db
def test_task_events_move_the_run_and_count_its_tasks(
    client: Client, finding_aid: Any, changes: list[Any]
) -> None:
    conf = {"finding_aid_id": finding_aid.pk}
    make_run(finding_aid, dag_run_id="manual__1", state=RunState.QUEUED, conf=conf)

    post(client, event("task_start", conf=conf, task_id="fetch"))
    run = JobRun.objects.get()
    assert run.state == RunState.RUNNING
    assert (run.progress.done, run.progress.total, run.progress.running_task_id) == (0, 3, "fetch")

    post(client, event("task_success", conf=conf, task_id="fetch"))
    post(client, event("task_start", conf=conf, task_id="index"))
    run.refresh_from_db()
    assert (run.progress.done, run.progress.total, run.progress.running_task_id) == (1, 3, "index")
    assert changes == [(RunState.QUEUED, RunState.RUNNING)]


@pytest.mark.django_db
def test_a_failure_names_the_failed_task(client: Client, finding_aid: Any, changes: list[Any]) -> None:
    conf = {"finding_aid_id": finding_aid.pk}
    post(client, event("task_start", conf=conf, task_id="index", try_number=2))
    post(client, event("task_failure", conf=conf, task_id="index", try_number=2, error="Solr said no"))
    post(client, event("dag_failure", conf=conf))

    run = JobRun.objects.get()
    assert run.state == RunState.FAILED
    assert (run.failed_task_id, run.failed_try_number) == ("index", 2)
    failure = run.events.get(kind="task_failure")
    assert failure.error == "Solr said no"
    assert changes == [(None, RunState.RUNNING), (RunState.RUNNING, RunState.FAILED)]


@pytest.mark.django_db
def test_a_replayed_event_changes_nothing(client: Client, finding_aid: Any, changes: list[Any]) -> None:
    sent = event("dag_success", conf={"finding_aid_id": finding_aid.pk})
    post(client, sent)
    run = JobRun.objects.get()
    JobRun.objects.filter(pk=run.pk).update(note="kept")

    response = post(client, sent)

    assert response.status_code == 200
    assert response.json()["status"] == "duplicate"
    assert JobEvent.objects.count() == 1
    assert JobRun.objects.get().note == "kept"
    assert len(changes) == 1


@pytest.mark.django_db
def test_a_late_task_event_does_not_reopen_a_finished_run(client: Client, finding_aid: Any) -> None:
    conf = {"finding_aid_id": finding_aid.pk}
    ended = datetime.now(timezone.utc)
    make_run(finding_aid, dag_run_id="manual__1", state=RunState.SUCCESS, conf=conf, end_date=ended)

    post(client, event("task_start", conf=conf, task_id="fetch", sent_at=ended - timedelta(seconds=5)))

    assert JobRun.objects.get().state == RunState.SUCCESS


@pytest.mark.django_db
def test_a_task_starting_after_the_run_ended_reopens_it(client: Client, finding_aid: Any) -> None:
    """Cleared in Airflow: the run goes again."""
    conf = {"finding_aid_id": finding_aid.pk}
    ended = datetime.now(timezone.utc) - timedelta(minutes=1)
    make_run(finding_aid, dag_run_id="manual__1", state=RunState.FAILED, conf=conf, end_date=ended)

    post(client, event("task_start", conf=conf, task_id="fetch", try_number=2))

    run = JobRun.objects.get()
    assert (run.state, run.end_date) == (RunState.RUNNING, None)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("dag_id", "conf", "why"),
    [
        ("not_registered", {"finding_aid_id": 1}, "no Job is registered"),
        ("index_finding_aid", {"finding_aid_id": 999999}, "names no record"),
        ("index_finding_aid", {}, "names no record"),
    ],
)
def test_a_run_of_no_record_is_answered_202_and_kept_nowhere(
    client: Client, finding_aid: Any, dag_id: str, conf: dict[str, Any], why: str, caplog: Any
) -> None:
    response = post(client, event("dag_success", dag_id=dag_id, conf=conf))

    assert response.status_code == 202
    assert response.json()["status"] == "ignored"
    assert not JobRun.objects.exists()
    assert not JobEvent.objects.exists()
    assert why in caplog.text or why in response.json()["detail"]


@pytest.mark.django_db
def test_custom_events_go_on_the_timeline_with_their_payload(client: Client, finding_aid: Any) -> None:
    conf = {"finding_aid_id": finding_aid.pk}
    post(client, event("task_start", conf=conf, task_id="fetch"))
    post(client, event("pages.fetched", conf=conf, task_id="fetch", payload={"pages": 500}))

    custom = JobEvent.objects.get(kind="pages.fetched")
    assert custom.payload == {"pages": 500}
    assert custom.job_run.state == RunState.RUNNING


@pytest.mark.django_db
def test_csrf_is_not_asked_of_airflow(finding_aid: Any) -> None:
    client = Client(enforce_csrf_checks=True)
    response = post(client, event("dag_success", conf={"finding_aid_id": finding_aid.pk}))
    assert response.status_code == 200


# --- refused: nothing stored -------------------------------------------------------------------


def _nothing_stored() -> bool:
    return not JobRun.objects.exists() and not JobEvent.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="unsigned"),
        pytest.param({"X-Airflow-Client-Timestamp": str(int(time.time()))}, id="no-signature"),
        pytest.param("wrong-secret", id="wrong-secret"),
        pytest.param("stale", id="stale"),
        pytest.param("future", id="from-the-future"),
        pytest.param("other-body", id="signature-of-another-body"),
        pytest.param("bad-timestamp", id="timestamp-not-a-number"),
    ],
)
def test_a_request_not_signed_right_is_403_and_stores_nothing(
    client: Client, finding_aid: Any, headers: Any
) -> None:
    body = encode(event("dag_success", conf={"finding_aid_id": finding_aid.pk}))
    if headers == "wrong-secret":
        headers = signed(body, secret="another-secret-of-some-length")
    elif headers == "stale":
        headers = signed(body, timestamp=time.time() - 301)
    elif headers == "future":
        headers = signed(body, timestamp=time.time() + 301)
    elif headers == "other-body":
        headers = signed(body + b" ")
    elif headers == "bad-timestamp":
        headers = signed(body, timestamp=time.time())
        headers = {**headers, "X-Airflow-Client-Timestamp": "soon"}

    response = post(client, None, raw=body, headers=headers)

    assert response.status_code == 403
    assert _nothing_stored()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"\xff\xfe",
        b"[]",
        b'{"version": 1}',
        encode({**event("dag_success"), "version": 2}),
        encode({**event("dag_success"), "kind": "DROP TABLE"}),
        encode({**event("dag_success"), "run": {"dag_id": "index_finding_aid"}}),
        encode({**event("dag_success"), "sent_at": "yesterday"}),
        encode(event("task_start")),  # a task event without its task
        encode(event("dag_success", conf={"n": float("nan")})),
        encode(event("dag_success", run_id="x" * 251)),
        encode(event("task_start", task_id="fetch", map_index=True)),
    ],
)
def test_garbage_is_400_and_stores_nothing(client: Client, body: bytes) -> None:
    response = post(client, None, raw=body)

    assert response.status_code == 400
    assert response.json()["status"] == "refused"
    assert _nothing_stored()


@pytest.mark.django_db
def test_a_body_over_the_limit_is_413(client: Client, finding_aid: Any, settings: Any) -> None:
    settings.AIRFLOW_EVENTS_MAX_BYTES = 2000
    body = encode(event("dag_success", conf={"finding_aid_id": finding_aid.pk}, payload={"x": "y" * 2000}))

    response = post(client, None, raw=body)

    assert response.status_code == 413
    assert _nothing_stored()


@pytest.mark.django_db
def test_the_endpoint_is_off_without_a_secret(client: Client, finding_aid: Any, settings: Any) -> None:
    settings.AIRFLOW_EVENTS_SECRET = None

    response = post(client, event("dag_success", conf={"finding_aid_id": finding_aid.pk}))

    assert response.status_code == 404
    assert _nothing_stored()


@pytest.mark.django_db
def test_only_post(client: Client) -> None:
    assert client.get(URL).status_code == 405


def test_the_helper_signs_with_the_tests_secret(settings: Any) -> None:
    assert settings.AIRFLOW_EVENTS_SECRET == SECRET
    assert json.loads(encode({"a": 1})) == {"a": 1}
