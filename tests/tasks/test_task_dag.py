"""The Airflow side (airflow_client.dags) running tasks in the site's own python, without Airflow here.

run_in_site starts this checkout's python with the test settings, as the task DAG
does on Airflow's workers; _execute is the DAG's task, given the context Airflow would.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from airflow_client import dags

ROOT = Path(__file__).resolve().parents[2]
SITE = {"python": sys.executable, "settings": "tests.settings", "cwd": str(ROOT)}


def spec(path: str, *args: Any, **extra: Any) -> dict[str, Any]:
    return {"version": 1, "path": path, "args": list(args), "kwargs": {}, "backend": "default", **extra}


def test_the_site_runs_the_task_and_hands_back_its_value() -> None:
    lines: list[str] = []

    envelope = dags.run_in_site(
        spec("tests.testapp.tasks.add", 2, 40), try_number=1, log=lines.append, **SITE
    )

    assert envelope["status"] == "SUCCESSFUL"
    assert (envelope["return_value"], envelope["try_number"], envelope["traceback"]) == (42, 1, "")
    assert "Django task tests.testapp.tasks.add: SUCCESSFUL (try 1)" in lines


def test_a_raising_task_hands_back_its_class_and_traceback_and_logs_it() -> None:
    lines: list[str] = []

    envelope = dags.run_in_site(
        spec("tests.testapp.tasks.flaky", takes_context=True), try_number=1, log=lines.append, **SITE
    )

    assert (envelope["status"], envelope["exception_class_path"]) == ("FAILED", "builtins.RuntimeError")
    assert envelope["traceback"].rstrip().endswith("RuntimeError: attempt 1 fails on purpose")
    assert "RuntimeError: attempt 1 fails on purpose" in lines  # the task's log shows it too
    again = dags.run_in_site(spec("tests.testapp.tasks.flaky", takes_context=True), try_number=2, **SITE)
    assert again["return_value"] == "attempt 2"  # the attempt is Airflow's try number


@pytest.mark.parametrize(
    ("site", "said"),
    [
        ({**SITE, "python": "/nowhere/bin/python"}, "could not be started"),
        ({**SITE, "settings": "tests.no_such_settings"}, "No module named 'tests.no_such_settings'"),
    ],
    ids=["no-python", "no-settings"],
)
def test_a_site_that_cannot_run_the_task_is_a_task_run_failure(site: dict[str, str], said: str) -> None:
    envelope = dags.run_in_site(
        spec("tests.testapp.tasks.add", 1, 1), try_number=1, log=lambda line: None, **site
    )

    assert (envelope["status"], envelope["exception_class_path"]) == ("FAILED", dags.RUN_FAILED)
    assert said in envelope["traceback"]


class TaskInstance:
    def __init__(self, try_number: int) -> None:
        self.try_number = try_number
        self.pushed: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


class DagRun:
    def __init__(self, conf: dict[str, Any]) -> None:
        self.conf, self.run_id = conf, "dj_1"


def execute(conf: dict[str, Any], try_number: int = 1) -> TaskInstance:
    ti = TaskInstance(try_number)
    dags._execute({"ti": ti, "dag_run": DagRun(conf)}, python=None, settings=None, cwd=None, env=None)
    return ti


def test_the_airflow_task_pushes_the_result_and_fails_when_the_task_raised(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in (("PYTHON_ENV", "python"), ("SETTINGS_ENV", "settings"), ("CWD_ENV", "cwd")):
        monkeypatch.setenv(getattr(dags, name), SITE[value])  # where the worker finds the site

    ti = execute({"django_task": spec("tests.testapp.tasks.add", 1, 2)})
    assert json.loads(ti.pushed["django_task"])["return_value"] == 3

    monkeypatch.setenv(dags.PYTHON_ENV, "/nowhere/bin/python")
    ti = TaskInstance(2)
    with pytest.raises(
        dags.DjangoTaskFailed, match=r"add raised airflow_client.exceptions.TaskRunFailed \(try 2\)"
    ):
        dags._execute(
            {"ti": ti, "dag_run": DagRun({"django_task": spec("tests.testapp.tasks.add", 1, 2)})},
            python=None,
            settings=None,
            cwd=None,
            env=None,
        )
    assert json.loads(ti.pushed["django_task"])["try_number"] == 2


def test_a_run_without_a_task_or_a_site_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="no 'django_task'"):
        execute({})
    monkeypatch.delenv(dags.PYTHON_ENV, raising=False)
    with pytest.raises(ValueError, match="No site python"):
        execute({"django_task": spec("tests.testapp.tasks.add", 1, 2)})


def test_the_module_imports_without_django_or_airflow() -> None:
    """Airflow's environment has no Django; the module imports Airflow only when a DAG is built."""
    code = (
        "import sys; sys.modules['django'] = sys.modules['airflow'] = None; "
        "import airflow_client.dags as d; print(d.CONF_KEY, d.XCOM_KEY, d.TASK_ID)"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)

    assert done.stdout.split() == ["django_task", "django_task", "run"]


def test_the_site_gets_the_workers_environment_but_airflows_own(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__CORE__FERNET_KEY", "secret")
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", "postgres://u:secret@db")
    monkeypatch.setenv("PYTHONPATH", "/opt/airflow/lib")
    monkeypatch.setenv("SITE_DATABASE_URL", "postgres://site")

    env = dags._site_env("site.settings", {"EXTRA": "1"})

    assert (env["DJANGO_SETTINGS_MODULE"], env["SITE_DATABASE_URL"], env["EXTRA"]) == (
        "site.settings",
        "postgres://site",
        "1",
    )
    assert not [key for key in env if key.lstrip("_").startswith("AIRFLOW") or key == "PYTHONPATH"]
