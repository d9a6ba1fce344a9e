"""Events read from an SQS queue, for sites Airflow cannot reach (``manage.py airflow_consume_sqs``).

The callbacks publish to SNS or SQS (their ``sqs_queue_url`` / ``sns_topic_arn``
option) the envelope ``{"timestamp", "signature", "body"}``; an SNS subscription
without raw delivery wraps it once more (``{"Type": "Notification", "Message": ...}``).
Each message goes through the same checks and storing as the events endpoint,
except the age limit (a queue may hold a message for days).

A message is deleted only once its event is stored, seen before, or kept nowhere on
purpose (a run of no record). One that is refused (unsigned, wrong signature,
garbage) stays in the queue and is logged: the queue's redrive policy moves it to
its dead-letter queue. A database failure leaves it too, so it comes back.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.db import DatabaseError

from airflow_client import events
from airflow_client.exceptions import AirflowClientError

__all__ = ["Batch", "consume_once", "read_envelope"]

logger = logging.getLogger("airflow_client.events")

#: SQS's longest long poll, and most messages per receive.
LONG_POLL_SECONDS = 20
MAX_MESSAGES = 10


@dataclass
class Batch:
    """What one receive did with its messages."""

    received: int = 0
    stored: int = 0
    duplicates: int = 0
    ignored: int = 0
    refused: int = 0
    failed: int = 0

    def __str__(self) -> str:
        return (
            f"{self.received} message(s): {self.stored} stored, {self.duplicates} seen before, "
            f"{self.ignored} of no record, {self.refused} refused, {self.failed} left for later"
        )


def read_envelope(text: str) -> tuple[str, str, bytes]:
    """(timestamp, signature, body) of a message; EventRejected(400) when it is not an envelope."""
    try:
        data = json.loads(text)
        if isinstance(data, Mapping) and data.get("Type") == "Notification":  # SNS, not raw delivery
            data = json.loads(data["Message"])
    except (ValueError, KeyError, TypeError) as exc:
        raise events.EventRejected(f"Not an event envelope: {exc}"[:500]) from exc
    if not isinstance(data, Mapping):
        raise events.EventRejected("Not an event envelope: not a JSON object.")
    timestamp, signature, body = data.get("timestamp"), data.get("signature"), data.get("body")
    if not all(isinstance(value, str) for value in (timestamp, signature, body)):
        raise events.EventRejected("Not an event envelope: timestamp, signature and body must be text.")
    return str(timestamp), str(signature), str(body).encode()


def consume_once(client: Any, queue_url: str, secret: str, *, wait: int = LONG_POLL_SECONDS) -> Batch:
    """One long poll of ``queue_url`` with boto3's SQS ``client``; each message stored, then deleted."""
    answer = client.receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=MAX_MESSAGES, WaitTimeSeconds=wait
    )
    batch = Batch()
    for message in answer.get("Messages", []):
        batch.received += 1
        outcome = _handle(message.get("Body", ""), secret, message.get("MessageId", "?"))
        setattr(batch, outcome, getattr(batch, outcome) + 1)
        if outcome in {"stored", "duplicates", "ignored"}:
            client.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return batch


def _handle(text: str, secret: str, message_id: str) -> str:
    try:
        timestamp, signature, body = read_envelope(text)
        events.check_signature(secret, timestamp, signature, body, max_age=None)
        received = events.receive(events.parse(body))
    except (events.EventRejected, AirflowClientError) as exc:
        logger.error("airflow events: SQS message %s refused, left in the queue: %s", message_id, exc)
        return "refused"
    except DatabaseError:
        logger.exception(
            "airflow events: SQS message %s not stored (database), left in the queue", message_id
        )
        return "failed"
    return {"stored": "stored", "duplicate": "duplicates", "ignored": "ignored"}[received.outcome]
