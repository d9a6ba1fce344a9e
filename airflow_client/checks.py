"""System checks for the AIRFLOW_* settings. Every id is listed in the README."""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from django.core import checks

from airflow_client.conf import DEFAULTS, ENVIRONMENT_DEFAULTS, TRANSPORT_ALIASES, raw
from airflow_client.exceptions import ConfigurationError

# Airflow's default allowed_run_id_pattern; our generated ids append "_" + 12 characters.
RUN_ID_PREFIX_RE = re.compile(r"^[A-Za-z0-9_.~:+-]{1,20}$")


def _error(id_: int, msg: str, hint: str) -> checks.Error:
    return checks.Error(msg, hint=hint, id=f"airflow_client.E{id_:03d}")


def _warning(id_: int, msg: str, hint: str) -> checks.Warning:
    return checks.Warning(msg, hint=hint, id=f"airflow_client.W{id_:03d}")


def _is_http_url(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    parts = urlsplit(value)
    return parts.scheme in {"http", "https"} and bool(parts.netloc)


@checks.register()
def check_settings(**kwargs: Any) -> list[checks.CheckMessage]:
    errors: list[checks.CheckMessage] = []
    errors += _check_environments()
    for name in ("AIRFLOW_REFRESH_INTERVAL", "AIRFLOW_POLL_INTERVAL"):
        value = raw(name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            errors.append(
                _error(11, f"{name} must be a number of seconds >= 0, not {value!r}.", f"Set {name} = 5.")
            )
    if raw("AIRFLOW_POLL_INTERVAL") == 0:
        errors.append(
            _error(
                12,
                "AIRFLOW_POLL_INTERVAL is 0: open widgets would poll without pause.",
                "Use a positive number of seconds (default 5).",
            )
        )
    if not isinstance(raw("AIRFLOW_PRESERVE_JOB_TRIGGER"), bool):
        errors.append(_error(13, "AIRFLOW_PRESERVE_JOB_TRIGGER must be True or False.", "Default: False."))
    secret = raw("AIRFLOW_EVENTS_SECRET")
    if secret is not None and (not isinstance(secret, str) or len(secret) < 16):
        errors.append(
            _error(
                14,
                "AIRFLOW_EVENTS_SECRET must be a string of at least 16 characters (or unset to turn "
                "the events endpoint off).",
                "Generate one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'",
            )
        )
    prefix = raw("AIRFLOW_RUN_ID_PREFIX")
    if not isinstance(prefix, str) or not RUN_ID_PREFIX_RE.match(prefix):
        errors.append(
            _error(
                15,
                f"AIRFLOW_RUN_ID_PREFIX {prefix!r} is not a valid Airflow run-id prefix.",
                "Use 1 to 20 characters among letters, digits and _ . ~ : + - (default 'dj').",
            )
        )
    max_conf = raw("AIRFLOW_MAX_CONF_BYTES")
    if isinstance(max_conf, bool) or not isinstance(max_conf, int) or max_conf <= 0:
        errors.append(
            _error(
                16,
                "AIRFLOW_MAX_CONF_BYTES must be a positive integer.",
                f"Default: {DEFAULTS['AIRFLOW_MAX_CONF_BYTES']}.",
            )
        )
    return errors


def _check_environments() -> list[checks.CheckMessage]:
    envs = raw("AIRFLOW_ENVIRONMENTS")
    if not isinstance(envs, Mapping) or "default" not in envs:
        return [
            _error(
                1,
                "AIRFLOW_ENVIRONMENTS must be a dict with a 'default' alias.",
                "Add AIRFLOW_ENVIRONMENTS = {'default': {'TRANSPORT': 'rest', 'BASE_URL': "
                "'http://127.0.0.1:8080', 'USERNAME': ..., 'PASSWORD': ...}} to your settings.",
            )
        ]
    errors: list[checks.CheckMessage] = []
    for alias, options in envs.items():
        if not isinstance(options, Mapping):
            errors.append(
                _error(
                    2, f"AIRFLOW_ENVIRONMENTS[{alias!r}] must be a dict.", "See the README's settings list."
                )
            )
            continue
        errors += _check_environment(str(alias), options)
    return errors


def _check_environment(alias: str, options: Mapping[str, Any]) -> list[checks.CheckMessage]:
    where = f"AIRFLOW_ENVIRONMENTS[{alias!r}]"
    errors: list[checks.CheckMessage] = []
    unknown = sorted(set(options) - set(ENVIRONMENT_DEFAULTS))
    if unknown:
        errors.append(
            _warning(
                1,
                f"{where} has unknown keys: {', '.join(map(str, unknown))}.",
                f"Known keys: {', '.join(ENVIRONMENT_DEFAULTS)}. Put transport-specific extras in OPTIONS.",
            )
        )
    transport = options.get("TRANSPORT", ENVIRONMENT_DEFAULTS["TRANSPORT"])
    if not isinstance(transport, str) or not _transport_importable(transport):
        errors.append(
            _error(
                3,
                f"{where}['TRANSPORT'] is {transport!r}: not 'rest', 'mwaa', 'fake' or an importable "
                "Transport subclass.",
                "Use 'rest' for Airflow 2 and 3, 'mwaa' for Amazon MWAA, 'fake' in tests.",
            )
        )
        return errors
    if transport in ("rest", "fake") or transport not in TRANSPORT_ALIASES:
        base_url = options.get("BASE_URL", "")
        if transport == "rest" and not _is_http_url(base_url):
            errors.append(
                _error(
                    4,
                    f"{where}['BASE_URL'] is {base_url!r}: an http(s) URL is required.",
                    "The address the server uses to reach Airflow's API, e.g. 'http://127.0.0.1:8080'.",
                )
            )
    ui_url = options.get("UI_URL", "")
    if ui_url and not _is_http_url(ui_url):
        errors.append(
            _error(
                5,
                f"{where}['UI_URL'] is {ui_url!r}: it must be an http(s) URL.",
                "The address browsers use for Airflow's UI; leave it out to use BASE_URL.",
            )
        )
    api_version = options.get("API_VERSION", "auto")
    if api_version not in ("auto", "v1", "v2"):
        errors.append(
            _error(
                6,
                f"{where}['API_VERSION'] is {api_version!r}.",
                "Use 'auto' (ask Airflow once), 'v1' (Airflow 2) or 'v2' (Airflow 3).",
            )
        )
    if transport == "rest":
        errors += _check_credentials(where, options)
    timeout = options.get("TIMEOUT", ENVIRONMENT_DEFAULTS["TIMEOUT"])
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
        errors.append(
            _error(
                10,
                f"{where}['TIMEOUT'] must be a positive number of seconds, not {timeout!r}.",
                "Default: 10.",
            )
        )
    retries = options.get("RETRIES", ENVIRONMENT_DEFAULTS["RETRIES"])
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        errors.append(
            _error(17, f"{where}['RETRIES'] must be an integer >= 0, not {retries!r}.", "Default: 2.")
        )
    if transport == "mwaa":
        if importlib.util.find_spec("boto3") is None:
            errors.append(
                _error(
                    8,
                    f"{where} uses the 'mwaa' transport but boto3 is not installed.",
                    "pip install 'django-airflow-client[mwaa]'",
                )
            )
        if not options.get("ENV_NAME"):
            errors.append(
                _error(
                    9,
                    f"{where}['ENV_NAME'] is required for the 'mwaa' transport.",
                    "The MWAA environment's name.",
                )
            )
    return errors


def _check_credentials(where: str, options: Mapping[str, Any]) -> list[checks.CheckMessage]:
    username, password, token = (options.get(k) or "" for k in ("USERNAME", "PASSWORD", "TOKEN"))
    if token and (username or password):
        return [
            _error(
                7,
                f"{where} sets both TOKEN and USERNAME/PASSWORD.",
                "Use TOKEN for a static bearer token, or USERNAME and PASSWORD, not both.",
            )
        ]
    if not token and not (username and password):
        return [
            _error(
                7,
                f"{where} has no credentials: set USERNAME and PASSWORD (Airflow 3 token login or "
                "Airflow 2 basic auth), or TOKEN.",
                "Airflow 3 always needs credentials; Airflow 2 needs the basic_auth API backend enabled.",
            )
        ]
    return []


def _transport_importable(name: str) -> bool:
    from airflow_client.transports import transport_class

    if name in TRANSPORT_ALIASES:
        return True
    try:
        transport_class(name)
    except ConfigurationError:
        return False
    return True
