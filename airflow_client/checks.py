"""Every system check of the app: settings, each environment's transport, registered Jobs.

Every id is listed in the README. Each transport checks its own options
(:meth:`.Transport.check`); here they are gathered, one environment at a time.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from django.core import checks

from airflow_client.conf import DEFAULTS, ENVIRONMENT_DEFAULTS, get_settings, is_positive_number, raw
from airflow_client.exceptions import ConfigurationError
from airflow_client.jobs import all_jobs
from airflow_client.transports import transport_class
from airflow_client.transports.base import check_error as _error

# Airflow's default allowed_run_id_pattern; our generated ids append "_" + 12 characters.
RUN_ID_PREFIX_RE = re.compile(r"^[A-Za-z0-9_.~:+-]{1,20}$")


def _warning(id_: int, msg: str, hint: str) -> checks.Warning:
    return checks.Warning(msg, hint=hint, id=f"airflow_client.W{id_:03d}")


@checks.register()
def check_settings(**kwargs: Any) -> list[checks.CheckMessage]:
    errors: list[checks.CheckMessage] = []
    errors += _check_environments()
    for name in ("AIRFLOW_REFRESH_INTERVAL", "AIRFLOW_POLL_INTERVAL"):
        value = raw(name)
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
            or value < 0
        ):
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
    idle = raw("AIRFLOW_IDLE_POLL_INTERVAL")
    if not is_positive_number(idle):
        errors.append(
            _error(
                25,
                f"AIRFLOW_IDLE_POLL_INTERVAL must be a number of seconds > 0, not {idle!r}.",
                "It is how often a page whose widgets are all idle looks for runs started elsewhere "
                f"(default {DEFAULTS['AIRFLOW_IDLE_POLL_INTERVAL']}).",
            )
        )
    enabled = raw("AIRFLOW_ENABLED")
    if not isinstance(enabled, bool):
        errors.append(
            _error(24, f"AIRFLOW_ENABLED must be True or False, not {enabled!r}.", "Default: True.")
        )
    elif not enabled and all_jobs():
        errors.append(
            _warning(
                2,
                "AIRFLOW_ENABLED is False: nothing is sent to Airflow, and the registered Jobs cannot start.",
                "Pages show the runs as last recorded. Set AIRFLOW_ENABLED = True to turn Airflow back on.",
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
    if not _is_positive_int(raw("AIRFLOW_MAX_LOG_BYTES")):
        errors.append(_error(19, *_bytes_problem("AIRFLOW_MAX_LOG_BYTES")))
    if not _is_positive_int(raw("AIRFLOW_EVENTS_MAX_BYTES")):
        errors.append(_error(23, *_bytes_problem("AIRFLOW_EVENTS_MAX_BYTES")))
    horizon = raw("AIRFLOW_SYNC_HORIZON")
    if not is_positive_number(horizon):
        errors.append(
            _error(
                26,
                f"AIRFLOW_SYNC_HORIZON must be a positive number of days, not {horizon!r}.",
                f"Default: {DEFAULTS['AIRFLOW_SYNC_HORIZON']} (sync looks back that far when it has no "
                "earlier listing to go on).",
            )
        )
    return errors


def _is_positive_int(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int) and value > 0


def _bytes_problem(name: str) -> tuple[str, str]:
    return f"{name} must be a positive integer (bytes), not {raw(name)!r}.", f"Default: {DEFAULTS[name]}."


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
    try:
        cls = transport_class(transport) if isinstance(transport, str) else None
    except ConfigurationError:
        cls = None
    if cls is None:
        errors.append(
            _error(
                3,
                f"{where}['TRANSPORT'] is {transport!r}: not 'rest', 'mwaa', 'fake' or an importable "
                "Transport subclass.",
                "Use 'rest' for Airflow 2 and 3, 'mwaa' for Amazon MWAA, 'fake' in tests.",
            )
        )
        return errors
    return errors + cls.check(alias, options)


@checks.register()
def check_jobs(**kwargs: Any) -> list[checks.CheckMessage]:
    errors: list[checks.CheckMessage] = []
    environments = get_settings().environments
    seen: dict[tuple[str, str], list[str]] = defaultdict(list)
    for job in all_jobs():
        name = f"{type(job).__module__}.{type(job).__qualname__}"
        try:
            model = job.get_model()
        except (LookupError, ValueError):
            errors.append(
                checks.Error(
                    f"Job {name} names model {job.model!r}, which is not an installed model.",
                    hint="Set model = 'app_label.ModelName' of an installed app.",
                    obj=type(job),
                    id="airflow_client.E020",
                )
            )
        else:
            seen[(job.dag_id, model._meta.label_lower)].append(name)
        if job.environment not in environments:
            errors.append(
                checks.Error(
                    f"Job {name} uses Airflow environment {job.environment!r}, which is not in "
                    "AIRFLOW_ENVIRONMENTS.",
                    hint=f"Known environments: {', '.join(sorted(environments)) or 'none'}.",
                    obj=type(job),
                    id="airflow_client.E021",
                )
            )
    for (dag_id, model_label), names in seen.items():
        if len(names) > 1:
            errors.append(
                checks.Error(
                    f"Several Jobs start DAG {dag_id!r} for model {model_label}: {', '.join(names)}.",
                    hint="Keep one Job per (DAG, model).",
                    id="airflow_client.E022",
                )
            )
    return errors
