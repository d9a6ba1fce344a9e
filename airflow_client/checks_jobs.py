"""System checks for registered Jobs (ids airflow_client.E020-E022)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from django.core import checks

from airflow_client.conf import get_settings
from airflow_client.jobs import all_jobs


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
