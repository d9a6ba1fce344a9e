from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AirflowClientConfig(AppConfig):
    name = "airflow_client"
    verbose_name = _("Airflow jobs")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from airflow_client import checks  # noqa: F401  (registers the system checks)
        from airflow_client.jobs import autodiscover

        autodiscover()
