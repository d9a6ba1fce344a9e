"""The interface every transport implements, and the typed results it returns.

Only transports talk to Airflow. Everything above them sees these frozen
dataclasses and the exceptions in :mod:`airflow_client.exceptions`.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

#: Airflow's DAG-run states. ``success`` and ``failed`` are final.
QUEUED, RUNNING, SUCCESS, FAILED = "queued", "running", "success", "failed"
RUN_STATES = (QUEUED, RUNNING, SUCCESS, FAILED)
FINISHED_STATES = frozenset({SUCCESS, FAILED})


@dataclass(frozen=True)
class Capabilities:
    """What a transport (for the Airflow version it talks to) can do."""

    #: list_runs() can filter on a conf substring server-side (Airflow 3.2+).
    conf_filter: bool = False
    #: list_runs() can ask for several DAGs in one request.
    batch_listing: bool = False
    #: list_runs() can filter on "updated since".
    updated_since_filter: bool = False
    #: task logs arrive as structured events (timestamp, level) rather than text.
    structured_logs: bool = False
    #: runs carry run_after / queued_at / triggered_by (Airflow 3).
    run_after: bool = False


@dataclass(frozen=True)
class DagRun:
    """One DAG run as Airflow reports it."""

    dag_id: str
    run_id: str
    state: str
    run_type: str = ""
    #: how the run was started (Airflow 3: rest_api, ui, cli, timetable...); None when unknown.
    triggered_by: str | None = None
    triggering_user: str | None = None
    logical_date: datetime | None = None
    run_after: datetime | None = None
    queued_at: datetime | None = None
    start_date: datetime | None = None
    end_date: datetime | None = None
    conf: Mapping[str, Any] = field(default_factory=dict)
    note: str | None = None

    @property
    def finished(self) -> bool:
        return self.state in FINISHED_STATES


@dataclass(frozen=True)
class Dag:
    dag_id: str
    is_paused: bool
    is_active: bool = True


@dataclass(frozen=True)
class TaskInstance:
    task_id: str
    state: str | None
    try_number: int
    map_index: int = -1
    start_date: datetime | None = None
    end_date: datetime | None = None
    duration: float | None = None
    operator: str | None = None


@dataclass(frozen=True)
class LogLine:
    text: str
    timestamp: datetime | None = None
    level: str | None = None


@dataclass(frozen=True)
class LogChunk:
    """Part of a task try's log; pass ``continuation_token`` back for more."""

    lines: tuple[LogLine, ...]
    continuation_token: str | None = None


@dataclass(frozen=True)
class Health:
    healthy: bool
    version: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RunQuery:
    """Filters for list_runs(); empty means no filter. Results come newest first."""

    dag_ids: Sequence[str] = ()
    states: Sequence[str] = ()
    updated_since: datetime | None = None
    #: substring of the run's conf JSON; ignored (not an error) without Capabilities.conf_filter,
    #: so callers must re-check conf themselves.
    conf_contains: str | None = None
    #: stop after this many runs in total (pages are followed until then).
    limit: int = 1000


class Transport(abc.ABC):
    """Talks to one Airflow environment (one alias of AIRFLOW_ENVIRONMENTS)."""

    #: the longest run id this transport can use in request paths.
    max_run_id_length: ClassVar[int] = 250

    def __init__(self, alias: str, options: Mapping[str, Any]) -> None:
        self.alias = alias
        self.options = options

    @property
    @abc.abstractmethod
    def capabilities(self) -> Capabilities: ...

    @abc.abstractmethod
    def get_dag(self, dag_id: str) -> Dag: ...

    @abc.abstractmethod
    def trigger(
        self,
        dag_id: str,
        *,
        run_id: str,
        conf: Mapping[str, Any],
        note: str | None = None,
        check_paused: bool = True,
    ) -> DagRun:
        """Start a run with our own run id.

        Raises DagPaused (when check_paused and the DAG is paused), NotFound,
        Conflict (run id exists: read it with get_run), BadRequest, ...
        Never retried blindly: a timeout here means the outcome is unknown.
        """

    @abc.abstractmethod
    def get_run(self, dag_id: str, run_id: str) -> DagRun: ...

    @abc.abstractmethod
    def list_runs(self, query: RunQuery) -> Iterator[DagRun]:
        """Runs matching ``query``, newest first, following pages."""

    @abc.abstractmethod
    def task_instances(self, dag_id: str, run_id: str) -> list[TaskInstance]: ...

    @abc.abstractmethod
    def task_log(
        self,
        dag_id: str,
        run_id: str,
        task_id: str,
        try_number: int,
        *,
        map_index: int = -1,
        continuation_token: str | None = None,
    ) -> LogChunk: ...

    @abc.abstractmethod
    def clear_run(self, dag_id: str, run_id: str, *, only_failed: bool = False) -> DagRun: ...

    @abc.abstractmethod
    def health(self) -> Health: ...

    # Links for browsers (built from UI_URL; no request is made).
    @abc.abstractmethod
    def run_url(self, dag_id: str, run_id: str) -> str: ...

    @abc.abstractmethod
    def log_url(
        self, dag_id: str, run_id: str, task_id: str, try_number: int | None = None, map_index: int = -1
    ) -> str: ...

    def close(self) -> None:  # noqa: B027  (optional hook: most transports hold nothing)
        """Release connections (called when settings change)."""
