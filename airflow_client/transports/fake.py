"""An in-memory Airflow for tests: ``"TRANSPORT": "fake"``.

Nothing leaves the process. The state of each environment alias lives in a
module-level :class:`FakeAirflow` (so it survives the transport being rebuilt
when settings change); tests drive and inspect it::

    from airflow_client.transports import fake

    airflow = fake.get_airflow()          # the "default" alias
    airflow.add_dag("harvest", paused=True)
    ...                                    # code under test triggers runs
    airflow.advance("dj_abc")              # queued -> running -> success
    airflow.finish(("harvest", "dj_abc"), state="failed")
    assert airflow.call_count("get_run") == 1

Operators' controls behave as in Airflow 3: ``set_run_state`` ends a run as
success or failed (running tasks take that state, tasks not started are
skipped) or queues it again; ``clear_run`` puts a finished run back in the
queue with its tasks (all, or the failed and upstream-failed ones) cleared:
no state, and their next try starts when the run runs again. The default task
follows its run, tries included; tasks given with ``set_task`` keep what a
clear left them until the test sets them again::

    airflow.finish("dj_abc", state="failed")
    ...                                    # code under test clears the run
    airflow.advance("dj_abc")              # queued -> running: the task's try 2

Any dag_id is known unless ``airflow.strict = True``; then only DAGs added with
``add_dag`` exist and others raise NotFound.

Failures are queued: ``airflow.fail_next(exc)`` makes the next call, whatever it
is, raise ``exc`` before doing anything (default AirflowUnavailable: Airflow
never saw it). ``airflow.lose_next_answer()`` lets the next ``trigger`` (or the
method named) do its work, then raise AirflowTimeout: the answer was lost on its
way back. The run then exists although the caller saw a timeout, as when a real
POST times out after reaching Airflow::

    airflow.lose_next_answer()            # or lose_next_answer("get_run", exc)
    ...                                    # code under test triggers a run
    assert airflow.runs("harvest")        # the run exists in Airflow all the same

Runs of Django's tasks (airflow_client.tasks) can be run in this process, as
the task DAG would run them on a worker; ``set_xcom`` pushes what any task
would, and ``trigger(run_after=...)`` keeps a run queued (for ``run_tasks``)
until the fake's clock gets there::

    result = export.enqueue(42)
    airflow.run_tasks(retries={"django_tasks": 1})   # each queued task run, to its end
    assert export.get_result(result.id).return_value == ...

Links point to ``UI_URL`` (``conf.environment()`` fills it from ``BASE_URL``),
or to ``http://airflow.invalid`` when neither is set. Reset between tests with
``fake.reset_all()``, e.g. in an autouse fixture of your ``conftest.py``::

    @pytest.fixture(autouse=True)
    def _fake_airflow():
        yield
        fake.reset_all()
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any, ClassVar

from airflow_client.exceptions import (
    AirflowError,
    AirflowTimeout,
    AirflowUnavailable,
    BadRequest,
    Conflict,
    NotFound,
)
from airflow_client.states import FINISHED_STATES, RunState
from airflow_client.transports import payloads
from airflow_client.transports.base import (
    Capabilities,
    Dag,
    DagRun,
    LogChunk,
    LogLine,
    RunQuery,
    TaskInstance,
    Transport,
    settable_state,
)

__all__ = ["DEFAULT_TASK_ID", "NO_UI_URL", "FakeAirflow", "FakeTransport", "get_airflow", "reset_all"]

#: The task every run has until ``set_task`` gives it others.
DEFAULT_TASK_ID = "run"
#: Where links point when the environment sets neither UI_URL nor BASE_URL.
NO_UI_URL = "http://airflow.invalid"

#: A run given by its run id alone (must be unique across DAGs) or as (dag_id, run_id).
RunRef = str | tuple[str, str]

# Airflow's default [scheduler] allowed_run_id_pattern.
_RUN_ID = re.compile(r"^[A-Za-z0-9_.~:+-]+$")

# Task instance states, as Airflow groups them when it marks or clears a run.
_TASK_RUNNING = frozenset({"running", "deferred", "up_for_reschedule"})
_TASK_FINISHED = frozenset({"success", "failed", "skipped", "upstream_failed", "removed"})
#: what clear_run(only_failed=True) clears.
_TASK_FAILED = frozenset({"failed", "upstream_failed"})


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class _Task:
    state: str | None
    try_number: int = 1
    start_date: datetime | None = None
    end_date: datetime | None = None
    operator: str | None = "PythonOperator"
    #: how try ``try_number`` ended, once a clear has taken that state away.
    cleared_from: str | None = None


@dataclass
class _Run:
    run: DagRun
    seq: int  # creation order: breaks ties between equal run_after values
    updated_at: datetime
    tasks: dict[tuple[str, int], _Task] | None = None  # None: the one default task
    logs: dict[tuple[str, int, int], list[str]] = field(default_factory=dict)
    #: the default task's tries ended by a clear or a new queuing (its next try is tries + 1).
    tries: int = 0
    #: how the run had ended when it was last queued again (the default task's last try).
    cleared_from: str | None = None


class FakeAirflow:
    """The state of one fake Airflow environment, and the helpers tests use to drive it.

    Every method is thread-safe. ``calls`` lists what the transport was asked, as
    ``(method, args)`` tuples, e.g. ``("get_run", ("harvest", "dj_1"))``.
    """

    def __init__(self, alias: str) -> None:
        self.alias = alias
        self._lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        """Forget every DAG, run, call and failure; back to the defaults."""
        with self._lock:
            self.strict = False
            self.down = False
            self.log_page_size = 100
            self.clock: Callable[[], datetime] = _utcnow
            self.calls: list[tuple[str, tuple[Any, ...]]] = []
            self._dags: dict[str, Dag] = {}
            self._runs: dict[tuple[str, str], _Run] = {}
            self._failures: list[AirflowError] = []
            #: per method: errors raised after the call did its work (the answer was lost).
            self._lost: dict[str, list[AirflowError]] = {}
            self._seq = 0
            #: (dag_id, run_id, task_id, map_index, key) -> the value pushed.
            self._xcoms: dict[tuple[str, str, str, int, str], Any] = {}

    # --- DAGs ------------------------------------------------------------------------------

    def add_dag(self, dag_id: str, *, paused: bool = False) -> Dag:
        """Make ``dag_id`` known (or change whether it is paused)."""
        with self._lock:
            self._dags[dag_id] = Dag(dag_id=dag_id, is_paused=paused)
            return self._dags[dag_id]

    def _dag(self, dag_id: str) -> Dag:
        dag = self._dags.get(dag_id)
        if dag is None:
            if self.strict:
                raise NotFound(f"Dag with dag_id: {dag_id!r} not found", status_code=404)
            dag = self.add_dag(dag_id)
        return dag

    # --- failures and calls ----------------------------------------------------------------

    def fail_next(self, exc: AirflowError | None = None) -> None:
        """Make the next transport call raise ``exc`` (default AirflowUnavailable); calls queue."""
        with self._lock:
            self._failures.append(exc or AirflowUnavailable("Fake Airflow cannot be reached (fail_next)."))

    def lose_next_answer(self, method: str = "trigger", exc: AirflowError | None = None) -> None:
        """Let the next call of ``method`` do its work, then raise ``exc`` (default AirflowTimeout).

        A trigger creates its run, yet the caller sees the error: the answer was
        lost after Airflow acted. Several calls queue. A failure set with
        :meth:`fail_next` comes first (the call then never happened); if the call
        fails on its own, that error wins and the lost answer is used up.
        """
        with self._lock:
            error = exc or AirflowTimeout("Fake Airflow did not answer in time (lose_next_answer).")
            self._lost.setdefault(method, []).append(error)

    def call_count(self, method: str) -> int:
        with self._lock:
            return sum(1 for name, _args in self.calls if name == method)

    @contextlib.contextmanager
    def _call(self, method: str, *args: Any) -> Iterator[None]:
        """Around a transport call: record it, then fail it if the test asked for that."""
        with self._lock:
            self.calls.append((method, args))
            if self._failures:
                raise self._failures.pop(0)
            if self.down:
                raise AirflowUnavailable("Fake Airflow is down (down = True).")
            lost = self._lost.get(method)
            error = lost.pop(0) if lost else None
            yield
            if error is not None:
                raise error  # the call's work is done; only its answer goes missing

    # --- runs ------------------------------------------------------------------------------

    def _find(self, ref: RunRef) -> _Run:
        if isinstance(ref, tuple):
            found = self._runs.get(ref)
            if found is None:
                raise NotFound(f"The DagRun {ref[0]}/{ref[1]} was not found", status_code=404)
            return found
        matches = [entry for (_dag, run_id), entry in self._runs.items() if run_id == ref]
        if not matches:
            raise NotFound(f"The DagRun {ref!r} was not found", status_code=404)
        if len(matches) > 1:
            raise ValueError(f"Run id {ref!r} exists in several DAGs: pass (dag_id, run_id).")
        return matches[0]

    def _store(self, run: DagRun) -> DagRun:
        key = (run.dag_id, run.run_id)
        if key in self._runs:
            raise Conflict(
                f"DAGRun with DAG ID: {run.dag_id!r} and run ID: {run.run_id!r} already exists",
                status_code=409,
            )
        self._seq += 1
        self._runs[key] = _Run(run=run, seq=self._seq, updated_at=self.clock())
        return run

    def _update(self, entry: _Run, **changes: Any) -> DagRun:
        entry.run = replace(entry.run, **changes)
        entry.updated_at = self.clock()
        return entry.run

    def add_run(
        self,
        dag_id: str,
        run_id: str | None = None,
        *,
        state: str = RunState.QUEUED,
        conf: Mapping[str, Any] | None = None,
        triggered_by: str = "ui",
        run_type: str = "manual",
        note: str | None = None,
    ) -> DagRun:
        """A run started outside this app (by default from Airflow's UI)."""
        with self._lock:
            self._dag(dag_id)
            now = self.clock()
            run = DagRun(
                dag_id=dag_id,
                run_id=run_id or f"{run_type}__{now.isoformat()}",
                state=RunState.QUEUED,
                run_type=run_type,
                triggered_by=triggered_by,
                run_after=now,
                queued_at=now,
                conf=dict(conf or {}),
                note=note,
            )
            self._store(run)
            return self.set_state((dag_id, run.run_id), state) if state != RunState.QUEUED else run

    def get(self, ref: RunRef) -> DagRun:
        """The run as the fake holds it (not recorded in ``calls``)."""
        with self._lock:
            return self._find(ref).run

    def runs(self, dag_id: str | None = None) -> list[DagRun]:
        """Every run (of ``dag_id``), oldest first."""
        with self._lock:
            entries = sorted(self._runs.values(), key=lambda e: e.seq)
            return [e.run for e in entries if dag_id is None or e.run.dag_id == dag_id]

    def set_state(self, ref: RunRef, state: str) -> DagRun:
        """Put a run in ``state``, filling start/end dates the way Airflow would.

        A run that had started and is queued again runs its default task again, in its next try.
        """
        if state not in RunState.values:
            raise ValueError(f"{state!r} is not a DAG run state ({', '.join(RunState.values)}).")
        with self._lock:
            entry = self._find(ref)
            now = self.clock()
            if state == RunState.QUEUED:
                if entry.run.state != RunState.QUEUED:
                    # Queued again: the default task's try ends here; the next starts with the run.
                    entry.tries += 1
                    entry.cleared_from = entry.run.state if entry.run.state in FINISHED_STATES else None
                return self._update(entry, state=state, queued_at=now, start_date=None, end_date=None)
            start = entry.run.start_date or now
            end = now if state in FINISHED_STATES else None
            return self._update(entry, state=state, start_date=start, end_date=end)

    def advance(self, ref: RunRef) -> DagRun:
        """One scheduler step: queued -> running -> success."""
        with self._lock:
            current = self._find(ref).run
            following = {RunState.QUEUED: RunState.RUNNING, RunState.RUNNING: RunState.SUCCESS}.get(
                current.state
            )
            if following is None:
                raise ValueError(f"Run {current.run_id!r} is finished ({current.state}); nothing to advance.")
            return self.set_state((current.dag_id, current.run_id), following)

    def finish(self, ref: RunRef, state: str = RunState.SUCCESS) -> DagRun:
        """End a run (success or failed), whatever its state."""
        if state not in FINISHED_STATES:
            raise ValueError(f"A run finishes as success or failed, not {state!r}.")
        return self.set_state(ref, state)

    # --- XCom and Django tasks ------------------------------------------------------------

    def set_xcom(self, ref: RunRef, task_id: str, key: str, value: Any, *, map_index: int = -1) -> None:
        """Push ``value`` as task ``task_id`` of the run would (JSON, as Airflow stores it)."""
        with self._lock:
            run = self._find(ref).run
            self._xcoms[(run.dag_id, run.run_id, task_id, map_index, key)] = json.loads(json.dumps(value))

    def run_tasks(self, retries: int | Mapping[str, int] = 0) -> list[DagRun]:
        """Run the queued runs of Django tasks (airflow_client.tasks) as the task DAG would,
        in this process; returns the runs finished.

        A run whose ``run_after`` has not come yet stays queued. ``retries``: how many
        more tries a failing task gets (per DAG id, as the DAG's ``retries`` would say).
        """
        from airflow_client import dags, task_runner  # the task runner needs Django's tasks

        finished = []
        for run in self.runs():
            spec = run.conf.get(dags.CONF_KEY)
            if run.state != RunState.QUEUED or not isinstance(spec, Mapping):
                continue
            if run.run_after is not None and run.run_after > self.clock():
                continue
            ref = (run.dag_id, run.run_id)
            self.set_state(ref, RunState.RUNNING)
            tries = 1 + (retries if isinstance(retries, int) else retries.get(run.dag_id, 0))
            for try_number in range(1, tries + 1):
                self.set_task(ref, dags.TASK_ID, state="running", try_number=try_number)
                envelope = task_runner.execute(
                    dict(spec), try_number=try_number, run_id=run.run_id, worker="fake-airflow"
                )
                self.set_xcom(ref, dags.TASK_ID, dags.XCOM_KEY, json.dumps(envelope))
                succeeded = envelope["status"] == dags.SUCCESSFUL
                if succeeded or try_number == tries:
                    state = RunState.SUCCESS if succeeded else RunState.FAILED
                    self.set_task(ref, dags.TASK_ID, state=state, try_number=try_number)
                    finished.append(self.set_state(ref, state))
                    break
                self.set_task(ref, dags.TASK_ID, state="up_for_retry", try_number=try_number)
        return finished

    # --- task instances and logs -----------------------------------------------------------

    def set_task(
        self,
        ref: RunRef,
        task_id: str,
        *,
        state: str | None,
        try_number: int = 1,
        map_index: int = -1,
        operator: str | None = "PythonOperator",
    ) -> None:
        """Give the run this task instance; the first call replaces the default task."""
        with self._lock:
            entry = self._find(ref)
            if entry.tasks is None:
                entry.tasks = {}
            now = self.clock()
            started = state is not None and state not in ("scheduled", RunState.QUEUED)
            entry.tasks[(task_id, map_index)] = _Task(
                state=state,
                try_number=try_number,
                start_date=now if started else None,
                end_date=now
                if state in (RunState.SUCCESS, RunState.FAILED, "skipped", "upstream_failed")
                else None,
                operator=operator,
            )
            entry.updated_at = now

    def add_log(
        self, ref: RunRef, task_id: str, *lines: str, try_number: int = 1, map_index: int = -1
    ) -> None:
        """Append lines to a task try's log (replacing the generated default lines)."""
        with self._lock:
            entry = self._find(ref)
            entry.logs.setdefault((task_id, try_number, map_index), []).extend(lines)

    def _tasks(self, entry: _Run) -> dict[tuple[str, int], _Task]:
        if entry.tasks is not None:
            return entry.tasks
        run = entry.run
        # The default task follows its run: no new try while queued, one more after.
        state = None if run.state == RunState.QUEUED else run.state
        return {
            (DEFAULT_TASK_ID, -1): _Task(
                state=state,
                try_number=entry.tries + (0 if state is None else 1),
                start_date=run.start_date,
                end_date=run.end_date,
                cleared_from=entry.cleared_from if state is None else None,
            )
        }

    def _log_lines(
        self, entry: _Run, task_id: str, task: _Task, try_number: int, map_index: int
    ) -> list[str]:
        lines = entry.logs.get((task_id, try_number, map_index))
        if lines is not None:
            return lines
        run = entry.run
        generated = [
            f"Fake Airflow: task {task_id} of run {run.dag_id}/{run.run_id}, try {try_number}",
            f"Run conf: {json.dumps(dict(run.conf), sort_keys=True)}",
        ]
        if try_number < task.try_number:
            generated.append(f"Task finished: {RunState.FAILED}")
        elif task.state in FINISHED_STATES or task.cleared_from:
            generated.append(f"Task finished: {task.state or task.cleared_from}")
        return generated

    # --- what the transport calls (recorded, may fail) -------------------------------------

    def _api_get_dag(self, dag_id: str) -> Dag:
        with self._call("get_dag", dag_id):
            return self._dag(dag_id)

    def _api_trigger(
        self,
        dag_id: str,
        run_id: str,
        conf: Mapping[str, Any],
        note: str | None,
        run_after: datetime | None = None,
    ) -> DagRun:
        with self._call("trigger", dag_id, run_id):
            # Like Airflow, a paused DAG accepts the run (it waits in the queue).
            self._dag(dag_id)
            if not _RUN_ID.match(run_id) or len(run_id) > FakeTransport.max_run_id_length:
                raise BadRequest(
                    f"The run_id {run_id!r} does not match Airflow's allowed pattern.", status_code=400
                )
            try:
                conf_copy = json.loads(json.dumps(dict(conf)))  # as Airflow stores it: JSON
            except (TypeError, ValueError) as exc:
                raise BadRequest(f"conf is not JSON: {exc}", status_code=400) from exc
            now = self.clock()
            run = DagRun(
                dag_id=dag_id,
                run_id=run_id,
                state=RunState.QUEUED,
                run_type="manual",
                triggered_by="rest_api",
                run_after=run_after or now,
                queued_at=now,
                conf=conf_copy,
                note=note,
            )
            return self._store(run)

    def _api_get_run(self, dag_id: str, run_id: str) -> DagRun:
        with self._call("get_run", dag_id, run_id):
            return self._find((dag_id, run_id)).run

    def _api_list_runs(self, query: RunQuery) -> list[DagRun]:
        with self._call("list_runs", query):
            for dag_id in query.dag_ids:
                self._dag(dag_id)  # strict: an unknown DAG is NotFound, as Airflow 3 says
            found = []
            for entry in sorted(self._runs.values(), key=_newest_first, reverse=True):
                run = entry.run
                if query.dag_ids and run.dag_id not in query.dag_ids:
                    continue
                if query.updated_since is not None and entry.updated_at < query.updated_since:
                    continue
                found.append(run)
                if len(found) >= query.limit:
                    break
            return found

    def _api_task_instances(self, dag_id: str, run_id: str) -> list[TaskInstance]:
        with self._call("task_instances", dag_id, run_id):
            entry = self._find((dag_id, run_id))
            return [
                TaskInstance(
                    task_id=task_id,
                    state=task.state,
                    try_number=task.try_number,
                    map_index=map_index,
                    start_date=task.start_date,
                    end_date=task.end_date,
                    duration=(task.end_date - task.start_date).total_seconds()
                    if task.start_date and task.end_date
                    else None,
                    operator=task.operator,
                )
                for (task_id, map_index), task in self._tasks(entry).items()
            ]

    def _api_task_log(
        self, dag_id: str, run_id: str, task_id: str, try_number: int, map_index: int, token: str | None
    ) -> LogChunk:
        with self._call("task_log", dag_id, run_id, task_id, try_number):
            entry = self._find((dag_id, run_id))
            task = self._tasks(entry).get((task_id, map_index))
            if task is None:
                raise NotFound(f"TaskInstance {task_id!r} (map index {map_index}) not found", status_code=404)
            if try_number > task.try_number or try_number < 0:
                raise NotFound(f"Task {task_id!r} has no try {try_number}", status_code=404)
            lines = self._log_lines(entry, task_id, task, try_number, map_index) if try_number else []
            start = _offset(token)
            end = start + self.log_page_size
            going_on = task.state not in FINISHED_STATES and not task.cleared_from
            more = end < len(lines) or (try_number == task.try_number and going_on)
            return LogChunk(
                lines=tuple(LogLine(text=text) for text in lines[start:end]),
                continuation_token=f"fake:{min(end, len(lines))}" if more and try_number else None,
            )

    def _api_xcom(self, dag_id: str, run_id: str, task_id: str, key: str, map_index: int) -> Any:
        with self._call("xcom", dag_id, run_id, task_id, key):
            self._find((dag_id, run_id))
            try:
                return self._xcoms[(dag_id, run_id, task_id, map_index, key)]
            except KeyError:
                raise NotFound(f"XCom entry with key: `{key}` not found", status_code=404) from None

    def _api_set_run_state(self, dag_id: str, run_id: str, state: str) -> DagRun:
        with self._call("set_run_state", dag_id, run_id, state):
            entry = self._find((dag_id, run_id))
            if state in FINISHED_STATES and entry.tasks is not None:
                # Airflow 3: running tasks take the run's new state, those not started are
                # skipped, finished ones stay as they ended.
                now = self.clock()
                for task in entry.tasks.values():
                    if task.state in _TASK_RUNNING:
                        task.state, task.end_date = state, now
                    elif task.state not in _TASK_FINISHED:
                        task.state, task.end_date, task.cleared_from = "skipped", now, None
            return self.set_state((dag_id, run_id), state)

    def _api_clear_run(self, dag_id: str, run_id: str, only_failed: bool) -> DagRun:
        with self._call("clear_run", dag_id, run_id, only_failed):
            entry = self._find((dag_id, run_id))
            if not self._clear_tasks(entry, only_failed):
                return entry.run  # nothing to clear: Airflow leaves the run alone
            if entry.run.state in FINISHED_STATES:
                return self.set_state((dag_id, run_id), RunState.QUEUED)
            # A run going on keeps its state; its running tasks restart.
            entry.updated_at = self.clock()
            return entry.run

    def _clear_tasks(self, entry: _Run, only_failed: bool) -> bool:
        """Clear the run's tasks (all, or the failed ones) as Airflow does; whether any was."""
        if entry.tasks is None:
            state = self._tasks(entry)[(DEFAULT_TASK_ID, -1)].state
            if state is None or (only_failed and state not in _TASK_FAILED):
                return False  # not started yet: clearing it changes nothing
            if state not in FINISHED_STATES:
                entry.tries += 1  # restarted: the run goes on in the task's next try
            # (A finished run is queued again, which ends the task's try: see set_state.)
            return True
        cleared = [task for task in entry.tasks.values() if not only_failed or task.state in _TASK_FAILED]
        for task in cleared:
            if task.state == "running":
                task.state = "restarting"  # Airflow stops it, then runs its next try
                continue
            # The try number stays until the next try starts, as in Airflow.
            task.cleared_from = task.state if task.state in _TASK_FINISHED else task.cleared_from
            task.state, task.start_date, task.end_date = None, None, None
        return bool(cleared)


def _newest_first(entry: _Run) -> tuple[datetime, int]:
    return (entry.run.run_after or datetime.min.replace(tzinfo=timezone.utc), entry.seq)


def _offset(token: str | None) -> int:
    if not token:
        return 0
    prefix, _, number = token.partition(":")
    if prefix != "fake" or not number.isdigit():
        raise BadRequest(f"Bad continuation token {token!r}.", status_code=400)
    return int(number)


_store_lock = threading.Lock()
_airflows: dict[str, FakeAirflow] = {}


def get_airflow(alias: str = "default") -> FakeAirflow:
    """The fake Airflow behind environment ``alias`` (created empty on first use)."""
    with _store_lock:
        if alias not in _airflows:
            _airflows[alias] = FakeAirflow(alias)
        return _airflows[alias]


def reset_all() -> None:
    """Reset every fake Airflow in place (references tests hold stay valid)."""
    with _store_lock:
        airflows = list(_airflows.values())
    for airflow in airflows:
        airflow.reset()


class FakeTransport(Transport):
    """A Transport backed by :func:`get_airflow` for its alias: all capabilities, v2 links."""

    defers_runs: ClassVar[bool] = True

    @property
    def airflow(self) -> FakeAirflow:
        return get_airflow(self.alias)

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(batch_listing=True, updated_since_filter=True)

    def get_dag(self, dag_id: str) -> Dag:
        return self.airflow._api_get_dag(dag_id)

    def trigger(
        self,
        dag_id: str,
        *,
        run_id: str,
        conf: Mapping[str, Any],
        note: str | None = None,
        run_after: datetime | None = None,
    ) -> DagRun:
        return self.airflow._api_trigger(dag_id, run_id, conf, note, run_after)

    def get_run(self, dag_id: str, run_id: str) -> DagRun:
        return self.airflow._api_get_run(dag_id, run_id)

    def list_runs(self, query: RunQuery) -> Iterator[DagRun]:
        # Evaluated now, not lazily: a failure set with fail_next surfaces at the call.
        return iter(self.airflow._api_list_runs(query))

    def task_instances(self, dag_id: str, run_id: str) -> list[TaskInstance]:
        return self.airflow._api_task_instances(dag_id, run_id)

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str, *, map_index: int = -1) -> Any:
        return self.airflow._api_xcom(dag_id, run_id, task_id, key, map_index)

    def set_run_state(self, dag_id: str, run_id: str, state: str) -> DagRun:
        return self.airflow._api_set_run_state(dag_id, run_id, settable_state(state))

    def clear_run(self, dag_id: str, run_id: str, *, only_failed: bool = False) -> DagRun:
        return self.airflow._api_clear_run(dag_id, run_id, only_failed)

    def task_log(
        self,
        dag_id: str,
        run_id: str,
        task_id: str,
        try_number: int,
        *,
        map_index: int = -1,
        continuation_token: str | None = None,
    ) -> LogChunk:
        return self.airflow._api_task_log(dag_id, run_id, task_id, try_number, map_index, continuation_token)

    def run_url(self, dag_id: str, run_id: str) -> str:
        return payloads.run_url(self._ui_url, dag_id, run_id, "v2")

    def log_url(
        self, dag_id: str, run_id: str, task_id: str, try_number: int | None = None, map_index: int = -1
    ) -> str:
        return payloads.log_url(
            self._ui_url, dag_id, run_id, task_id, "v2", try_number=try_number, map_index=map_index
        )

    @property
    def _ui_url(self) -> str:
        return str(self.options.get("UI_URL") or NO_UI_URL)
