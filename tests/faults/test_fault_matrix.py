"""The fault matrix: every fault of a misbehaving Airflow through every entry point.

For each fault x entry point (see conftest.FAULTS and ENTRIES):
* the transport raises the package's own error (or answers, when the fault is survivable);
* the widget's poll answers 200 with the last known state and a readable notice;
* a trigger answers 200 with a readable error and keeps its JobTrigger; when Airflow
  may have started the run, a second press does not start a second one;
* sync() reports the fault and carries on, without raising;
* the run detail and log pages answer 200 with a readable line;
* nothing recorded is lost, and no entry point waits much longer than TIMEOUT.
The secrets are checked over the same matrix in test_secrets.py.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from airflow_client.exceptions import AirflowClientError, AuthenticationFailed, NotFound
from airflow_client.models import JobRun, JobTrigger
from airflow_client.syncing import SyncReport
from tests.faults.conftest import (
    DAG,
    ENTRIES,
    ERROR,
    FAULT_IDS,
    FAULTS,
    GONE,
    HTMX,
    MAX_SECONDS,
    OK,
    Fault,
    Outcome,
    Scene,
    build_scene,
    inject,
    run_entry,
    trigger_url,
)
from tests.faults.server import FaultyAirflow

pytestmark = pytest.mark.django_db(transaction=False)

#: Words that say Airflow could not be reached: wrong for an authentication failure.
UNREACHABLE = re.compile(r"cannot be reached|could not be reached|unreachable|cannot reach", re.IGNORECASE)
NOTICE = re.compile(r'class="ac-notice"[^>]*>\s*([^<]+)<')


@pytest.mark.parametrize("entry", ENTRIES)
@pytest.mark.parametrize("fault", FAULTS, ids=FAULT_IDS)
def test_fault(
    fault: Fault, entry: str, faulty_airflow: FaultyAirflow, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    scene = build_scene(faulty_airflow, settings)
    inject(scene, fault, entry, settings)

    outcome = run_entry(scene, fault, entry, caplog)

    expected = fault.expected(entry)
    assert outcome.seconds < MAX_SECONDS, f"took {outcome.seconds:.1f} s"
    if entry.startswith("transport_"):
        check_transport(outcome, expected)
    else:
        assert outcome.exception is None, f"{entry} raised {outcome.exception!r}"
    if entry == "status":
        check_status(scene, outcome, expected)
    elif entry in ("trigger", "trigger_post"):
        check_trigger(scene, outcome, expected, faulty_airflow)
    elif entry == "run_detail":
        check_page(outcome, expected, found="extract")
    elif entry == "run_log":
        check_page(outcome, expected, found="extracting")
    elif entry == "sync":
        check_sync(scene, outcome, expected)
    if fault.auth and expected == ERROR:
        check_said_authentication(outcome)
    # Nothing recorded is lost: both recorded runs still exist, the finished one as it was.
    assert JobRun.objects.filter(pk=scene.known.pk).exists()
    scene.other_run.refresh_from_db()
    assert scene.other_run.state == "success"


def check_transport(outcome: Outcome, expected: str) -> None:
    if expected == OK:
        assert outcome.exception is None, repr(outcome.exception)
        return
    assert isinstance(outcome.exception, AirflowClientError), repr(outcome.exception)
    assert str(outcome.exception).strip()
    if expected == GONE:
        assert isinstance(outcome.exception, NotFound)
    if outcome.fault.name == "wrong_password":
        assert isinstance(outcome.exception, AuthenticationFailed), repr(outcome.exception)


def check_status(scene: Scene, outcome: Outcome, expected: str) -> None:
    # 286: htmx's "stop polling", for a run that has finished.
    assert outcome.status_code == (200 if expected == ERROR else 286)
    known = JobRun.objects.get(pk=scene.known.pk)
    if expected == OK:
        assert known.state == "success"
        assert not known.refresh_error
        return
    if expected == GONE:
        assert known.state == "failed"
        assert known.refresh_error
        return
    assert known.state == "running", "the last known state is kept"
    assert ">Running<" in outcome.html
    assert known.refresh_error
    assert NOTICE.search(outcome.html), "no readable notice"


def check_trigger(scene: Scene, outcome: Outcome, expected: str, server: FaultyAirflow) -> None:
    assert outcome.status_code == 200
    triggers = JobTrigger.objects.all()  # the scene's only trigger
    new_runs = JobRun.objects.for_object(scene.other).exclude(pk=scene.other_run.pk)
    if expected == OK:
        assert new_runs.count() == 1
        return
    assert triggers.count() == 1, "the trigger request is kept"
    notice = NOTICE.search(outcome.html)
    assert notice, "no readable error"
    assert notice.group(1).strip(), "an empty error"
    assert triggers.get().error or triggers.get().outcome in JobTrigger.OPEN
    if outcome.fault.acted and outcome.entry == "trigger_post":
        # Airflow started the run before its answer went wrong: pressing again must not
        # start a second one (the first is looked up instead).
        server.clear_scripts()
        server.run_overrides.clear()
        server.act_first = False
        outcome_again = scene.client.post(trigger_url(scene), {"uid": "1"}, headers=HTMX)
        assert outcome_again.status_code == 200
        started = [
            run
            for (dag_id, run_id), run in server.runs.items()
            if dag_id == DAG
            and run_id != scene.other_run.dag_run_id
            and run["conf"] == {"finding_aid_id": scene.other.pk}
        ]
        assert len(started) == 1, f"{len(started)} DAG runs started for one record"


def check_page(outcome: Outcome, expected: str, found: str) -> None:
    assert outcome.status_code == 200
    if expected == OK:
        assert found in outcome.html
        return
    notice = NOTICE.search(outcome.html)
    assert notice, "no readable error"
    assert notice.group(1).strip(), "an empty error"


def check_sync(scene: Scene, outcome: Outcome, expected: str) -> None:
    report = outcome.result
    assert isinstance(report, SyncReport)
    known = JobRun.objects.get(pk=scene.known.pk)
    if expected == OK:
        assert report.errors == (), str(report)
        assert known.state == "success"
        return
    if expected == GONE:
        assert known.state == "failed"
        assert known.refresh_error
        return
    assert report.errors, "the fault is reported"
    assert all(error.strip() for error in report.errors)
    assert known.state == "running", "the last known state is kept"


def check_said_authentication(outcome: Outcome) -> None:
    """An authentication failure is never reported as Airflow being unreachable (defect 15)."""
    shown = []
    if outcome.html:
        shown += NOTICE.findall(outcome.html)
    if isinstance(outcome.result, SyncReport):
        shown.append(str(outcome.result))
    if outcome.exception is not None:
        shown.append(str(outcome.exception))
    shown += [t.error for t in JobTrigger.objects.all()] + [r.refresh_error for r in JobRun.objects.all()]
    for text in shown:
        assert not UNREACHABLE.search(text or ""), f"an authentication failure said: {text!r}"
