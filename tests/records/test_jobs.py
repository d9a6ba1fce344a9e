from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User

from airflow_client.checks import check_jobs
from airflow_client.exceptions import UnknownJob
from airflow_client.jobs import Job, all_jobs, find_job, get_job, jobs_for_model, register, unregister
from tests.testapp.airflow_jobs import HarvestCollection, IndexFindingAid, PublishFindingAid
from tests.testapp.models import Collection, FindingAid


@pytest.fixture
def temporary_jobs() -> Iterator[list[type[Job]]]:
    registered: list[type[Job]] = []
    yield registered
    for cls in registered:
        unregister(cls)


def test_autodiscovery_registered_the_test_app_jobs() -> None:
    assert {type(job) for job in all_jobs()} >= {IndexFindingAid, HarvestCollection}


def test_get_job_by_class_instance_and_dag_id() -> None:
    job = get_job(IndexFindingAid)
    assert isinstance(job, IndexFindingAid)
    assert get_job("index_finding_aid") is job
    assert get_job(job) is job
    assert job.label == "Index finding aid"


def test_unknown_job_is_named() -> None:
    with pytest.raises(UnknownJob, match="'no_such_dag'"):
        get_job("no_such_dag")

    class Unregistered(Job):
        dag_id = "x"

    with pytest.raises(UnknownJob, match="Unregistered"):
        get_job(Unregistered)


def test_ambiguous_dag_id_asks_for_the_class(temporary_jobs: list[type[Job]]) -> None:
    @register
    class IndexCollection(Job):
        dag_id = "index_finding_aid"
        model = "testapp.Collection"
        conf_key = "collection_id"

    temporary_jobs.append(IndexCollection)
    with pytest.raises(UnknownJob, match="IndexCollection"):
        get_job("index_finding_aid")
    assert isinstance(get_job(IndexCollection), IndexCollection)


def test_find_job_by_model_instance_or_label(temporary_jobs: list[type[Job]]) -> None:
    @register
    class IndexCollection(Job):  # a second Job of the DAG, for another model
        dag_id = "index_finding_aid"
        model = "testapp.Collection"
        conf_key = "collection_id"

    temporary_jobs.append(IndexCollection)
    assert isinstance(find_job(FindingAid, "index_finding_aid"), IndexFindingAid)
    assert isinstance(find_job(FindingAid(title="x"), "index_finding_aid"), IndexFindingAid)
    assert isinstance(find_job("testapp.findingaid", "index_finding_aid"), IndexFindingAid)
    assert isinstance(find_job(Collection, "index_finding_aid"), IndexCollection)


def test_find_job_names_what_it_did_not_find() -> None:
    with pytest.raises(UnknownJob, match=r"'harvest_collection' is registered for testapp\.FindingAid"):
        find_job(FindingAid, "harvest_collection")  # a Job of that DAG exists, for another model
    with pytest.raises(UnknownJob, match=r"'testapp\.nothing'"):
        find_job("testapp.nothing", "index_finding_aid")
    with pytest.raises(UnknownJob, match="'not a label'"):
        find_job("not a label", "index_finding_aid")


def test_jobs_for_model_and_instance() -> None:
    assert [type(job) for job in jobs_for_model(FindingAid)] == [IndexFindingAid, PublishFindingAid]
    assert [type(job) for job in jobs_for_model(Collection(slug="c"))] == [HarvestCollection]


@pytest.mark.django_db
def test_conf_and_objects_round_trip(collection: Any) -> None:
    job = get_job(HarvestCollection)
    conf = job.get_conf(collection, extra=1)
    assert conf == {"collection_id": "postcards/1900s", "extra": 1}
    assert job.get_objects(conf) == [collection]
    assert job.get_objects({}) == []
    assert get_job(IndexFindingAid).get_objects({"finding_aid_id": "not-a-number"}) == []


@pytest.mark.django_db
def test_trigger_permission_defaults_to_the_model_permission(finding_aid: Any) -> None:
    job = get_job(IndexFindingAid)
    user = User.objects.create_user("clerk")
    assert not job.has_trigger_permission(user, finding_aid)
    user.user_permissions.add(Permission.objects.get(codename="trigger_job"))
    user = User.objects.get(pk=user.pk)  # permissions are cached per instance
    assert job.has_trigger_permission(user, finding_aid)


def test_system_checks_for_jobs(temporary_jobs: list[type[Job]]) -> None:
    assert check_jobs() == []

    @register
    class MissingModel(Job):
        dag_id = "missing_model"
        model = "testapp.Nope"

    @register
    class UnknownEnvironment(Job):
        dag_id = "unknown_env"
        model = "testapp.FindingAid"
        environment = "staging"

    @register
    class Duplicate(Job):
        dag_id = "index_finding_aid"
        model = "testapp.FindingAid"

    temporary_jobs.extend([MissingModel, UnknownEnvironment, Duplicate])
    errors = {error.id: error.msg for error in check_jobs()}
    assert set(errors) == {"airflow_client.E020", "airflow_client.E021", "airflow_client.E022"}
    assert "testapp.Nope" in errors["airflow_client.E020"]
    assert "'staging'" in errors["airflow_client.E021"]
    assert "Duplicate" in errors["airflow_client.E022"]
    assert "IndexFindingAid" in errors["airflow_client.E022"]


def test_register_rejects_non_jobs() -> None:
    with pytest.raises(TypeError):
        register(object)  # type: ignore[type-var]

    class NoDag(Job):
        pass

    with pytest.raises(TypeError, match="no dag_id"):
        register(NoDag)
