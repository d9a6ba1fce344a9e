"""Jobs of the test app (found by autodiscovery)."""

from __future__ import annotations

from airflow_client.jobs import Job, register


@register
class IndexFindingAid(Job):
    dag_id = "index_finding_aid"
    model = "testapp.FindingAid"
    conf_key = "finding_aid_id"


@register
class HarvestCollection(Job):
    dag_id = "harvest_collection"
    model = "testapp.Collection"
    conf_key = "collection_id"


@register
class PublishFindingAid(Job):
    """A second Job of the same model: its widget sits beside IndexFindingAid's."""

    dag_id = "publish_finding_aid"
    model = "testapp.FindingAid"
    conf_key = "finding_aid_id"
    label = "Publish"
    confirm = "Publish this finding aid on the public site?"
