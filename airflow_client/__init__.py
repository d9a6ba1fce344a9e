"""django-airflow-client: start Airflow DAG runs for Django records and follow them.

The public API is importable from here; names are resolved lazily so that
importing ``airflow_client`` (e.g. in settings) never touches the app registry.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "AirflowClientError": "airflow_client.exceptions",
    "AirflowUnavailable": "airflow_client.exceptions",
    "AlreadyRunning": "airflow_client.exceptions",
    "TriggerFailed": "airflow_client.exceptions",
    "UnknownJob": "airflow_client.exceptions",
    "InvalidConf": "airflow_client.exceptions",
    "trigger": "airflow_client.triggering",
    "trigger_on_commit": "airflow_client.triggering",
    "refresh": "airflow_client.refreshing",
    "sync": "airflow_client.syncing",  # not sync.py: importing it would shadow sync()
    "JobRun": "airflow_client.models",
    "JobTrigger": "airflow_client.models",
    "Job": "airflow_client.jobs",
    "register": "airflow_client.jobs",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'airflow_client' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
