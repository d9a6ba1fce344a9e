"""Django's task framework on Airflow: ``@task`` functions run on Airflow's workers.

::

    TASKS = {
        "default": {
            "BACKEND": "airflow_client.tasks.AirflowBackend",
            "QUEUES": ["default", "reports"],
            "OPTIONS": {
                "ENVIRONMENT": "default",  # an alias of AIRFLOW_ENVIRONMENTS
                "DAG_ID": "django_tasks",  # the DAG of airflow_client.dags.task_dag()
                "QUEUES": {"reports": "django_tasks_reports"},  # a queue's own DAG
            },
        }
    }

enqueue() starts a run of the queue's DAG whose conf holds the task (its import
path, arguments, queue and priority) and records it as a JobRun like any other
run (it belongs to no record). The result's id is the run id. get_result()
answers from the database, reading Airflow at most once per
AIRFLOW_REFRESH_INTERVAL (refresh()), and reads what the task returned or raised
from the run's XCom once, when the run has finished (JobTaskResult).
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings as django_settings
from django.core import checks
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.module_loading import import_string

from airflow_client import dags
from airflow_client.conf import get_settings
from airflow_client.exceptions import AirflowClientError, AirflowError, ConfigurationError, TriggerFailed
from airflow_client.models import JobRun, JobTaskResult, JobTrigger
from airflow_client.refreshing import not_in_airflow, refresh, xcom
from airflow_client.states import ACTIVE_STATES, FINISHED_STATES, RunState
from airflow_client.tasks_compat import (
    DEFAULT_TASK_QUEUE_NAME,
    BaseTaskBackend,
    InvalidTask,
    Task,
    TaskError,
    TaskResult,
    TaskResultDoesNotExist,
    TaskResultStatus,
    load_task,
    normalize_json,
    task_backends,
    task_enqueued,
    task_finished,
    task_started,
)
from airflow_client.transports import transport_class
from airflow_client.transports.base import check_error
from airflow_client.triggering import resolve_trigger, start_run

__all__ = ["OPTION_DEFAULTS", "AirflowBackend"]

logger = logging.getLogger(__name__)

#: The backend's OPTIONS and their defaults.
OPTION_DEFAULTS: dict[str, Any] = {"ENVIRONMENT": "default", "DAG_ID": dags.DEFAULT_DAG_ID, "QUEUES": {}}

# By value: the type stubs know the members of TaskResultStatus but not their type.
READY, RUNNING, FAILED, SUCCESSFUL = (
    TaskResultStatus(value) for value in ("READY", "RUNNING", "FAILED", "SUCCESSFUL")
)

_RUN_FAILED = "The run ended failed in Airflow without a result from the task: it was killed, marked failed or never ran."


class AirflowBackend(BaseTaskBackend):
    """Runs tasks as runs of a task DAG on the Airflow of ``ENVIRONMENT`` (see the module)."""

    supports_get_result = True
    # The task runs in the site's own python, where Task.call() runs a coroutine to its end.
    supports_async_task = True
    # Airflow's priority_weight belongs to the DAG's task, fixed when the DAG is parsed: no
    # run can set its own. A queue whose DAG has a higher priority_weight is the way.
    supports_priority = False

    def __init__(self, alias: str, params: dict[str, Any]) -> None:
        super().__init__(alias, params)
        self.params = params
        options = {**OPTION_DEFAULTS, **(self.options if isinstance(self.options, Mapping) else {})}
        environment, dag_id, queue_dags = options["ENVIRONMENT"], options["DAG_ID"], options["QUEUES"]
        # Wrong types fall back to the defaults here; check() reports them.
        self.environment = environment if isinstance(environment, str) else OPTION_DEFAULTS["ENVIRONMENT"]
        self.dag_id = dag_id if isinstance(dag_id, str) and dag_id else dags.DEFAULT_DAG_ID
        self.queue_dags: dict[str, str] = (
            {str(queue): str(dag) for queue, dag in queue_dags.items()}
            if isinstance(queue_dags, Mapping)
            else {}
        )
        if "QUEUES" not in params:  # Django's default ("default" alone), plus the queues given a DAG
            self.queues = {DEFAULT_TASK_QUEUE_NAME, *self.queue_dags}

    @property
    def supports_defer(self) -> bool:  # type: ignore[override]
        """Whether the environment's transport can start a run later (Airflow 3 and 2 can).

        Decided from the settings alone: Django asks whenever a task is validated.
        """
        options = get_settings().environments.get(self.environment)
        if options is None:
            return False
        try:
            return transport_class(options["TRANSPORT"]).defers_runs
        except ConfigurationError:
            return False

    def dag_for(self, queue_name: str) -> str:
        """The DAG that runs the tasks of ``queue_name``."""
        return self.queue_dags.get(queue_name, self.dag_id)

    @property
    def dag_ids(self) -> set[str]:
        return {self.dag_id, *self.queue_dags.values()}

    # --- enqueueing -------------------------------------------------------------------------

    def enqueue(self, task: Task[Any, Any], args: Any, kwargs: Any) -> TaskResult[Any, Any]:
        """Start the task's run in Airflow; its result, READY.

        Raises InvalidTask (the task cannot be imported by its path, so no worker
        could find it), TypeError/ValueError (arguments that are not JSON), InvalidConf
        (larger than AIRFLOW_MAX_CONF_BYTES) and TriggerFailed (the DAG is missing or
        paused, Airflow refused or cannot be reached). A request Airflow may have
        received without answering gives a READY result all the same: get_result()
        asks Airflow about it later, and says FAILED if it never arrived.
        """
        self.validate_task(task)
        _check_importable(task)
        arguments = _json_arguments(task, args, kwargs)
        spec: dict[str, Any] = {
            "version": dags.WIRE_VERSION,
            "path": task.module_path,
            **arguments,
            "backend": self.alias,
            "queue": task.queue_name,
            "priority": task.priority,
            "takes_context": task.takes_context,
            "run_after": task.run_after.isoformat() if task.run_after else None,
        }
        conf = {dags.CONF_KEY: spec}
        note = f"Django task {task.module_path}"
        try:
            job_run = start_run(
                self.environment, self.dag_for(task.queue_name), conf, note=note, run_after=task.run_after
            )
        except TriggerFailed as exc:
            if exc.job_trigger.outcome != JobTrigger.Outcome.UNKNOWN:
                raise
            result = self._trigger_result(exc.job_trigger, task)
        else:
            result = self._result(job_run, task, settled=False)
        task_enqueued.send(type(self), task_result=result)
        return result

    # --- results ----------------------------------------------------------------------------

    def get_result(self, result_id: str) -> TaskResult[Any, Any]:
        """The task's result as recorded, Airflow read at most once per AIRFLOW_REFRESH_INTERVAL.

        Raises TaskResultDoesNotExist for an id this backend never gave out.
        """
        job_run = self._find(result_id)
        if job_run is None:
            return self._from_trigger(result_id)
        if not job_run.finished:
            with contextlib.suppress(AirflowClientError):  # kept on the run: answered as last read
                job_run = refresh(job_run)
        if job_run.finished and _stored_result(job_run) is None and _claim_settle(job_run):
            self.settle(job_run)
        return self._result(job_run)

    def _find(self, result_id: str) -> JobRun | None:
        found: JobRun | None = (
            JobRun.objects.select_related("task_result")
            .filter(environment=self.environment, dag_id__in=self.dag_ids, dag_run_id=str(result_id))
            .first()
        )
        if found is not None and not isinstance(found.conf.get(dags.CONF_KEY), Mapping):
            return None  # a run of the task DAG started otherwise: no task of ours
        return found

    def _from_trigger(self, result_id: str) -> TaskResult[Any, Any]:
        """The result of a task whose trigger has no run (yet): READY, or FAILED once settled."""
        job_trigger: JobTrigger | None = JobTrigger.objects.filter(
            environment=self.environment, dag_id__in=self.dag_ids, run_id=str(result_id)
        ).first()
        if job_trigger is None or not isinstance(job_trigger.conf.get(dags.CONF_KEY), Mapping):
            raise TaskResultDoesNotExist(result_id)
        if job_trigger.outcome in JobTrigger.OPEN:
            with contextlib.suppress(AirflowClientError):
                job_run = resolve_trigger(job_trigger)
                if job_run is not None:
                    return self.get_result(result_id)
        return self._trigger_result(job_trigger, self._task(job_trigger.conf[dags.CONF_KEY]))

    def _task(self, spec: Mapping[str, Any]) -> Task[Any, Any]:
        """The Task of a run's conf, as it was enqueued here."""
        found = load_task(str(spec.get("path")))
        changes: dict[str, Any] = {"backend": self.alias}
        if spec.get("queue") in self.queues:
            changes["queue_name"] = spec["queue"]
        run_after = parse_datetime(spec["run_after"]) if isinstance(spec.get("run_after"), str) else None
        if run_after is not None and self.supports_defer:
            changes["run_after"] = run_after
        try:
            task: Task[Any, Any] = found.using(**changes)
        except InvalidTask:
            task = found  # the settings changed since: the task as its module defines it
        return task

    def _trigger_result(self, job_trigger: JobTrigger, task: Task[Any, Any]) -> TaskResult[Any, Any]:
        spec = job_trigger.conf[dags.CONF_KEY]
        failed = job_trigger.outcome == JobTrigger.Outcome.FAILED
        errors = (
            [
                TaskError(
                    exception_class_path=dags.RUN_FAILED,
                    traceback=f"Airflow never started it: {job_trigger.error}",
                )
            ]
            if failed
            else []
        )
        result: TaskResult[Any, Any] = TaskResult(
            task=task,
            id=job_trigger.run_id,
            status=FAILED if failed else READY,
            enqueued_at=job_trigger.sent_at or job_trigger.created_at,
            started_at=None,
            finished_at=None,
            last_attempted_at=None,
            args=spec.get("args", []),
            kwargs=spec.get("kwargs", {}),
            backend=self.alias,
            errors=errors,
            worker_ids=[],
        )
        return result

    def _result(
        self, job_run: JobRun, task: Task[Any, Any] | None = None, *, settled: bool | None = None
    ) -> TaskResult[Any, Any]:
        """The TaskResult a run stands for (no query when its task result was selected, or
        ``settled`` is False: a run just started has none)."""
        spec = job_run.conf[dags.CONF_KEY]
        stored = None if settled is False else _stored_result(job_run)
        if stored is not None:
            status = TaskResultStatus(stored.status)
        elif job_run.state == RunState.QUEUED:
            status = READY
        else:  # running, or finished with its outcome not read yet
            status = RUNNING
        started = job_run.start_date if status != READY else None
        errors = (
            [TaskError(exception_class_path=stored.exception_class_path, traceback=stored.traceback)]
            if stored is not None and status == FAILED
            else []
        )
        result: TaskResult[Any, Any] = TaskResult(
            task=task or self._task(spec),
            id=job_run.dag_run_id,
            status=status,
            enqueued_at=job_run.queued_at or job_run.created_at,
            started_at=started,
            finished_at=(job_run.end_date or stored.created_at) if stored is not None else None,
            last_attempted_at=(stored.last_attempted_at if stored is not None else None) or started,
            args=spec.get("args", []),
            kwargs=spec.get("kwargs", {}),
            backend=self.alias,
            errors=errors,
            worker_ids=[stored.worker or "airflow"] * stored.attempts if stored is not None else [],
        )
        if stored is not None and status == SUCCESSFUL:
            object.__setattr__(result, "_return_value", stored.return_value)
        return result

    # --- following the run ------------------------------------------------------------------

    def settle(self, job_run: JobRun) -> JobTaskResult | None:
        """Read what the finished run's task returned or raised and store it; announce it
        (task_finished) if this call stored it. None while Airflow cannot be read."""
        try:
            envelope = _envelope(xcom(job_run, dags.TASK_ID, dags.XCOM_KEY))
        except AirflowClientError as exc:
            if not (isinstance(exc, AirflowError) and not_in_airflow(exc)):
                # Unreachable, or AIRFLOW_ENABLED off: the result stays unread (RUNNING) till later.
                logger.warning("The result of task run %s cannot be read yet: %s", job_run.dag_run_id, exc)
                return None
            envelope = None  # the task pushed nothing: killed, marked, or never run
        fields = _result_fields(job_run, envelope)
        try:
            with transaction.atomic():
                stored: JobTaskResult = JobTaskResult.objects.create(job_run=job_run, **fields)
        except IntegrityError:  # another caller stored it first (and announced it)
            earlier: JobTaskResult | None = JobTaskResult.objects.filter(job_run=job_run).first()
            return earlier
        job_run.task_result = stored
        task_finished.send(type(self), task_result=self._result(job_run))
        return stored

    def changed(self, job_run: JobRun, old_state: str | None, new_state: str) -> None:
        """A task run's state changed (announced once, by whoever stored the change)."""
        if new_state in ACTIVE_STATES and old_state in FINISHED_STATES:
            JobTaskResult.objects.filter(job_run=job_run).delete()  # a re-run: a new outcome will come
            job_run._state.fields_cache.pop("task_result", None)
        if new_state != RunState.QUEUED and old_state in (None, RunState.QUEUED):
            task_started.send(type(self), task_result=self._result(job_run))
        if new_state in FINISHED_STATES and _stored_result(job_run) is None:
            self.settle(job_run)

    # --- checks -----------------------------------------------------------------------------

    def check(self, **kwargs: Any) -> list[checks.CheckMessage]:
        return check_options(self.alias, self.params)


def run_changed(job_run: JobRun, old_state: str | None, new_state: str) -> None:
    """run_state_changed of a task run: tell its backend (connected in apps.ready)."""
    spec = job_run.conf.get(dags.CONF_KEY)
    try:
        backend = task_backends[str(spec.get("backend"))] if isinstance(spec, Mapping) else None
    except Exception:  # the alias is gone from TASKS: nobody here follows it
        return
    if not isinstance(backend, AirflowBackend):
        return
    try:
        backend.changed(job_run, old_state, new_state)
    except Exception:  # a receiver must not break the refresh that announced the change
        logger.exception("Following the state of task run %s failed", job_run.dag_run_id)


# --- helpers ---------------------------------------------------------------------------------


def _check_importable(task: Task[Any, Any]) -> None:
    """InvalidTask unless the task's path leads back to it: Airflow's worker imports it so."""
    path = task.module_path
    try:
        found = import_string(path)
    except ImportError as exc:
        raise InvalidTask(f"The task {path!r} cannot be imported by its path: {exc}") from exc
    if not isinstance(found, Task) or found.func is not task.func:
        raise InvalidTask(
            f"{path!r} does not lead back to this task: define it at module level, "
            "decorated with @task under its own name, so Airflow's worker can import it."
        )


def _json_arguments(task: Task[Any, Any], args: Any, kwargs: Any) -> dict[str, Any]:
    """The arguments as Airflow gets them back (a JSON round trip), or TypeError/ValueError."""
    try:
        encoded = json.dumps(normalize_json({"args": list(args), "kwargs": dict(kwargs)}), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"The arguments of {task.module_path} cannot be sent as JSON: {exc}") from exc
    decoded: dict[str, Any] = json.loads(encoded)
    return decoded


def _stored_result(job_run: JobRun) -> JobTaskResult | None:
    try:
        found: JobTaskResult = job_run.task_result
    except JobTaskResult.DoesNotExist:
        return None
    return found


def _claim_settle(job_run: JobRun) -> bool:
    """Elect one caller per AIRFLOW_REFRESH_INTERVAL to read a finished run's outcome again
    (the caller that saw it finish read it at once: only a failed read gets here)."""
    now = timezone.now()
    interval = timedelta(seconds=get_settings().refresh_interval)
    claimed = (
        JobRun.objects.filter(pk=job_run.pk)
        .filter(Q(refreshed_at__isnull=True) | Q(refreshed_at__lte=now - interval))
        .update(refreshed_at=now)
    )
    return bool(claimed)


def _envelope(value: Any) -> dict[str, Any] | None:
    """The task runner's result from its XCom value (JSON text; Airflow may have encoded it again)."""
    for _depth in range(3):
        if isinstance(value, Mapping):
            return dict(value)
        if not isinstance(value, str):
            return None
        try:
            value = json.loads(value)
        except ValueError:
            return None
    return None


def _when(value: Any) -> datetime | None:
    try:
        return parse_datetime(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _result_fields(job_run: JobRun, envelope: Mapping[str, Any] | None) -> dict[str, Any]:
    """The JobTaskResult of a finished run: its state decides the status, the envelope the rest."""
    succeeded = job_run.state == RunState.SUCCESS
    try_number = envelope.get("try_number") if envelope else None
    fields: dict[str, Any] = {
        "status": SUCCESSFUL if succeeded else FAILED,
        "attempts": try_number if isinstance(try_number, int) and try_number > 0 else 1,
        "worker": str(envelope.get("worker") or "")[:255] if envelope else "",
        "last_attempted_at": _when(envelope.get("started_at")) if envelope else None,
    }
    if envelope is not None and envelope.get("status") == dags.SUCCESSFUL and succeeded:
        fields["return_value"] = envelope.get("return_value")
    elif envelope is not None and envelope.get("status") == dags.FAILED and not succeeded:
        fields["exception_class_path"] = str(envelope.get("exception_class_path") or dags.RUN_FAILED)[:250]
        fields["traceback"] = str(envelope.get("traceback") or "")
    elif not succeeded:
        fields["exception_class_path"] = dags.RUN_FAILED
        fields["traceback"] = job_run.failed_error or job_run.refresh_error or _RUN_FAILED
        if job_run.failed_try_number:
            fields["attempts"] = job_run.failed_try_number
    return fields


# --- system checks (Django's task framework calls AirflowBackend.check) ----------------------


def check_options(alias: str, params: Mapping[str, Any]) -> list[checks.CheckMessage]:
    """What is wrong with TASKS[alias] for an AirflowBackend."""
    where = f"TASKS[{alias!r}]['OPTIONS']"
    options = params.get("OPTIONS", {})
    if not isinstance(options, Mapping):
        return [check_error(30, f"{where} must be a dict, not {type(options).__name__}.", "See the README.")]
    errors: list[checks.CheckMessage] = []
    unknown = sorted(set(options) - set(OPTION_DEFAULTS))
    if unknown:
        errors.append(
            check_error(
                30,
                f"{where} has unknown keys: {', '.join(map(str, unknown))}.",
                "Known: ENVIRONMENT, DAG_ID, QUEUES.",
            )
        )
    environment = options.get("ENVIRONMENT", OPTION_DEFAULTS["ENVIRONMENT"])
    environments = getattr(django_settings, "AIRFLOW_ENVIRONMENTS", {})
    if (
        not isinstance(environment, str)
        or not isinstance(environments, Mapping)
        or environment not in environments
    ):
        errors.append(
            check_error(
                31,
                f"{where}['ENVIRONMENT'] is {environment!r}: no such alias in AIRFLOW_ENVIRONMENTS.",
                "Name the Airflow environment that runs the task DAG (default: 'default').",
            )
        )
    dag_id = options.get("DAG_ID", OPTION_DEFAULTS["DAG_ID"])
    queue_dags = options.get("QUEUES", {})
    if not isinstance(dag_id, str) or not dag_id:
        errors.append(
            check_error(
                32, f"{where}['DAG_ID'] must be a DAG id, not {dag_id!r}.", "Default: 'django_tasks'."
            )
        )
    if not isinstance(queue_dags, Mapping) or not all(
        isinstance(queue, str) and isinstance(dag, str) and dag for queue, dag in queue_dags.items()
    ):
        errors.append(
            check_error(
                32,
                f"{where}['QUEUES'] must map queue names to DAG ids, not {queue_dags!r}.",
                "e.g. {'reports': 'django_tasks_reports'}",
            )
        )
    elif "QUEUES" in params:
        allowed = params["QUEUES"]
        missing = sorted(queue for queue in queue_dags if queue not in allowed)
        if missing:
            errors.append(
                check_error(
                    33,
                    f"{where}['QUEUES'] gives a DAG to queues that TASKS[{alias!r}]['QUEUES'] does not list: "
                    f"{', '.join(missing)}.",
                    "Add them to QUEUES, or leave QUEUES out (then every queue given a DAG is allowed).",
                )
            )
    return errors
