"""The one machine-facing view: events pushed from Airflow's DAG callbacks (URL name ``airflow_client:events``).

Not behind login: the caller proves itself with the HMAC signature of
AIRFLOW_EVENTS_SECRET, so this is the only CSRF-exempt view. Unset secret: 404.
Answers: 200 stored or seen before, 202 taken but kept nowhere (not a run of a
registered Job), 400 not an event, 403 unsigned / wrong signature / stale, 413 too big.
"""

from __future__ import annotations

import logging

from django.db import DatabaseError
from django.http import Http404, HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from airflow_client import events as event_store
from airflow_client.callbacks import SIGNATURE_HEADER, TIMESTAMP_HEADER
from airflow_client.conf import get_settings
from airflow_client.exceptions import AirflowClientError

logger = logging.getLogger("airflow_client.events")


@csrf_exempt
@require_POST
def events(request: HttpRequest) -> JsonResponse:
    settings = get_settings()
    if settings.events_secret is None:
        raise Http404("The events endpoint is off (AIRFLOW_EVENTS_SECRET is not set).")
    limit = settings.events_max_bytes
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        return _refused(f"The event is larger than {limit} bytes.", 413)
    body = request.read(limit + 1)
    if len(body) > limit:
        return _refused(f"The event is larger than {limit} bytes.", 413)
    try:
        event_store.check_signature(
            settings.events_secret,
            request.headers.get(TIMESTAMP_HEADER),
            request.headers.get(SIGNATURE_HEADER),
            body,
        )
        event = event_store.parse(body)
        received = event_store.receive(event)
    except event_store.EventRejected as exc:
        return _refused(str(exc), exc.status)
    except AirflowClientError as exc:  # a value the database cannot hold
        return _refused(str(exc), 400)
    except DatabaseError:
        # The sender retries; nothing half-stored is left (each step is its own transaction).
        logger.exception("airflow events: the database failed while storing an event")
        return JsonResponse({"status": "error", "detail": "The event could not be stored now."}, status=503)
    answer = {"status": received.outcome}
    if received.job_run is not None:
        answer["run"] = str(received.job_run.pk)
    if received.reason:
        answer["detail"] = received.reason
    return JsonResponse(answer, status=202 if received.outcome == "ignored" else 200)


def _refused(detail: str, status: int) -> JsonResponse:
    logger.warning("airflow events: refused (%s): %s", status, detail)
    return JsonResponse({"status": "refused", "detail": detail}, status=status)
