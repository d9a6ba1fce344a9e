"""A real Airflow 3 and Airflow 2 for the contract tests (started by scripts/airflow.sh).

``real_airflow`` gives each in turn to the transport's tests; ``airflow3_job``
registers a Job on the real Airflow 3 for the tests of trigger/refresh/sync.

``make test`` starts both with the DAGs of ``tests/contract/dags`` and exports
DAC_AIRFLOW3_URL / DAC_AIRFLOW2_URL. Without a URL that major's tests are
skipped, unless DAC_REQUIRE_SERVICES=1 (then they fail: a missing Airflow must
not pass silently).

Waiting for runs is the slow part, so the runs whose outcome several tests read
are triggered once per session, on every configured Airflow before any test
waits: they finish in parallel while the first tests run.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.core.cache import cache

from airflow_client import conf
from airflow_client.exceptions import AirflowError, AirflowUnavailable, Conflict, NotFound
from airflow_client.jobs import Job, register, unregister
from airflow_client.states import FINISHED_STATES, RunState
from airflow_client.transports.base import DagRun, Transport
from airflow_client.transports.rest import RestTransport

URL_VARIABLES = {3: "DAC_AIRFLOW3_URL", 2: "DAC_AIRFLOW2_URL"}
DAG_IDS = ("contract_success", "contract_fail", "contract_slow", "contract_paused", "contract_flaky")
#: the dag-processor parses the DAG folder a few seconds after start-up.
DAGS_VISIBLE_SECONDS = 90.0
#: a run of one or two tiny tasks (seconds when idle; far more on a busy 2-core machine).
RUN_SECONDS = 120.0
POLL_SECONDS = 0.5

#: the runs each Airflow gets at session start: label -> (dag_id, conf).
SESSION_RUNS: dict[str, tuple[str, dict[str, Any]]] = {
    "success": ("contract_success", {"token": uuid.uuid4().hex}),
    "fail": ("contract_fail", {}),
    # A second run of one DAG, for the newest-first listing.
    "fail_again": ("contract_fail", {}),
    # Runs that test_controls_contract.py re-runs or marks (no other test reads them).
    "flaky": ("contract_flaky", {}),
    "flaky_failed_only": ("contract_flaky", {}),
    "fail_to_mark": ("contract_fail", {}),
}
#: runs started when a test asks (Airflow.running): label -> (dag_id, conf).
ON_DEMAND_RUNS: dict[str, tuple[str, dict[str, Any]]] = {
    "slow": ("contract_slow", {"seconds": 30}),
}


def start_run(transport: Transport, dag_id: str, run_id: str, conf: dict[str, Any], **extra: Any) -> DagRun:
    """Start a run straight at Airflow, as its UI would, riding out a busy Airflow.

    Airflow on SQLite answers 500 when its database stays locked for 5 s (tasks
    write to it at the same time); the run id is ours, so asking again is safe.
    """
    for attempt in range(3):
        try:
            return transport.trigger(dag_id, run_id=run_id, conf=conf, **extra)
        except AirflowUnavailable:
            if attempt == 2:
                raise
        except Conflict:  # an attempt that answered 500 had created it after all
            return transport.get_run(dag_id, run_id)
        time.sleep(2)
    raise AssertionError("unreachable")


def new_run_id(label: str) -> str:
    return f"contract-{label}-{uuid.uuid4().hex[:12]}"


def make_transport(url: str, **options: Any) -> RestTransport:
    settings = {"BASE_URL": url, "USERNAME": "admin", "PASSWORD": "admin", "TIMEOUT": 30, **options}
    return RestTransport("contract", conf.environment(settings))


def wait_for_state(
    transport: RestTransport, dag_id: str, run_id: str, states: Collection[str], seconds: float
) -> DagRun:
    deadline = time.monotonic() + seconds
    while True:
        run = transport.get_run(dag_id, run_id)
        if run.state in states:
            return run
        if time.monotonic() > deadline:
            pytest.fail(
                f"{dag_id} run {run_id} is still {run.state!r} after {seconds:g} s (wanted {states})."
            )
        time.sleep(POLL_SECONDS)


@dataclass
class Airflow:
    """One running Airflow, its transport and the runs triggered on it for the session."""

    major: int
    url: str
    transport: RestTransport
    #: label -> the run as trigger() returned it.
    triggered: dict[str, DagRun] = field(default_factory=dict)
    _final: dict[str, DagRun] = field(default_factory=dict)

    def conf_of(self, label: str) -> dict[str, Any]:
        return SESSION_RUNS[label][1]

    def finished(self, label: str) -> DagRun:
        """The session run ``label`` once it has finished (waited for at most once)."""
        if label not in self._final:
            run = self.triggered[label]
            self._final[label] = wait_for_state(
                self.transport, run.dag_id, run.run_id, FINISHED_STATES, RUN_SECONDS
            )
        return self._final[label]

    def running(self, label: str, *, note: str | None = None) -> DagRun:
        """A new run ``label`` of ON_DEMAND_RUNS, once it runs; fails if it finished first.

        Started when asked, not with the session's runs: in a long, shuffled suite
        a run started at the beginning has finished by the time its test comes.
        """
        dag_id, run_conf = ON_DEMAND_RUNS[label]
        run = start_run(self.transport, dag_id, new_run_id(label), run_conf, note=note)
        run = wait_for_state(
            self.transport, run.dag_id, run.run_id, {RunState.RUNNING, *FINISHED_STATES}, RUN_SECONDS
        )
        if run.finished:
            pytest.fail(f"{run.dag_id} run {run.run_id} finished ({run.state}) before it was seen running.")
        return run


@dataclass(frozen=True)
class Unavailable:
    reason: str
    #: False: no URL given, so the tests may be skipped (unless DAC_REQUIRE_SERVICES=1).
    configured: bool


def _wait_for_dags(transport: RestTransport) -> None:
    deadline = time.monotonic() + DAGS_VISIBLE_SECONDS
    missing = list(DAG_IDS)
    while True:
        try:
            for dag_id in list(missing):
                transport.get_dag(dag_id)
                missing.remove(dag_id)
        except (NotFound, AirflowUnavailable):
            pass  # NotFound until parsed; the API can also still be warming up
        if not missing:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"DAGs {missing} not visible after {DAGS_VISIBLE_SECONDS:g} s.")
        time.sleep(POLL_SECONDS)


def _prepare(major: int, url: str) -> Airflow:
    airflow = Airflow(major=major, url=url, transport=make_transport(url))
    _wait_for_dags(airflow.transport)
    for label, (dag_id, run_conf) in SESSION_RUNS.items():
        airflow.triggered[label] = start_run(airflow.transport, dag_id, new_run_id(label), run_conf)
    return airflow


@pytest.fixture(scope="session")
def airflows() -> Iterator[dict[int, Airflow | Unavailable]]:
    """Each major's Airflow, or why it cannot be used (reported by ``real_airflow`` and ``airflow3_job``)."""
    found: dict[int, Airflow | Unavailable] = {}
    for major, variable in URL_VARIABLES.items():
        url = os.environ.get(variable, "")
        if not url:
            reason = f"{variable} is not set (scripts/test.sh starts Airflow {major} and sets it)."
            found[major] = Unavailable(reason, configured=False)
            continue
        try:
            found[major] = _prepare(major, url)
        except (AirflowError, TimeoutError) as exc:
            found[major] = Unavailable(f"Airflow {major} at {url} is not usable: {exc}", configured=True)
    yield found
    for airflow in found.values():
        if isinstance(airflow, Airflow):
            airflow.transport.close()


def _usable(found: Airflow | Unavailable) -> Airflow:
    """``found`` if it is a running Airflow; else skip the test (no URL given) or fail it."""
    if isinstance(found, Airflow):
        return found
    if not found.configured and os.environ.get("DAC_REQUIRE_SERVICES") != "1":
        pytest.skip(found.reason)
    pytest.fail(found.reason)


@pytest.fixture(params=[3, 2], ids=["airflow3", "airflow2"])
def real_airflow(request: pytest.FixtureRequest, airflows: dict[int, Airflow | Unavailable]) -> Airflow:
    """Each real Airflow in turn (3, then 2); skipped or failed like ``airflows`` says."""
    return _usable(airflows[request.param])


class ContractSuccess(Job):
    """The contract DAG that succeeds, started through the app's records on the real Airflow 3."""

    dag_id = "contract_success"
    model = "testapp.FindingAid"
    conf_key = "finding_aid_id"
    environment = "airflow3"


@pytest.fixture
def airflow3_job(settings: Any, airflows: dict[int, Airflow | Unavailable]) -> Iterator[type[Job]]:
    """ContractSuccess registered against the real Airflow 3; runs are re-read at every refresh()."""
    airflow3 = _usable(airflows[3])
    settings.AIRFLOW_ENVIRONMENTS = {
        **settings.AIRFLOW_ENVIRONMENTS,
        "airflow3": {
            "TRANSPORT": "rest",
            "BASE_URL": airflow3.url,
            "USERNAME": "admin",
            "PASSWORD": "admin",
            "TIMEOUT": 30,  # a busy 2-core machine: the real Airflow can be slow to answer
        },
    }
    settings.AIRFLOW_REFRESH_INTERVAL = 0
    cache.clear()  # sync's "listed up to" marks
    register(ContractSuccess)
    yield ContractSuccess
    unregister(ContractSuccess)
    cache.clear()
