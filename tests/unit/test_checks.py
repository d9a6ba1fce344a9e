"""Wrong settings are system-check errors with ids and a sentence saying what to fix."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from django.core import checks
from django.test import override_settings

from airflow_client.checks import check_settings
from airflow_client.transports.fake import FakeTransport
from airflow_client.transports.rest import RestTransport

GOOD_REST = {"TRANSPORT": "rest", "BASE_URL": "http://127.0.0.1:8080", "USERNAME": "u", "PASSWORD": "p"}


def ids(**settings: Any) -> list[str]:
    with override_settings(**settings):
        return [m.id or "" for m in check_settings()]


def test_test_settings_are_clean() -> None:
    assert ids() == []


@pytest.mark.parametrize(
    ("environments", "expected"),
    [
        ({}, "E001"),
        ({"other": GOOD_REST}, "E001"),
        ("not a dict", "E001"),
        ({"default": "rest"}, "E002"),
        ({"default": {**GOOD_REST, "TRANSPORT": "carrier-pigeon"}}, "E003"),
        ({"default": {**GOOD_REST, "TRANSPORT": "os.path.join"}}, "E003"),
        ({"default": {**GOOD_REST, "BASE_URL": "127.0.0.1:8080"}}, "E004"),
        ({"default": {**GOOD_REST, "BASE_URL": ""}}, "E004"),
        ({"default": {**GOOD_REST, "UI_URL": "airflow.example.org"}}, "E005"),
        ({"default": {**GOOD_REST, "API_VERSION": "v3"}}, "E006"),
        ({"default": {**GOOD_REST, "PASSWORD": ""}}, "E007"),
        ({"default": {**GOOD_REST, "TOKEN": "t"}}, "E007"),
        ({"default": {"TRANSPORT": "mwaa"}}, "E009"),
        ({"default": {**GOOD_REST, "TIMEOUT": 0}}, "E010"),
        ({"default": {**GOOD_REST, "TIMEOUT": "10"}}, "E010"),
        ({"default": {**GOOD_REST, "RETRIES": -1}}, "E017"),
        ({"default": {**GOOD_REST, "PASWORD": "typo"}}, "W001"),
    ],
)
def test_wrong_environment_setting(environments: Any, expected: str) -> None:
    assert f"airflow_client.{expected}" in ids(AIRFLOW_ENVIRONMENTS=environments)


def test_good_environments_pass() -> None:
    envs = {
        "default": GOOD_REST,
        "token": {"BASE_URL": "https://airflow.example.org", "TOKEN": "abc", "API_VERSION": "v2"},
        "mwaa": {"TRANSPORT": "mwaa", "ENV_NAME": "prod", "REGION": "us-west-2"},
        "tests": {"TRANSPORT": "fake"},
        "custom": {"TRANSPORT": "airflow_client.transports.fake.FakeTransport"},
    }
    assert ids(AIRFLOW_ENVIRONMENTS=envs) == []


def test_mwaa_without_boto3(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "boto3" else real(name, *a)
    )
    assert "airflow_client.E008" in ids(
        AIRFLOW_ENVIRONMENTS={"default": {"TRANSPORT": "mwaa", "ENV_NAME": "x"}}
    )


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("AIRFLOW_REFRESH_INTERVAL", -1, "E011"),
        ("AIRFLOW_POLL_INTERVAL", "5", "E011"),
        ("AIRFLOW_POLL_INTERVAL", 0, "E012"),
        ("AIRFLOW_IDLE_POLL_INTERVAL", 0, "E025"),
        ("AIRFLOW_IDLE_POLL_INTERVAL", "30", "E025"),
        ("AIRFLOW_IDLE_POLL_INTERVAL", float("nan"), "E025"),
        ("AIRFLOW_PRESERVE_JOB_TRIGGER", "yes", "E013"),
        ("AIRFLOW_EVENTS_SECRET", "short", "E014"),
        ("AIRFLOW_RUN_ID_PREFIX", "has space", "E015"),
        ("AIRFLOW_RUN_ID_PREFIX", "", "E015"),
        ("AIRFLOW_MAX_CONF_BYTES", 0, "E016"),
    ],
)
def test_wrong_top_level_setting(name: str, value: Any, expected: str) -> None:
    assert ids(**{name: value}) == [f"airflow_client.{expected}"]


def test_every_message_says_what_to_fix() -> None:
    with override_settings(AIRFLOW_ENVIRONMENTS={"default": {"TRANSPORT": "rest"}}):
        messages = check_settings()
    assert messages
    for message in messages:
        assert isinstance(message, checks.CheckMessage)
        assert message.msg.endswith(".")
        assert message.hint


def test_manage_check_prints_id_and_sentence_not_traceback(tmp_path: Path) -> None:
    (tmp_path / "wrong_settings.py").write_text(
        "from tests.settings import *\n"
        "AIRFLOW_ENVIRONMENTS = {'default': {'TRANSPORT': 'rest', 'BASE_URL': 'localhost:8080'}}\n"
    )
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(root)])}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    result = subprocess.run(
        [sys.executable, "-m", "django", "check", "--settings=wrong_settings"],
        capture_output=True,
        text=True,
        env=env,
        cwd=root,
        check=False,
    )
    assert result.returncode != 0
    assert "airflow_client.E004" in result.stderr
    assert "an http(s) URL is required" in result.stderr
    assert "airflow_client.E007" in result.stderr
    assert "Traceback" not in result.stderr


class PickyTransport(FakeTransport):
    """A custom transport that validates its own OPTIONS."""

    @classmethod
    def check(cls, alias: str, options: Mapping[str, Any]) -> list[checks.CheckMessage]:
        errors = super().check(alias, options)
        if "QUEUE" not in options.get("OPTIONS", {}):
            errors.append(
                checks.Error(f"{alias}: OPTIONS has no QUEUE.", hint="Set OPTIONS['QUEUE'].", id="picky.E001")
            )
        return errors


def test_a_custom_transport_checks_its_own_options() -> None:
    path = f"{__name__}.PickyTransport"
    assert ids(AIRFLOW_ENVIRONMENTS={"default": {"TRANSPORT": path, "OPTIONS": {"QUEUE": "q"}}}) == []
    assert ids(AIRFLOW_ENVIRONMENTS={"default": {"TRANSPORT": path, "TIMEOUT": 0}}) == [
        "airflow_client.E010",
        "picky.E001",
    ]


def test_transport_checks_are_the_transports_own() -> None:
    # REST options mean nothing to the fake: no BASE_URL nor credentials needed.
    assert ids(AIRFLOW_ENVIRONMENTS={"default": {"TRANSPORT": "fake", "API_VERSION": "v3"}}) == []
    assert RestTransport.check("x", {"API_VERSION": "v3", "TOKEN": "t", "BASE_URL": "http://a"})[0].id == (
        "airflow_client.E006"
    )
