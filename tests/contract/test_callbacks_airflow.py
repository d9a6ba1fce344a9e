"""The DAG-side callbacks inside the real Airflow 3.3 and 2.11 environments (no running Airflow needed).

Each test runs that Airflow's own python (the virtual environment scripts/airflow.sh
installs): the module imports without Django, as a package or as a file copied
alone into a DAG folder, and turns the context objects Airflow itself builds into
the events of the wire format, read here by a local receiver. Skipped when the
environment is not installed, unless DAC_REQUIRE_SERVICES=1 (then they fail).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from airflow_client import callbacks
from tests.contract import airflow_venvs
from tests.event_receiver import running_receiver

pytestmark = pytest.mark.contract

ROOT = Path(__file__).resolve().parents[2]
PROBE = Path(__file__).with_name("callbacks_probe.py")
SECRET = "contract-shared-secret"
RUN_ID = "manual__2025-03-01T09:00:00+00:00"
#: Prints the file imported and every Django or Airflow module that came with it.
IMPORT_CHECK = """
import json, sys, importlib
module = importlib.import_module(sys.argv[1])
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("django", "airflow"))
print(json.dumps({"file": module.__file__, "loaded": loaded, "all": module.__all__,
                  "signature": module.signature("k", "1", b"{}")}))
"""


@pytest.fixture(params=[3, 2], ids=["airflow3", "airflow2"])
def major(request: pytest.FixtureRequest) -> int:
    python = airflow_venvs.python(request.param)
    if not python.exists():
        reason = f"No Airflow {request.param} environment at {python} (scripts/airflow.sh install {request.param})."
        if os.environ.get("DAC_REQUIRE_SERVICES") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return int(request.param)


def run(major: int, args: list[str], *, path: Path, cwd: Path, **env: str) -> dict[str, Any]:
    """Run Airflow ``major``'s python with only ``path`` importable (and Airflow's own packages)."""
    home = cwd / "airflow-home"
    home.mkdir(exist_ok=True)
    result = subprocess.run(
        [str(airflow_venvs.python(major)), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
        env={
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", str(cwd)),
            "PYTHONPATH": str(path),
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            **env,
        },
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert SECRET not in result.stdout + result.stderr
    output: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    output["stderr"] = result.stderr
    return output


def test_the_package_imports_without_django_or_airflow(major: int, tmp_path: Path) -> None:
    packages = tmp_path / "packages"
    packages.mkdir()
    (packages / "airflow_client").symlink_to(ROOT / "airflow_client", target_is_directory=True)
    out = run(major, ["-c", IMPORT_CHECK, "airflow_client.callbacks"], path=packages, cwd=tmp_path)
    assert Path(out["file"]).resolve() == ROOT / "airflow_client" / "callbacks.py"
    assert out["loaded"] == []
    assert out["all"] == callbacks.__all__
    assert out["signature"] == callbacks.signature("k", "1", b"{}")


def test_the_file_copied_alone_into_a_dag_folder_imports_under_another_name(
    major: int, tmp_path: Path
) -> None:
    dags = tmp_path / "dags"
    dags.mkdir()
    shutil.copy(ROOT / "airflow_client" / "callbacks.py", dags / "airflow_client_callbacks.py")
    out = run(major, ["-c", IMPORT_CHECK, "airflow_client_callbacks"], path=dags, cwd=tmp_path)
    assert out["file"] == str(dags / "airflow_client_callbacks.py")
    assert out["loaded"] == []
    assert out["signature"] == callbacks.signature("k", "1", b"{}")


def test_events_from_the_contexts_airflow_builds(major: int, tmp_path: Path) -> None:
    """(c) Airflow's own task instance, DAG run and DAG objects, the connection read by Airflow's API."""
    packages = tmp_path / "packages"
    packages.mkdir()
    (packages / "airflow_client").symlink_to(ROOT / "airflow_client", target_is_directory=True)
    if major == 2:  # Airflow 2's task context reads the previous runs from its database
        template = airflow_venvs.database_template(2)
        if not template.exists():
            pytest.skip(f"No Airflow 2 database template at {template} (scripts/airflow.sh install 2).")
        (tmp_path / "airflow-home").mkdir()
        shutil.copy(template, tmp_path / "airflow-home" / "airflow.db")
    with running_receiver() as receiver:
        connection = {
            "conn_type": "http",
            "host": receiver.url,
            "password": SECRET,
            "extra": {"environment": "a"},
        }
        out = run(
            major,
            [str(PROBE), str(major)],
            path=packages,
            cwd=tmp_path,
            **{
                callbacks.CONNECTION_ENV: json.dumps(connection),
                "PROBE_URI_CONNECTION": f"https://:{SECRET}@django.example:8443/airflow-client/events/?environment=b",
            },
        )
    assert "not sent" not in out["stderr"]
    assert out["delivered"] is True
    # Airflow's own connection API found it, in both of its environment-variable forms.
    assert out["json_form"] == receiver.url
    assert out["uri_form"] == "https://django.example:8443/airflow-client/events/"
    assert out["uri_extra"] == {"environment": "b"}

    assert all(request.signed_with(SECRET) for request in receiver.received)
    events = {event["kind"]: event for event in receiver.events}
    expected = ["task_start", "task_retry", "task_failure", "task_success", "dag_success", "pages.fetched"]
    if major == 3:
        expected.insert(5, "dag_failure")
    assert [event["kind"] for event in receiver.events] == expected
    for event in events.values():
        assert event["environment"] == "a"
        run_ = event["run"]
        assert (run_["dag_id"], run_["run_id"], run_["task_count"]) == ("probe_harvest", RUN_ID, 2)
    for kind in ("task_start", "task_success", "task_retry", "task_failure", "dag_success", "pages.fetched"):
        run_ = events[kind]["run"]
        assert run_["conf"] == {"finding_aid_id": 7}
        assert run_["run_type"] == "manual"
        assert run_["start_date"] == "2025-03-01T09:00:02+00:00"
        if major == 3:
            assert (run_["logical_date"], run_["run_after"]) == (None, "2025-03-01T09:00:00+00:00")
        else:
            assert (run_["logical_date"], run_["queued_at"]) == ("2025-03-01T09:00:00+00:00",) * 2
    assert events["task_start"]["task"] == {
        "task_id": "fetch",
        "map_index": -1,
        "try_number": 1,
        "state": "running",
        "start_date": "2025-03-01T09:00:02+00:00",
        "end_date": None,
        "error": None,
    }
    assert events["task_success"]["task"]["state"] == "success"
    assert (events["task_retry"]["task"]["state"], events["task_retry"]["task"]["error"]) == (
        "up_for_retry",
        "first try fails",
    )
    failure = events["task_failure"]["task"]
    assert (failure["try_number"], failure["state"], failure["error"]) == (2, "failed", "broken on purpose")
    assert events["dag_success"]["task"] is None
    assert events["dag_success"]["run"]["state"] == "success"
    assert events["pages.fetched"]["payload"] == {"count": 500}
    if major == 3:  # the dag processor's context without a last task: dag, run_id and reason only
        assert events["dag_failure"]["run"]["state"] == "failed"
        assert events["dag_failure"]["run"]["conf"] == {}
