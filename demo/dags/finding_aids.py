"""The finding aids' DAGs (Cinco): index_finding_aid and delete_finding_aid.

Both run on Airflow 3 and 2. conf: ``finding_aid_id`` and ``ark`` (set by the
Django Job), ``sleep`` (seconds each step takes, default 1) and ``fail``
(true: the indexing step raises on purpose).
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any

try:  # Airflow 3: the authoring API lives in the task SDK.
    from airflow.sdk import DAG, task
except ImportError:  # Airflow 2
    from airflow.decorators import task
    from airflow.models.dag import DAG

COMMON: dict[str, Any] = {
    "schedule": None,
    "catchup": False,
    "start_date": datetime(2024, 1, 1, tzinfo=timezone.utc),
    "tags": ["django-airflow-client demo", "findingaids"],
}


def _conf(context: dict[str, Any]) -> dict[str, Any]:
    dag_run = context.get("dag_run")
    return dict(getattr(dag_run, "conf", None) or {})


def _nap(conf: dict[str, Any]) -> None:
    time.sleep(float(conf.get("sleep", 1)))


with DAG("index_finding_aid", description="Index a finding aid for the public site", **COMMON):

    @task
    def fetch_finding_aid(**context: Any) -> dict[str, Any]:
        conf = _conf(context)
        print(f"Fetching finding aid {conf.get('finding_aid_id')} ({conf.get('ark', 'no ARK')}) from Django")
        _nap(conf)
        return {"finding_aid_id": conf.get("finding_aid_id"), "ark": conf.get("ark"), "components": 42}

    @task
    def build_index_document(finding_aid: dict[str, Any], **context: Any) -> dict[str, Any]:
        conf = _conf(context)
        print(f"Building the index document: {finding_aid['components']} components")
        _nap(conf)
        if conf.get("fail"):
            raise RuntimeError("index_finding_aid fails on purpose (conf fail=true)")
        return {**finding_aid, "document_bytes": 18_432}

    @task
    def publish_to_index(document: dict[str, Any], **context: Any) -> None:
        print(f"Published {document['ark']} to the index ({document['document_bytes']} bytes)")
        _nap(_conf(context))

    publish_to_index(build_index_document(fetch_finding_aid()))


with DAG("delete_finding_aid", description="Remove a finding aid from the public index", **COMMON):

    @task
    def remove_from_index(**context: Any) -> None:
        conf = _conf(context)
        print(
            f"Removing {conf.get('ark', 'no ARK')} (finding aid {conf.get('finding_aid_id')}) from the index"
        )
        _nap(conf)
        if conf.get("fail"):
            raise RuntimeError("delete_finding_aid fails on purpose (conf fail=true)")

    remove_from_index()
