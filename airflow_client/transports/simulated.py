"""A fake Airflow whose runs move by the clock: ``"TRANSPORT": "simulated"``.

For demos and for looking at the widget without any Airflow installed::

    AIRFLOW_ENVIRONMENTS = {
        "default": {"TRANSPORT": "simulated", "OPTIONS": {"SIMULATE_SECONDS": 8}},
    }

A triggered run (or one added with ``add_run``) is ``queued`` for the first
quarter of ``SIMULATE_SECONDS`` (default 8), then ``running``, then ends
``success``; a run whose conf has ``"fail": true`` ends ``failed``, like the
demo's DAGs, every time it runs. ``clear_run`` queues a finished run again and
the clock takes it through its next try; ``set_run_state`` sets the state
(a run queued that way runs again too). The runs
live in the same in-memory :class:`~airflow_client.transports.fake.FakeAirflow`
as the fake transport's (per process: run Django's development server with
``--noreload``, whose autoreloader would otherwise serve from a child process).
Tests can still drive runs by hand; the clock only moves runs that are unfinished.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any

from airflow_client.states import FINISHED_STATES, RunState
from airflow_client.transports.base import DagRun, LogChunk, RunQuery, TaskInstance
from airflow_client.transports.fake import FakeAirflow, FakeTransport

__all__ = ["DEFAULT_SECONDS", "SimulatedTransport", "simulated_state"]

#: How long a simulated run takes from trigger to its end, unless OPTIONS say otherwise.
DEFAULT_SECONDS = 8.0


def simulated_state(run: DagRun, now: datetime, seconds: float) -> str:
    """Where the clock has taken ``run``: queued, running, then success (or failed when asked)."""
    if run.state in FINISHED_STATES:
        return run.state
    queued = run.queued_at or run.run_after
    if queued is None:
        return run.state
    if run.run_after is not None and run.run_after > queued:
        queued = run.run_after  # deferred: waits in the queue until then
    age = now - queued
    if age >= timedelta(seconds=seconds):
        return RunState.FAILED if run.conf.get("fail") else RunState.SUCCESS
    if age >= timedelta(seconds=seconds / 4):
        return RunState.RUNNING
    return RunState.QUEUED


class SimulatedTransport(FakeTransport):
    """The fake transport, moving unfinished runs along by the clock before each read."""

    @property
    def seconds(self) -> float:
        options: Mapping[str, Any] = self.options.get("OPTIONS") or {}
        return float(options.get("SIMULATE_SECONDS", DEFAULT_SECONDS))

    def tick(self) -> None:
        """Move every unfinished run to the state its age gives it."""
        airflow: FakeAirflow = self.airflow
        now = airflow.clock()
        for run in airflow.runs():
            state = simulated_state(run, now, self.seconds)
            if state == run.state:
                continue
            if state in FINISHED_STATES and run.state == RunState.QUEUED:
                airflow.set_state(
                    (run.dag_id, run.run_id), RunState.RUNNING
                )  # a start date, as Airflow would
            airflow.set_state((run.dag_id, run.run_id), state)

    def get_run(self, dag_id: str, run_id: str) -> DagRun:
        self.tick()
        return super().get_run(dag_id, run_id)

    def list_runs(self, query: RunQuery) -> Iterator[DagRun]:
        self.tick()
        return super().list_runs(query)

    def task_instances(self, dag_id: str, run_id: str) -> list[TaskInstance]:
        self.tick()
        return super().task_instances(dag_id, run_id)

    # The clock first: a control acts on the run as it is by now.
    def set_run_state(self, dag_id: str, run_id: str, state: str) -> DagRun:
        self.tick()
        return super().set_run_state(dag_id, run_id, state)

    def clear_run(self, dag_id: str, run_id: str, *, only_failed: bool = False) -> DagRun:
        self.tick()
        return super().clear_run(dag_id, run_id, only_failed=only_failed)

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
        self.tick()
        return super().task_log(
            dag_id, run_id, task_id, try_number, map_index=map_index, continuation_token=continuation_token
        )
