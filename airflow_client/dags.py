"""The Airflow side of Django's tasks on Airflow: the task DAG, and the wire it shares with the site.

A DAG file needs one line::

    from airflow_client.dags import task_dag

    dag = task_dag()  # "django_tasks"

Each run starts the SITE's python (``<python> -m airflow_client.task_runner``) with
the site's settings, in the site's folder: that process imports the task by its
path, calls it with the run's arguments and writes one JSON result, which the
Airflow task pushes to XCom (key ``django_task``) before it succeeds or fails.
Airflow's own environment never imports Django, and a task's Python version and
packages are the site's.

Like :mod:`airflow_client.callbacks`, this module uses the standard library only
and imports Airflow inside :func:`task_dag`: the Django side imports its constants.
Where the site lives comes from the arguments of :func:`task_dag`, else from the
worker's environment at run time (``AIRFLOW_CLIENT_TASKS_PYTHON``,
``AIRFLOW_CLIENT_TASKS_SETTINGS``, ``AIRFLOW_CLIENT_TASKS_CWD``).
"""

from __future__ import annotations

import importlib
import json
import os
import socket
import subprocess
import tempfile
import traceback
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone
from typing import IO, Any, cast

__all__ = [
    "CONF_KEY",
    "DEFAULT_DAG_ID",
    "TASK_ID",
    "XCOM_KEY",
    "DjangoTaskFailed",
    "run_in_site",
    "task_dag",
]

# --- the wire (version 1) --------------------------------------------------------------------

WIRE_VERSION = 1
#: The run conf's key holding the task: {"version", "path", "args", "kwargs", "backend",
#: "queue", "priority", "takes_context"}.
CONF_KEY = "django_task"
#: The XCom key of the result: a JSON text, {"version", "status", "return_value",
#: "exception_class_path", "traceback", "try_number", "started_at", "finished_at", "worker"}.
XCOM_KEY = "django_task"
#: The one task of the task DAG.
TASK_ID = "run"
DEFAULT_DAG_ID = "django_tasks"
SUCCESSFUL, FAILED = "SUCCESSFUL", "FAILED"
#: What a failure names when the task itself raised nothing (see airflow_client.exceptions).
RUN_FAILED = "airflow_client.exceptions.TaskRunFailed"

PYTHON_ENV = "AIRFLOW_CLIENT_TASKS_PYTHON"
SETTINGS_ENV = "AIRFLOW_CLIENT_TASKS_SETTINGS"
CWD_ENV = "AIRFLOW_CLIENT_TASKS_CWD"
#: Not handed to the site's python: Airflow's own paths (its configuration, connections and
#: variables, secrets included, are withheld too: every variable starting with AIRFLOW).
_WITHHELD = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "__PYVENV_LAUNCHER__")


class DjangoTaskFailed(Exception):
    """Fails the Airflow try of a Django task that raised (its traceback is in the log and XCom)."""


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat()


def failure(exception_class_path: str, text: str, try_number: int, started_at: str) -> dict[str, Any]:
    """A result envelope for a try that failed."""
    return {
        "version": WIRE_VERSION,
        "status": FAILED,
        "return_value": None,
        "exception_class_path": exception_class_path,
        "traceback": text,
        "try_number": try_number,
        "started_at": started_at,
        "finished_at": now_iso(),
        "worker": socket.gethostname(),
    }


def _site_env(settings: str | None, extra: Mapping[str, str] | None) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in _WITHHELD and not key.lstrip("_").startswith("AIRFLOW")
    }
    if settings:
        env["DJANGO_SETTINGS_MODULE"] = settings
    env.update(extra or {})
    return env


def run_in_site(
    spec: Mapping[str, Any],
    *,
    try_number: int,
    run_id: str = "",
    python: str,
    settings: str | None = None,
    cwd: str | None = None,
    env: Mapping[str, str] | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run the Django task ``spec`` (the conf's ``django_task``) with the site's ``python``;
    its result envelope. The task's output goes to ``log`` line by line, as it comes.

    Whatever happens (the python is missing, the process dies), an envelope comes back:
    a failure names TaskRunFailed with what went wrong.
    """
    started_at = now_iso()
    with tempfile.TemporaryDirectory(prefix="django-task-") as scratch:
        result_path = os.path.join(scratch, "result.json")
        request = json.dumps({"task": dict(spec), "try_number": try_number, "run_id": run_id})
        try:
            process = subprocess.Popen(  # noqa: S603  (the site's own python, from the DAG's settings)
                [python, "-m", "airflow_client.task_runner", result_path],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                cwd=cwd or None,
                env=_site_env(settings, env),
                text=True,
            )
        except OSError as exc:
            return failure(
                RUN_FAILED,
                f"The site's python {python!r} could not be started: {exc}",
                try_number,
                started_at,
            )
        with process:  # closes the pipes; on the way out of an interruption, ends the task first
            try:
                stdin, stdout = cast(IO[str], process.stdin), cast(IO[str], process.stdout)  # both PIPEs
                stdin.write(request)
                stdin.close()
                for line in stdout:
                    log(line.rstrip("\n"))
                code = process.wait()
            finally:
                if process.poll() is None:  # a timeout or SIGTERM: the task must not outlive its try
                    process.kill()
        try:
            with open(result_path, encoding="utf-8") as result:
                envelope: dict[str, Any] = json.load(result)
        except (OSError, ValueError):
            return failure(
                RUN_FAILED,
                f"The site's python ({python}) ended with exit code {code} and no result: see the task log.",
                try_number,
                started_at,
            )
    return envelope


def _execute(
    context: Mapping[str, Any],
    *,
    python: str | None,
    settings: str | None,
    cwd: str | None,
    env: Mapping[str, str] | None,
) -> None:
    """The Airflow task: run the conf's Django task in the site, push its result, fail if it failed."""
    ti = context["ti"]
    conf = getattr(context.get("dag_run"), "conf", None) or {}
    spec = conf.get(CONF_KEY)
    if not isinstance(spec, Mapping):
        raise ValueError(f"This run's conf has no {CONF_KEY!r}: start it with Django's task framework.")
    try_number = int(ti.try_number)
    started_at = now_iso()
    try:
        python = python or os.environ.get(PYTHON_ENV)
        if not python:
            raise ValueError(f"No site python: pass python= to task_dag() or set {PYTHON_ENV}.")
        envelope = run_in_site(
            spec,
            try_number=try_number,
            run_id=str(getattr(context.get("dag_run"), "run_id", "") or ""),
            python=python,
            settings=settings or os.environ.get(SETTINGS_ENV),
            cwd=cwd or os.environ.get(CWD_ENV),
            env=env,
        )
    except BaseException as exc:  # a timeout or a kill: recorded as this try's failure, then re-raised
        envelope = failure(RUN_FAILED, "".join(traceback.format_exception(exc)), try_number, started_at)
        ti.xcom_push(key=XCOM_KEY, value=json.dumps(envelope))
        raise
    ti.xcom_push(key=XCOM_KEY, value=json.dumps(envelope))
    if envelope.get("status") != SUCCESSFUL:
        raise DjangoTaskFailed(
            f"{spec.get('path')} raised {envelope.get('exception_class_path')} (try {try_number})."
        )


def task_dag(
    dag_id: str = DEFAULT_DAG_ID,
    *,
    python: str | None = None,
    settings: str | None = None,
    cwd: str | None = None,
    env: Mapping[str, str] | None = None,
    retries: int = 0,
    retry_delay: timedelta = timedelta(seconds=30),
    priority_weight: int = 1,
    execution_timeout: timedelta | None = None,
    pool: str | None = None,
    queue: str | None = None,
    **dag_kwargs: Any,
) -> Any:
    """The DAG that runs Django tasks: one task, ``run``.

    ``python``, ``settings`` (DJANGO_SETTINGS_MODULE) and ``cwd`` say where the site is
    (else the worker's AIRFLOW_CLIENT_TASKS_* variables, read at run time). The site's
    process gets the worker's environment but Airflow's own variables (AIRFLOW*) and
    Python paths; ``env`` adds variables of its own. ``retries``, ``retry_delay``, ``priority_weight``,
    ``execution_timeout``, ``pool`` and ``queue`` are the task's, as Airflow means them:
    a task's attempts are Airflow's tries. Other keywords go to the DAG
    (``max_active_runs``: how many tasks of this DAG run at once).
    """
    try:  # Airflow 3: the authoring API lives in the task SDK.
        sdk = importlib.import_module("airflow.sdk")
        dag_class, task = sdk.DAG, sdk.task
    except ImportError:  # Airflow 2
        dag_class = importlib.import_module("airflow.models.dag").DAG
        task = importlib.import_module("airflow.decorators").task

    options: dict[str, Any] = {
        "schedule": None,
        "catchup": False,
        "start_date": datetime(2024, 1, 1, tzinfo=timezone.utc),
        "tags": ["django tasks"],
        "is_paused_upon_creation": False,
        **dag_kwargs,
    }
    task_options: dict[str, Any] = {
        "task_id": TASK_ID,
        "retries": retries,
        "retry_delay": retry_delay,
        "priority_weight": priority_weight,
    }
    for name, value in (("execution_timeout", execution_timeout), ("pool", pool), ("queue", queue)):
        if value is not None:
            task_options[name] = value

    def run(**context: Any) -> None:
        _execute(context, python=python, settings=settings, cwd=cwd, env=env)

    with dag_class(dag_id, **options) as dag:
        task(**task_options)(run)()
    return dag
