"""django-airflow-client: start Airflow DAG runs for Django records and follow them.

The public API is importable from here. At run time each name is imported on
first use, so importing ``airflow_client`` (from settings, or from the DAG-side
``airflow_client.callbacks`` inside Airflow, where Django is absent) loads
nothing else. Type checkers read the real names from the imports below.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

if TYPE_CHECKING:  # `X as X`: an explicit re-export
    from airflow_client.exceptions import (
        AirflowClientError as AirflowClientError,
        AirflowDisabled as AirflowDisabled,
        AirflowUnavailable as AirflowUnavailable,
        AlreadyRunning as AlreadyRunning,
        InvalidConf as InvalidConf,
        TriggerFailed as TriggerFailed,
        UnknownJob as UnknownJob,
    )
    from airflow_client.jobs import Job as Job, register as register
    from airflow_client.models import JobRun as JobRun, JobTrigger as JobTrigger
    from airflow_client.refreshing import refresh as refresh
    from airflow_client.syncing import SyncReport as SyncReport, sync as sync
    from airflow_client.triggering import trigger as trigger, trigger_on_commit as trigger_on_commit

#: Where each public name lives (a test checks this map against the imports above).
_HOMES = {
    "AirflowClientError": "airflow_client.exceptions",
    "AirflowDisabled": "airflow_client.exceptions",
    "AirflowUnavailable": "airflow_client.exceptions",
    "AlreadyRunning": "airflow_client.exceptions",
    "InvalidConf": "airflow_client.exceptions",
    "TriggerFailed": "airflow_client.exceptions",
    "UnknownJob": "airflow_client.exceptions",
    "Job": "airflow_client.jobs",
    "register": "airflow_client.jobs",
    "JobRun": "airflow_client.models",
    "JobTrigger": "airflow_client.models",
    "refresh": "airflow_client.refreshing",
    "trigger": "airflow_client.triggering",
    "trigger_on_commit": "airflow_client.triggering",
    "SyncReport": "airflow_client.syncing",
    "sync": "airflow_client.syncing",
}

__all__ = ["__version__", *_HOMES]


def __getattr__(name: str) -> object:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'airflow_client' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # the next access is a plain attribute read
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
