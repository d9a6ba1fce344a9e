"""The interface every transport implements, and the typed results it returns.

Only transports talk to Airflow. Everything above them sees these frozen
dataclasses and the exceptions in :mod:`airflow_client.exceptions`.
"""

from __future__ import annotations

import abc
import math
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar
from urllib.parse import urlsplit

from django.core import checks

from airflow_client.conf import ENVIRONMENT_DEFAULTS
from airflow_client.exceptions import BadRequest, ConfigurationError
from airflow_client.states import FINISHED_STATES, RunState

#: The states set_run_state() can give a run (Airflow's "Mark as ..." and "queued").
SETTABLE_RUN_STATES = (RunState.SUCCESS, RunState.FAILED, RunState.QUEUED)


@dataclass(frozen=True)
class Capabilities:
    """What a transport (for the Airflow version it talks to) can do."""

    #: list_runs() takes several dag_ids in one query (one request); without it, give one
    #: DAG per query (or none: every DAG).
    batch_listing: bool = False
    #: list_runs() can filter on "updated since".
    updated_since_filter: bool = False


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
    """Part of a task try's log; pass ``continuation_token`` back for more.

    ``truncated``: the answer was larger than AIRFLOW_MAX_LOG_BYTES and was cut
    there; ``lines`` are those read before the cut, and the rest can only be
    read in Airflow's UI.
    """

    lines: tuple[LogLine, ...]
    continuation_token: str | None = None
    truncated: bool = False


@dataclass(frozen=True)
class RunQuery:
    """Filters for list_runs(); empty means no filter. Results come newest first."""

    #: several only with Capabilities.batch_listing.
    dag_ids: Sequence[str] = ()
    updated_since: datetime | None = None
    #: stop after this many runs in total (pages are followed until then).
    limit: int = 1000
    #: called with a BadResponse for each listed run that cannot be read; the others are
    #: still listed. None: such a run fails the listing.
    on_unreadable: Callable[[Exception], None] | None = field(default=None, compare=False)


def settable_state(state: str) -> str:
    """``state`` when set_run_state() may ask for it; else BadRequest, before any request."""
    if state not in SETTABLE_RUN_STATES:
        raise BadRequest(f"A run's state can be set to {', '.join(SETTABLE_RUN_STATES)}, not {state!r}.")
    return str(state)


def check_error(number: int, message: str, hint: str) -> checks.Error:
    """System check error ``airflow_client.E{number:03d}`` (the README lists every id)."""
    return checks.Error(message, hint=hint, id=f"airflow_client.E{number:03d}")


def is_http_url(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        parts = urlsplit(value)
    except ValueError:  # e.g. "http://[": an unclosed IPv6 bracket
        return False
    return parts.scheme in {"http", "https"} and bool(parts.netloc)


#: Environment options that are text (None: not set).
TEXT_OPTIONS = (
    "BASE_URL",
    "UI_URL",
    "USERNAME",
    "PASSWORD",
    "TOKEN",
    "ENV_NAME",
    "REGION",
    "SESSION_FACTORY",
)


def _is_number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)


def option_text(options: Mapping[str, Any], key: str) -> str:
    """A text option, or "" when it is not text (system check E018 reports it)."""
    value = options.get(key)
    return value if isinstance(value, str) else ""


def option_timeout(options: Mapping[str, Any]) -> float:
    """TIMEOUT in seconds, or the default when it is not a positive number (E010)."""
    value: Any = options.get("TIMEOUT")
    return float(value) if _is_number(value) and value > 0 else float(ENVIRONMENT_DEFAULTS["TIMEOUT"])


def option_retries(options: Mapping[str, Any]) -> int:
    """RETRIES (0 when not set), or the default when it is not an integer >= 0 (E017)."""
    value = options.get("RETRIES")
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return int(ENVIRONMENT_DEFAULTS["RETRIES"])
    return value


def _check_option_types(where: str, options: Mapping[str, Any]) -> list[checks.CheckMessage]:
    """E018: options of the wrong type (text that is not text, VERIFY, OPTIONS)."""
    errors: list[checks.CheckMessage] = []
    for key in TEXT_OPTIONS:
        value = options.get(key)
        if value is not None and not isinstance(value, str):
            errors.append(
                check_error(
                    18, f"{where}[{key!r}] must be a string, not {type(value).__name__}.", "See the README."
                )
            )
    verify = options.get("VERIFY", True)
    if isinstance(verify, str):
        if not verify or not os.path.exists(verify):
            errors.append(
                check_error(
                    18,
                    f"{where}['VERIFY'] is {verify!r}: no such CA bundle file or certificate folder.",
                    "VERIFY is True, False or the path of a CA bundle.",
                )
            )
    elif not isinstance(verify, bool):
        errors.append(
            check_error(
                18,
                f"{where}['VERIFY'] must be True, False or a CA bundle path, not {type(verify).__name__}.",
                "Default: True.",
            )
        )
    extra = options.get("OPTIONS")
    if extra is not None and not isinstance(extra, Mapping):
        errors.append(
            check_error(18, f"{where}['OPTIONS'] must be a dict, not {type(extra).__name__}.", "Default: {}.")
        )
    return errors


class Transport(abc.ABC):
    """Talks to one Airflow environment (one alias of AIRFLOW_ENVIRONMENTS)."""

    #: the longest run id this transport can use in request paths.
    max_run_id_length: ClassVar[int] = 250
    #: Whether trigger() can start a run later (``run_after``): known from the class alone,
    #: so Django's task framework can ask without a request.
    defers_runs: ClassVar[bool] = False

    @classmethod
    def check(cls, alias: str, options: Mapping[str, Any]) -> list[checks.CheckMessage]:
        """System check messages for ``options``, the AIRFLOW_ENVIRONMENTS entry as written.

        Gathered by :mod:`airflow_client.checks`. A subclass extends the list with
        its own options (custom ones live under ``OPTIONS``); these are common to all.
        """
        where = f"AIRFLOW_ENVIRONMENTS[{alias!r}]"
        errors: list[checks.CheckMessage] = []
        ui_url = options.get("UI_URL", "")
        if ui_url and not is_http_url(ui_url):
            errors.append(
                check_error(
                    5,
                    f"{where}['UI_URL'] is {ui_url!r}: it must be an http(s) URL.",
                    "The address browsers use for Airflow's UI; leave it out to use BASE_URL.",
                )
            )
        timeout = options.get("TIMEOUT", ENVIRONMENT_DEFAULTS["TIMEOUT"])
        if not _is_number(timeout) or timeout <= 0:
            errors.append(
                check_error(
                    10,
                    f"{where}['TIMEOUT'] must be a positive number of seconds, not {timeout!r}.",
                    "Default: 10.",
                )
            )
        retries = options.get("RETRIES", ENVIRONMENT_DEFAULTS["RETRIES"])
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            errors.append(
                check_error(
                    17, f"{where}['RETRIES'] must be an integer >= 0, not {retries!r}.", "Default: 2."
                )
            )
        return errors + _check_option_types(where, options)

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
        run_after: datetime | None = None,
    ) -> DagRun:
        """Start a run with our own run id (whether the DAG is paused is the caller's question).

        ``run_after`` (only where ``defers_runs``): the run waits in the queue until then.
        Raises NotFound, Conflict (run id exists: read it with get_run), BadRequest, ...
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

    # Operators' controls: writes, never retried once Airflow may have seen them.
    @abc.abstractmethod
    def set_run_state(self, dag_id: str, run_id: str, state: str) -> DagRun:
        """Set a run's state, as Airflow's "Mark as success/failed" does; the run as Airflow now has it.

        ``state``: "success", "failed" or "queued" (anything else is a BadRequest and
        nothing is sent). Marking a run that is going on ends it: Airflow stops its
        running tasks and skips the ones not started. Raises NotFound (no such DAG
        or run), BadRequest, AuthenticationFailed (not allowed to edit runs), ...
        """

    @abc.abstractmethod
    def clear_run(self, dag_id: str, run_id: str, *, only_failed: bool = False) -> DagRun:
        """Re-run a run's tasks (all, or only the failed and upstream-failed ones); the run as now.

        A finished run goes back to ``queued`` (no start or end date) and the
        scheduler runs the cleared tasks again, each in its next try. A run still
        going keeps its state (its running tasks restart). When no task matches
        (``only_failed`` on a run without failed tasks), nothing changes. Raises
        NotFound (no such DAG or run), AuthenticationFailed, ...
        """

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str, *, map_index: int = -1) -> Any:
        """The value a task instance pushed to XCom under ``key``, as Airflow stores it
        (JSON values as they are). Raises NotFound when there is none.

        Not abstract: a transport of its own that cannot read XComs says so here.
        """
        raise ConfigurationError(f"The {type(self).__name__} transport cannot read XComs.")

    # Links for browsers (built from UI_URL; no request is made).
    @abc.abstractmethod
    def run_url(self, dag_id: str, run_id: str) -> str: ...

    @abc.abstractmethod
    def log_url(
        self, dag_id: str, run_id: str, task_id: str, try_number: int | None = None, map_index: int = -1
    ) -> str: ...

    def close(self) -> None:  # noqa: B027  (optional hook: most transports hold nothing)
        """Release connections (called when settings change)."""
