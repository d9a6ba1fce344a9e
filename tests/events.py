"""Build and sign events as Airflow's callbacks send them, written out here from the wire format
(not with callbacks.build_event) so that each side is checked against the format itself."""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime, timezone
from typing import Any

from airflow_client.callbacks import SIGNATURE_HEADER, TIMESTAMP_HEADER, signature

SECRET = "tests-events-secret-0123456789"


def event(
    kind: str,
    *,
    dag_id: str = "index_finding_aid",
    run_id: str = "manual__1",
    conf: dict[str, Any] | None = None,
    task_id: str | None = None,
    map_index: int = -1,
    try_number: int = 1,
    error: str | None = None,
    task_count: int | None = 3,
    payload: Any = None,
    sent_at: datetime | None = None,
    **run: Any,
) -> dict[str, Any]:
    now = (sent_at or datetime.now(timezone.utc)).isoformat()
    state = {"dag_success": "success", "dag_failure": "failed"}.get(kind, "running")
    task = None
    if task_id is not None:
        task = {
            "task_id": task_id,
            "map_index": map_index,
            "try_number": try_number,
            "state": None,
            "start_date": now,
            "end_date": None,
            "error": error,
        }
    return {
        "version": 1,
        "id": uuid.uuid4().hex,
        "kind": kind,
        "sent_at": now,
        "environment": None,
        "host": "worker-1",
        "run": {
            "dag_id": dag_id,
            "run_id": run_id,
            "state": state,
            "run_type": "manual",
            "logical_date": None,
            "run_after": now,
            "queued_at": now,
            "start_date": now,
            "end_date": now if state != "running" else None,
            "conf": {} if conf is None else conf,
            "note": None,
            "task_count": task_count,
            **run,
        },
        "task": task,
        "payload": payload,
    }


def signed(body: bytes, secret: str = SECRET, timestamp: float | None = None) -> dict[str, str]:
    stamp = str(int(time.time() if timestamp is None else timestamp))
    return {TIMESTAMP_HEADER: stamp, SIGNATURE_HEADER: signature(secret, stamp, body)}


def encode(data: Any) -> bytes:
    return json.dumps(data).encode()
