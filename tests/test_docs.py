"""The README's reference tables and imports say what the code does (the code is the truth)."""

from __future__ import annotations

import importlib.util
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core import checks
from django.test import override_settings
from django.urls import URLPattern, reverse

from airflow_client import conf, urls
from airflow_client.jobs import Job, register, unregister
from airflow_client.retention import DEPRECATED, POLICIES, parse_policy

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
#: Django's task framework checks its backends (Django 6, or the backport's app on 5.2).
TASKS_AVAILABLE = (
    importlib.util.find_spec("django.tasks") is not None
    or importlib.util.find_spec("django_tasks") is not None
)
PACKAGE = ROOT / "airflow_client"


def table(header: str) -> list[list[str]]:
    """The rows of the README table whose header row is ``header``, as lists of cells."""
    lines = README.splitlines()
    start = lines.index(header)
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def code(cell: str) -> str:
    """The first `code span` of a cell."""
    found = re.search(r"`([^`]*)`", cell)
    assert found, f"no code span in {cell!r}"
    return found.group(1)


def written(value: Any) -> str:
    """A default as the README writes it: Python literals, strings in double quotes."""
    return f'"{value}"' if isinstance(value, str) else repr(value)


def test_settings_table_lists_every_setting_with_its_default() -> None:
    rows = {code(name): code(default) for name, default, _meaning in table("| setting | default | meaning |")}
    assert rows == {name: written(default) for name, default in conf.DEFAULTS.items()}


def test_environment_table_lists_every_key_with_its_default() -> None:
    rows = {code(key): code(default) for key, default, _meaning in table("| key | default | meaning |")}
    assert rows == {key: written(default) for key, default in conf.ENVIRONMENT_DEFAULTS.items()}


@pytest.mark.skipif(not TASKS_AVAILABLE, reason="no task framework (Django 5.2 without django-tasks)")
def test_tasks_options_table_lists_every_option_with_its_default() -> None:
    from airflow_client.tasks import OPTION_DEFAULTS

    rows = {code(key): code(default) for key, default, _meaning in table("| option | default | meaning |")}
    assert rows == {key: written(default) for key, default in OPTION_DEFAULTS.items()}


# --- system checks ----------------------------------------------------------------------------

ENVIRONMENT_ERRORS = {
    "TRANSPORT": "rest",
    "BASE_URL": "ftp://airflow",  # E004
    "UI_URL": "airflow",  # E005
    "API_VERSION": "v9",  # E006
    "TOKEN": "t",
    "USERNAME": "u",  # E007: a token and a username
    "TIMEOUT": 0,  # E010
    "RETRIES": -1,  # E017
    "VERIFY": 7,  # E018
    "TYPO": 1,  # W001
}

#: Settings that, together, make the checks emit every id they can.
SCENARIOS: list[dict[str, Any]] = [
    {"AIRFLOW_ENVIRONMENTS": []},  # E001
    {"AIRFLOW_ENVIRONMENTS": {"default": "rest"}},  # E002
    {"AIRFLOW_ENVIRONMENTS": {"default": {"TRANSPORT": "nowhere.Transport"}}},  # E003
    {"AIRFLOW_ENVIRONMENTS": {"default": ENVIRONMENT_ERRORS}},
    {"AIRFLOW_ENVIRONMENTS": {"default": {"TRANSPORT": "mwaa"}}},  # E008 (boto3 hidden), E009
    {
        "AIRFLOW_REFRESH_INTERVAL": -1,  # E011
        "AIRFLOW_POLL_INTERVAL": 0,  # E012
        "AIRFLOW_PRESERVE_JOB_TRIGGER": "yes",  # E013
        "AIRFLOW_EVENTS_SECRET": "short",  # E014
        "AIRFLOW_RUN_ID_PREFIX": "no spaces",  # E015
        "AIRFLOW_MAX_CONF_BYTES": 0,  # E016
        "AIRFLOW_MAX_LOG_BYTES": "2MB",  # E019
        "AIRFLOW_EVENTS_MAX_BYTES": -1,  # E023
        "AIRFLOW_ENABLED": "no",  # E024
        "AIRFLOW_IDLE_POLL_INTERVAL": 0,  # E025
    },
    {"AIRFLOW_ENABLED": False},  # W002 (the test app registers Jobs)
]

AIRFLOW_BACKEND = "airflow_client.tasks.AirflowBackend"
if TASKS_AVAILABLE:
    SCENARIOS.append(
        {
            "TASKS": {
                "typo": {"BACKEND": AIRFLOW_BACKEND, "OPTIONS": {"TYPO": 1}},  # E030
                "nowhere": {"BACKEND": AIRFLOW_BACKEND, "OPTIONS": {"ENVIRONMENT": "nowhere"}},  # E031
                "no_dag": {"BACKEND": AIRFLOW_BACKEND, "OPTIONS": {"DAG_ID": ""}},  # E032
                "queues": {
                    "BACKEND": AIRFLOW_BACKEND,
                    "QUEUES": ["default"],
                    "OPTIONS": {"QUEUES": {"a": "b"}},
                },  # E033
            }
        }
    )


class NoSuchModel(Job):  # E020
    dag_id = "docs_no_model"
    model = "testapp.NoSuchModel"


class NoSuchEnvironment(Job):  # E021
    dag_id = "docs_no_environment"
    model = "testapp.FindingAid"
    environment = "nowhere"


class SameDag(Job):  # E022, with SameDagAgain
    dag_id = "docs_same_dag"
    model = "testapp.FindingAid"


class SameDagAgain(Job):
    dag_id = "docs_same_dag"
    model = "testapp.FindingAid"


BROKEN_JOBS = (NoSuchModel, NoSuchEnvironment, SameDag, SameDagAgain)


@pytest.fixture
def broken_jobs() -> Iterator[None]:
    for job in BROKEN_JOBS:
        register(job)
    yield
    for job in BROKEN_JOBS:
        unregister(job)


def emitted_ids(monkeypatch: pytest.MonkeyPatch) -> set[str]:
    monkeypatch.setitem(sys.modules, "boto3", None)  # find_spec("boto3") is None: as if not installed
    found: set[str] = set()
    for scenario in SCENARIOS:
        with override_settings(**scenario):
            found |= {message.id for message in checks.run_checks() if message.id}
    return {id_ for id_ in found if id_.startswith("airflow_client.")}


def source_ids() -> set[str]:
    """The ids written in the package: check_error(N, ...), _error(N, ...), _warning(N, ...), or whole."""
    found: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        if path.name == "tasks.py" and not TASKS_AVAILABLE:
            continue  # Django 5.2 without the django-tasks backport: those checks cannot run
        text = path.read_text()
        found |= set(re.findall(r"airflow_client\.[EW]\d{3}", text))
        for function, number in re.findall(r"\b(check_error|_error|_warning)\(\s*(\d+)\s*,", text):
            found.add(f"airflow_client.{'W' if function == '_warning' else 'E'}{int(number):03d}")
    return found


@pytest.mark.django_db
def test_system_check_table_lists_every_id_the_checks_emit(
    monkeypatch: pytest.MonkeyPatch, broken_jobs: None
) -> None:
    emitted = emitted_ids(monkeypatch)
    assert emitted == source_ids(), "a check id no scenario triggers (or a stale scan)"
    assert {code(id_) for id_, _problem in table("| id | problem |")} == emitted


# --- URLs -------------------------------------------------------------------------------------

#: a value per converter (IntConverter: "int", ...).
SAMPLES = {"int": 7, "string": "sample", "path": "a/b", "taskid": "sample", "slug": "rerun"}


def test_url_table_paths_are_where_the_names_point() -> None:
    patterns = {pattern.name: pattern for pattern in urls.urlpatterns if isinstance(pattern, URLPattern)}
    rows = table("| URL | name | what |")
    assert {code(name) for _path, name, _what in rows} == set(patterns)
    for path, name, _what in rows:
        pattern = patterns[code(name)]
        converters = pattern.pattern.converters  # type: ignore[attr-defined]
        kwargs = {
            key: SAMPLES[type(converter).__name__.removesuffix("Converter").lower()]
            for key, converter in converters.items()
        }
        parts = re.split(r"<[^>]+>", code(path))  # the placeholders, in the pattern's order
        values = [str(value) for value in kwargs.values()]
        assert len(parts) == len(values) + 1, f"{code(path)} does not name {list(kwargs)}"
        documented = "/" + "".join(part + value for part, value in zip(parts, [*values, ""], strict=True))
        assert reverse(f"airflow_client:{code(name)}", kwargs=kwargs) == documented


# --- retention --------------------------------------------------------------------------------


def test_retention_table_says_what_each_policy_keeps() -> None:
    """Each row is a policy as written in a Job; its words are the policy's own describe()."""
    rows = table("| policy | keeps |")
    policies = [parse_policy(code(written)) for written, _keeps in rows]
    assert {type(policy) for policy in policies} == set(POLICIES.values())
    for policy, (written, keeps) in zip(policies, rows, strict=True):
        assert code(written) == repr(policy)  # the defaults, as the dry run prints them
        words = re.sub(r"`(\w+)`", lambda found, policy=policy: f"{getattr(policy, found.group(1)):g}", keeps)
        assert f"keeps {words}" == policy.describe()


def test_deprecated_names_table_names_their_replacements() -> None:
    rows = table("| deprecated name | use instead |")
    documented = {code(old).split("(")[0]: code(new).split("(")[0] for old, new in rows}
    assert documented == {old: new.__name__ for old, new in DEPRECATED.items()}


# --- imports ----------------------------------------------------------------------------------


def readme_imports() -> list[str]:
    statements = []
    for block in re.findall(r"```python\n(.*?)```", README, flags=re.DOTALL):
        statements += re.findall(
            r"^[ \t]*((?:from airflow_client[\w.]* import (?:\([^)]*\)|[^\n]+))|import airflow_client[\w.]*)",
            block,
            flags=re.MULTILINE,
        )
    return statements


def test_readme_has_imports_to_check() -> None:
    assert len(readme_imports()) >= 5


@pytest.mark.parametrize("statement", readme_imports())
def test_readme_import_works(statement: str) -> None:
    exec(statement.split("#")[0].strip(), {})
