"""Every setting of the wrong type is a system check error, never a traceback (issue 9, defect 14).

Each top-level setting in ``conf.DEFAULTS`` and each key of an environment
(``conf.ENVIRONMENT_DEFAULTS``), for each transport, is set to values of every
wrong type; ``run_checks()`` must answer with check messages, and the settings
accessor and the transports must not crash either (a view falls back to the
default while the check reports the mistake).
"""

from __future__ import annotations

from typing import Any

import pytest
from django.core import checks
from django.test import override_settings

from airflow_client import conf
from airflow_client.exceptions import ConfigurationError
from airflow_client.transports import get_transport
from airflow_client.transports.base import TEXT_OPTIONS
from airflow_client.transports.rest import RestTransport

pytestmark = pytest.mark.django_db

WRONG_VALUES: dict[str, Any] = {
    "none": None,
    "str": "5s",
    "empty-str": "",
    "bytes": b"64k",
    "int": 7,
    "float": 2.5,
    "negative": -1,
    "zero": 0,
    "bool": True,
    "list": [1, 2],
    "dict": {"a": 1},
    "object": object(),
    "nan": float("nan"),
    "inf": float("inf"),
}

VALID_ENVIRONMENTS: dict[str, dict[str, Any]] = {
    "rest": {"TRANSPORT": "rest", "BASE_URL": "http://airflow.test", "USERNAME": "u", "PASSWORD": "p"},
    "mwaa": {"TRANSPORT": "mwaa", "ENV_NAME": "env", "REGION": "eu-west-1"},
    "fake": {"TRANSPORT": "fake", "BASE_URL": "http://airflow.test"},
}


def _ids(messages: list[checks.CheckMessage]) -> set[str]:
    return {m.id for m in messages if m.id and m.id.startswith("airflow_client.")}


def _run() -> list[checks.CheckMessage]:
    messages = checks.run_checks()
    for message in messages:
        str(message)  # the message itself must render (repr of odd values)
    return messages


@pytest.mark.parametrize("value", list(WRONG_VALUES.values()), ids=list(WRONG_VALUES))
@pytest.mark.parametrize("name", [n for n in conf.DEFAULTS if n != "AIRFLOW_ENVIRONMENTS"])
def test_top_level_setting_of_any_type_is_a_check_not_a_traceback(name: str, value: Any) -> None:
    with override_settings(**{name: value}):
        messages = _run()
        settings = conf.get_settings()  # the accessor falls back instead of raising
    assert isinstance(settings.refresh_interval, float)
    assert isinstance(settings.poll_interval, float)
    assert isinstance(settings.max_conf_bytes, int)
    assert settings.max_conf_bytes > 0
    assert isinstance(settings.events_max_bytes, int)
    assert settings.events_max_bytes > 0
    assert isinstance(settings.run_id_prefix, str)
    assert settings.events_secret is None or isinstance(settings.events_secret, str)
    if value is not conf.DEFAULTS[name] and not _acceptable(name, value):
        assert _ids(messages), f"{name}={value!r} passed the checks"


def _acceptable(name: str, value: Any) -> bool:
    """Wrong-looking values that are in fact valid for this setting."""
    if name in ("AIRFLOW_REFRESH_INTERVAL",):
        return not isinstance(value, bool) and isinstance(value, (int, float)) and 0 <= value < float("inf")
    if name in ("AIRFLOW_POLL_INTERVAL", "AIRFLOW_IDLE_POLL_INTERVAL"):
        return not isinstance(value, bool) and isinstance(value, (int, float)) and 0 < value < float("inf")
    if name == "AIRFLOW_PRESERVE_JOB_TRIGGER":
        return isinstance(value, bool)
    if name == "AIRFLOW_EVENTS_SECRET":
        return value is None
    if name in ("AIRFLOW_MAX_CONF_BYTES", "AIRFLOW_MAX_LOG_BYTES", "AIRFLOW_EVENTS_MAX_BYTES"):
        return not isinstance(value, bool) and isinstance(value, int) and value > 0
    if name == "AIRFLOW_RUN_ID_PREFIX":
        return isinstance(value, str) and value != ""
    return False


@pytest.mark.parametrize("value", list(WRONG_VALUES.values()), ids=list(WRONG_VALUES))
def test_environments_of_any_type_is_a_check_not_a_traceback(value: Any) -> None:
    with override_settings(AIRFLOW_ENVIRONMENTS=value):
        assert "airflow_client.E001" in _ids(_run())
        conf.get_settings()


@pytest.mark.parametrize("value", list(WRONG_VALUES.values()), ids=list(WRONG_VALUES))
def test_environment_entry_of_any_type_is_a_check_not_a_traceback(value: Any) -> None:
    with override_settings(AIRFLOW_ENVIRONMENTS={"default": value}):
        assert _ids(_run())
        conf.get_settings()


@pytest.mark.parametrize("value", list(WRONG_VALUES.values()), ids=list(WRONG_VALUES))
@pytest.mark.parametrize("key", list(conf.ENVIRONMENT_DEFAULTS))
@pytest.mark.parametrize("transport", list(VALID_ENVIRONMENTS))
def test_environment_key_of_any_type_is_a_check_not_a_traceback(transport: str, key: str, value: Any) -> None:
    options = {**VALID_ENVIRONMENTS[transport], key: value}
    with override_settings(AIRFLOW_ENVIRONMENTS={"default": options}):
        messages = _run()
        conf.get_settings()
        assert _ids(messages) or _accepted_option(transport, key, value), f"{key}={value!r} passed the checks"
        # Whatever the checks say, a view building the transport gets the package's own error at worst.
        try:
            transport = get_transport("default")
            if isinstance(transport, RestTransport):
                transport.http._http()
        except ConfigurationError:
            pass


def _accepted_option(transport: str, key: str, value: Any) -> bool:
    """Wrong-looking values that are valid (or harmless) for this environment key."""
    if key == "API_VERSION" and transport == "fake":
        return True  # the in-memory Airflow has no API versions
    if key in TEXT_OPTIONS:
        return value is None or isinstance(value, str)
    if key == "VERIFY":
        return isinstance(value, bool)
    if key == "OPTIONS":
        return value is None or isinstance(value, dict)
    if key == "API_VERSION":
        return value in (None, "")  # not set: "auto"
    if key == "TIMEOUT":
        return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < float("inf")
    if key == "RETRIES":
        return isinstance(value, int) and not isinstance(value, bool) and value >= 0
    return False


@pytest.mark.parametrize("value", list(WRONG_VALUES.values()), ids=list(WRONG_VALUES))
def test_unknown_key_of_any_type_is_a_warning(value: Any) -> None:
    options = {**VALID_ENVIRONMENTS["rest"], "BOGUS": value}
    with override_settings(AIRFLOW_ENVIRONMENTS={"default": options}):
        assert "airflow_client.W001" in _ids(_run())


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("AIRFLOW_REFRESH_INTERVAL", "5s", "airflow_client.E011"),
        ("AIRFLOW_REFRESH_INTERVAL", None, "airflow_client.E011"),
        ("AIRFLOW_POLL_INTERVAL", None, "airflow_client.E011"),
        ("AIRFLOW_MAX_CONF_BYTES", "64k", "airflow_client.E016"),
        ("AIRFLOW_MAX_CONF_BYTES", None, "airflow_client.E016"),
    ],
)
def test_the_reported_cases_name_their_check(name: str, value: Any, expected: str) -> None:
    with override_settings(**{name: value}):
        assert expected in _ids(_run())
