"""Runs one Django task in the site's own python, for the task DAG (airflow_client.dags).

``python -m airflow_client.task_runner RESULT_FILE`` reads ``{"task": <the conf's
django_task>, "try_number": n}`` on stdin, sets Django up (DJANGO_SETTINGS_MODULE),
imports the task by its path, calls it and writes the result envelope (see
:mod:`airflow_client.dags`) to RESULT_FILE. What the task prints goes to the
task's log; its traceback too, when it raises. The exit code is 0 whenever a
result was written, whatever the task did.
"""

from __future__ import annotations

import json
import socket
import sys
import traceback
from collections.abc import Mapping
from typing import Any

from airflow_client.dags import FAILED, RUN_FAILED, SUCCESSFUL, WIRE_VERSION, failure, now_iso

__all__ = ["execute", "main"]


def execute(
    spec: Mapping[str, Any], *, try_number: int, run_id: str = "", worker: str | None = None
) -> dict[str, Any]:
    """Call the task of ``spec`` (Django is set up) and return the result envelope."""
    from airflow_client.tasks_compat import (
        TaskContext,
        TaskResult,
        TaskResultStatus,
        load_task,
        normalize_json,
    )

    worker = worker or socket.gethostname()
    started_at = now_iso()
    path = str(spec.get("path"))
    try:
        task = load_task(path)
    except Exception as exc:
        return failure(RUN_FAILED, "".join(traceback.format_exception(exc)), try_number, started_at)
    args, kwargs = list(spec.get("args") or []), dict(spec.get("kwargs") or {})
    try:
        if spec.get("takes_context"):
            # The task sees its attempt as Airflow counts it: one worker id per try.
            result: TaskResult[Any, Any] = TaskResult(
                task=task,
                id=run_id,
                status=TaskResultStatus("RUNNING"),
                enqueued_at=None,
                started_at=None,
                finished_at=None,
                last_attempted_at=None,
                args=args,
                kwargs=kwargs,
                backend=str(spec.get("backend", task.backend)),
                errors=[],
                worker_ids=[worker] * try_number,
            )
            value = task.call(TaskContext(task_result=result), *args, **kwargs)
        else:
            value = task.call(*args, **kwargs)
        # What get_result returns must be what JSON gives back (as Django requires).
        value = json.loads(json.dumps(normalize_json(value), allow_nan=False))
    except KeyboardInterrupt:
        raise
    except BaseException as exc:
        text = "".join(traceback.format_exception(exc))
        kind = type(exc)
        return failure(f"{kind.__module__}.{kind.__qualname__}", text, try_number, started_at)
    return {
        "version": WIRE_VERSION,
        "status": SUCCESSFUL,
        "return_value": value,
        "exception_class_path": "",
        "traceback": "",
        "try_number": try_number,
        "started_at": started_at,
        "finished_at": now_iso(),
        "worker": worker,
    }


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m airflow_client.task_runner RESULT_FILE < request.json", file=sys.stderr)
        return 2
    request = json.load(sys.stdin)
    try_number = int(request.get("try_number") or 1)
    try:
        import django

        django.setup()
        envelope = execute(request["task"], try_number=try_number, run_id=str(request.get("run_id") or ""))
    except Exception as exc:  # Django could not be set up: still a result, naming why
        envelope = failure(RUN_FAILED, "".join(traceback.format_exception(exc)), try_number, now_iso())
    if envelope["status"] == FAILED:
        print(envelope["traceback"], file=sys.stderr, flush=True)
    with open(args[0], "w", encoding="utf-8") as out:
        json.dump(envelope, out)
    print(f"Django task {request['task'].get('path')}: {envelope['status']} (try {try_number})")
    return 0 if envelope["status"] in (SUCCESSFUL, FAILED) else 1


if __name__ == "__main__":
    sys.exit(main())
