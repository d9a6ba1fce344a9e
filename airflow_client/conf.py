"""Settings accessor: every AIRFLOW_* setting is read here, lazily, with its default.

The result is cached and reset when Django's ``setting_changed`` fires, so
``override_settings`` works in tests. Validation lives in :mod:`checks`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings as django_settings
from django.core.signals import setting_changed
from django.dispatch import receiver

#: Defaults of the top-level settings (README lists each).
DEFAULTS: dict[str, Any] = {
    "AIRFLOW_ENABLED": True,
    "AIRFLOW_ENVIRONMENTS": {},
    "AIRFLOW_PRESERVE_JOB_TRIGGER": False,
    "AIRFLOW_REFRESH_INTERVAL": 5,
    "AIRFLOW_POLL_INTERVAL": 5,
    "AIRFLOW_IDLE_POLL_INTERVAL": 30,
    "AIRFLOW_EVENTS_SECRET": None,
    "AIRFLOW_RUN_ID_PREFIX": "dj",
    "AIRFLOW_MAX_CONF_BYTES": 64 * 1024,
    "AIRFLOW_MAX_LOG_BYTES": 2_000_000,
    "AIRFLOW_EVENTS_MAX_BYTES": 256 * 1024,
    "AIRFLOW_SYNC_HORIZON": 30,
}

#: Defaults of each AIRFLOW_ENVIRONMENTS entry.
ENVIRONMENT_DEFAULTS: dict[str, Any] = {
    "TRANSPORT": "rest",
    "BASE_URL": "",
    "UI_URL": "",  # empty: same as BASE_URL
    "API_VERSION": "auto",
    "USERNAME": "",
    "PASSWORD": "",
    "TOKEN": "",
    "TIMEOUT": 10.0,  # seconds, per request
    "RETRIES": 2,  # extra attempts for GETs on connection errors, 5xx and 429
    "VERIFY": True,  # TLS verification (or a CA bundle path)
    "ENV_NAME": "",  # mwaa
    "REGION": "",  # mwaa
    "SESSION_FACTORY": "",  # mwaa: dotted path to a callable returning a boto3 Session
    "OPTIONS": {},  # free-form, for custom transports
}

TRANSPORT_ALIASES = {
    "rest": "airflow_client.transports.rest.RestTransport",
    "mwaa": "airflow_client.transports.mwaa.MwaaTransport",
    "fake": "airflow_client.transports.fake.FakeTransport",
    "simulated": "airflow_client.transports.simulated.SimulatedTransport",
}


@dataclass(frozen=True)
class Settings:
    environments: Mapping[str, Mapping[str, Any]]
    preserve_job_trigger: bool
    refresh_interval: float
    poll_interval: float
    events_secret: str | None
    run_id_prefix: str
    max_conf_bytes: int
    max_log_bytes: int = DEFAULTS["AIRFLOW_MAX_LOG_BYTES"]
    events_max_bytes: int = DEFAULTS["AIRFLOW_EVENTS_MAX_BYTES"]
    #: days: how far back sync looks for runs when it has no earlier listing to go on.
    sync_horizon: float = DEFAULTS["AIRFLOW_SYNC_HORIZON"]
    #: False: nothing is sent to Airflow (AIRFLOW_ENABLED).
    enabled: bool = True
    #: how often a page whose widgets are all idle looks for runs started elsewhere
    idle_poll_interval: float = DEFAULTS["AIRFLOW_IDLE_POLL_INTERVAL"]


def raw(name: str) -> Any:
    """A top-level setting as the user wrote it, or its default."""
    return getattr(django_settings, name, DEFAULTS[name])


def environment(options: Mapping[str, Any]) -> dict[str, Any]:
    """An environment entry merged over the defaults (UI_URL falls back to BASE_URL)."""
    merged = {**ENVIRONMENT_DEFAULTS, **options}
    merged["UI_URL"] = merged["UI_URL"] or merged["BASE_URL"]
    return merged


def _seconds(name: str, *, positive: bool = False) -> float:
    """A number of seconds; the default when the setting is of the wrong type (check E011)."""
    value = raw(name)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return float(DEFAULTS[name])
    if value < 0 or (positive and value == 0):
        return float(DEFAULTS[name])
    return float(value)


@functools.cache
def get_settings() -> Settings:
    """The settings, each of the wrong type replaced by its default.

    Checks run after apps load, and a view must not fail because of a setting
    the checks report (E011-E016, E025, E026): here a wrong value falls back to its default.
    """
    envs = raw("AIRFLOW_ENVIRONMENTS")
    if not isinstance(envs, Mapping):
        envs = {}
    preserve = raw("AIRFLOW_PRESERVE_JOB_TRIGGER")
    secret = raw("AIRFLOW_EVENTS_SECRET")
    prefix = raw("AIRFLOW_RUN_ID_PREFIX")
    return Settings(
        environments={
            str(alias): environment(opts) for alias, opts in envs.items() if isinstance(opts, Mapping)
        },
        preserve_job_trigger=preserve
        if isinstance(preserve, bool)
        else DEFAULTS["AIRFLOW_PRESERVE_JOB_TRIGGER"],
        refresh_interval=_seconds("AIRFLOW_REFRESH_INTERVAL"),
        poll_interval=_seconds("AIRFLOW_POLL_INTERVAL", positive=True),
        idle_poll_interval=_seconds("AIRFLOW_IDLE_POLL_INTERVAL", positive=True),
        # A secret of the wrong type turns the events endpoint off (E014) rather than on.
        events_secret=secret if isinstance(secret, str) and len(secret) >= 16 else None,
        run_id_prefix=prefix if isinstance(prefix, str) and prefix else DEFAULTS["AIRFLOW_RUN_ID_PREFIX"],
        max_conf_bytes=_positive_int("AIRFLOW_MAX_CONF_BYTES"),
        max_log_bytes=_positive_int("AIRFLOW_MAX_LOG_BYTES"),
        events_max_bytes=_positive_int("AIRFLOW_EVENTS_MAX_BYTES"),
        sync_horizon=_seconds("AIRFLOW_SYNC_HORIZON", positive=True),
        # Only an explicit False turns Airflow off; a wrong type is check E024 and keeps it on.
        enabled=raw("AIRFLOW_ENABLED") is not False,
    )


def _positive_int(name: str) -> int:
    """A positive integer setting, or its default when it is not one (system checks say so)."""
    value = raw(name)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        return int(DEFAULTS[name])
    return value


def is_positive_number(value: Any) -> bool:
    return (
        not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value) and value > 0
    )


@receiver(setting_changed)
def _reset(*, setting: str, **kwargs: Any) -> None:
    if setting.startswith("AIRFLOW_"):
        get_settings.cache_clear()
