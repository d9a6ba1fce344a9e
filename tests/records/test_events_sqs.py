"""``manage.py airflow_consume_sqs``: the events of an SQS queue, stored as the endpoint stores them
(SQS proven with botocore's Stubber: no AWS here)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from io import StringIO
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from django.core.management import CommandError, call_command

from airflow_client.management.commands import airflow_consume_sqs
from airflow_client.models import JobEvent, JobRun
from airflow_client.states import RunState
from tests.events import encode, event, signed

QUEUE = "https://sqs.eu-west-1.amazonaws.com/123456789012/airflow-events"


@pytest.fixture
def sqs(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stubber]:
    client = boto3.client("sqs", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="y")
    monkeypatch.setattr(airflow_consume_sqs, "sqs_client", lambda region: client)
    with Stubber(client) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def envelope(data: Any, *, timestamp: float | None = None, secret: str | None = None) -> str:
    body = encode(data)
    headers = signed(body, timestamp=timestamp) if secret is None else signed(body, secret=secret)
    stamp, signature = headers.values()
    return json.dumps({"timestamp": stamp, "signature": signature, "body": body.decode()})


def receive(stubber: Stubber, *bodies: str) -> None:
    messages = [
        {"MessageId": f"m{n}", "ReceiptHandle": f"r{n}", "Body": body} for n, body in enumerate(bodies)
    ]
    stubber.add_response(
        "receive_message",
        {"Messages": messages} if messages else {},
        {"QueueUrl": QUEUE, "MaxNumberOfMessages": 10, "WaitTimeSeconds": 20},
    )


def deleted(stubber: Stubber, *handles: str) -> None:
    for handle in handles:
        stubber.add_response("delete_message", {}, {"QueueUrl": QUEUE, "ReceiptHandle": handle})


def consume() -> str:
    out = StringIO()
    call_command("airflow_consume_sqs", "--queue", QUEUE, "--once", stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_an_event_is_stored_then_its_message_deleted(sqs: Stubber, finding_aid: Any) -> None:
    receive(sqs, envelope(event("dag_success", conf={"finding_aid_id": finding_aid.pk})))
    deleted(sqs, "r0")

    output = consume()

    assert "1 stored" in output
    run = JobRun.objects.for_object(finding_aid).get()
    assert run.state == RunState.SUCCESS
    assert run.events.get().kind == "dag_success"


@pytest.mark.django_db
def test_an_sns_notification_is_unwrapped(sqs: Stubber, finding_aid: Any) -> None:
    inner = envelope(event("dag_failure", conf={"finding_aid_id": finding_aid.pk}))
    receive(sqs, json.dumps({"Type": "Notification", "MessageId": "sns-1", "Message": inner}))
    deleted(sqs, "r0")

    consume()

    assert JobRun.objects.get().state == RunState.FAILED


@pytest.mark.django_db
def test_a_message_delivered_twice_is_stored_once_and_deleted_both_times(
    sqs: Stubber, finding_aid: Any
) -> None:
    message = envelope(event("dag_success", conf={"finding_aid_id": finding_aid.pk}))
    receive(sqs, message, message)
    deleted(sqs, "r0", "r1")

    output = consume()

    assert "1 stored, 1 seen before" in output
    assert JobEvent.objects.count() == 1


@pytest.mark.django_db
def test_an_old_message_is_still_taken(sqs: Stubber, finding_aid: Any) -> None:
    """A queue may hold a message for days: no age limit, the signature is what counts."""
    receive(
        sqs,
        envelope(
            event("dag_success", conf={"finding_aid_id": finding_aid.pk}), timestamp=time.time() - 86400
        ),
    )
    deleted(sqs, "r0")

    consume()

    assert JobRun.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body",
    [
        pytest.param("not json", id="garbage"),
        pytest.param(json.dumps({"body": "{}"}), id="unsigned"),
        pytest.param("wrong-secret", id="wrong-secret"),
        pytest.param("bad-event", id="signed-garbage"),
    ],
)
def test_a_refused_message_stays_in_the_queue(sqs: Stubber, finding_aid: Any, body: str, caplog: Any) -> None:
    if body == "wrong-secret":
        body = envelope(event("dag_success", conf={"finding_aid_id": finding_aid.pk}), secret="x" * 20)
    elif body == "bad-event":
        body = envelope({"version": 1, "kind": "dag_success"})
    receive(sqs, body)  # no delete_message expected: the Stubber fails on an unexpected call

    output = consume()

    assert "1 refused" in output
    assert not JobRun.objects.exists()
    assert "left in the queue" in caplog.text


@pytest.mark.django_db
def test_a_run_of_no_record_is_deleted_and_kept_nowhere(sqs: Stubber) -> None:
    receive(sqs, envelope(event("dag_success", dag_id="not_registered")))
    deleted(sqs, "r0")

    assert "1 of no record" in consume()
    assert not JobRun.objects.exists()


@pytest.mark.django_db
def test_a_database_failure_leaves_the_message_for_later(
    sqs: Stubber, finding_aid: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django.db import OperationalError

    from airflow_client import events

    def down(*args: Any) -> Any:
        raise OperationalError("database is locked")

    monkeypatch.setattr(events, "receive", down)
    receive(sqs, envelope(event("dag_success", conf={"finding_aid_id": finding_aid.pk})))

    assert "1 left for later" in consume()


@pytest.mark.django_db
def test_an_empty_queue(sqs: Stubber) -> None:
    receive(sqs)
    assert "0 message(s)" in consume()


@pytest.mark.django_db
def test_sqs_unreachable_with_once_is_a_clear_error(sqs: Stubber) -> None:
    sqs.add_client_error(
        "receive_message", "AWS.SimpleQueueService.NonExistentQueue", "The queue does not exist."
    )
    with pytest.raises(CommandError, match="SQS could not be read"):
        consume()


def test_without_a_secret_nothing_is_read(settings: Any) -> None:
    settings.AIRFLOW_EVENTS_SECRET = None
    with pytest.raises(CommandError, match="AIRFLOW_EVENTS_SECRET"):
        call_command("airflow_consume_sqs", "--queue", QUEUE, "--once")
