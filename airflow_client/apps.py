from __future__ import annotations

import importlib.util
from typing import Any

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AirflowClientConfig(AppConfig):
    name = "airflow_client"
    verbose_name = _("Airflow jobs")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from airflow_client import checks  # noqa: F401  (registers the system checks)
        from airflow_client.jobs import autodiscover
        from airflow_client.signals import run_state_changed

        autodiscover()
        run_state_changed.connect(_task_run_changed, dispatch_uid="airflow_client.tasks")
        if importlib.util.find_spec("django.tasks") is not None:
            import django.tasks  # noqa: F401  (registers its system checks, ours among them)


def _task_run_changed(
    sender: Any, *, job_run: Any, old_state: str | None, new_state: str, **kwargs: Any
) -> None:
    """Runs of Django tasks (airflow_client.tasks) tell the framework when they start and finish."""
    from airflow_client.dags import CONF_KEY

    if not isinstance(job_run.conf, dict) or CONF_KEY not in job_run.conf:
        return
    try:
        from airflow_client.tasks import run_changed
    except ImportError:  # no task framework here: nobody can be waiting for these signals
        return
    run_changed(job_run, old_state, new_state)
