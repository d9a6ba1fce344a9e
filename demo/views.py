from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest


def demo_context(request: HttpRequest) -> dict[str, Any]:
    """Which Airflow the demo talks to, for the page footer."""
    mode = settings.DEMO_AIRFLOW
    environment = settings.AIRFLOW_ENVIRONMENTS["default"]
    if mode in ("2", "3"):
        airflow = f"Airflow {mode} at {environment['BASE_URL']}"
    else:
        airflow = "a simulated Airflow (runs end after a few seconds; conf fail=true ends failed)"
    return {"demo_airflow": airflow}
