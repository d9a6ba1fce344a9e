"""Jobs: one class per (DAG, kind of record), registered with ``@register``.

Each installed app may hold an ``airflow_jobs`` module; ``autodiscover()``
(called from AppConfig.ready) imports them so their ``@register`` lines run.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from django.apps import apps
from django.db import models
from django.utils.module_loading import autodiscover_modules

from airflow_client.exceptions import UnknownJob
from airflow_client.retention import KeepAll, RetentionPolicy

if TYPE_CHECKING:
    from django.contrib.auth.base_user import AbstractBaseUser
    from django.contrib.auth.models import AnonymousUser

__all__ = ["Job", "all_jobs", "autodiscover", "conf_pk", "find_job", "get_job", "jobs_for_model", "register"]


class Job:
    """Describes how to start one DAG for one kind of record.

    Subclass it, set ``dag_id``, ``model`` ("app_label.Model") and ``conf_key``,
    and decorate the class with ``@register``.
    """

    dag_id: str = ""
    #: "app_label.ModelName" of the records this Job runs for.
    model: str = ""
    #: conf[conf_key] = obj.pk; also maps a run found in Airflow back to its record.
    conf_key: str = ""
    #: human name (default derived from dag_id).
    label: str = ""
    #: alias in AIRFLOW_ENVIRONMENTS.
    environment: str = "default"
    retention: RetentionPolicy = KeepAll()
    #: False: at most one queued/running run per record (a database guarantee).
    allow_concurrent: bool = False
    #: False, or a question the widget asks before triggering.
    confirm: bool | str = False

    def __init__(self) -> None:
        if not self.label:
            self.label = self.dag_id.replace("_", " ").strip().capitalize()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} dag_id={self.dag_id!r}>"

    def get_model(self) -> type[models.Model]:
        """The model class (LookupError / ValueError when ``model`` names none)."""
        return apps.get_model(self.model)

    def get_conf(self, obj: models.Model, **kwargs: Any) -> dict[str, Any]:
        """The run's conf for ``obj``; keyword arguments are merged over it."""
        return {self.conf_key: conf_pk(obj), **kwargs} if self.conf_key else dict(kwargs)

    def get_objects(self, conf: Mapping[str, Any]) -> list[models.Model]:
        """The records a run with ``conf`` was about (inverse of get_conf)."""
        if not self.conf_key or conf.get(self.conf_key) is None:
            return []
        value = conf[self.conf_key]
        values = value if isinstance(value, list) else [value]
        try:
            return list(self.get_model()._default_manager.filter(pk__in=values))
        except (ValueError, TypeError):  # a value the key's type cannot hold
            return []

    def get_note(self, obj: models.Model) -> str | None:
        return None

    def get_run_id(self, obj: models.Model) -> str | None:
        """A run id of your own, or None for a generated one."""
        return None

    def has_trigger_permission(self, user: AbstractBaseUser | AnonymousUser, obj: models.Model) -> bool:
        return bool(getattr(user, "has_perm", lambda perm: False)("airflow_client.trigger_job"))

    def matches_model(self, model: type[models.Model]) -> bool:
        try:
            own = self.get_model()
        except (LookupError, ValueError):
            return False
        return own._meta.concrete_model is model._meta.concrete_model


def conf_pk(obj: models.Model) -> Any:
    """``obj.pk`` as JSON can carry it: ints and strings as they are, anything else (UUID) as text.

    get_objects() maps the text back: the key field converts it in its lookup.
    """
    pk = obj.pk
    return pk if isinstance(pk, (int, str)) and not isinstance(pk, bool) else str(pk)


_lock = threading.Lock()
_registry: dict[type[Job], Job] = {}

JobT = TypeVar("JobT", bound=type[Job])


def register(cls: JobT) -> JobT:
    """Class decorator: register one instance of ``cls`` (re-registering replaces it)."""
    if not (isinstance(cls, type) and issubclass(cls, Job)):
        raise TypeError("@register decorates a Job subclass.")
    if not cls.dag_id:
        raise TypeError(f"{cls.__name__} has no dag_id.")
    with _lock:
        # A module imported twice (autoreload, tests) re-registers its class by name.
        for existing in list(_registry):
            if existing.__module__ == cls.__module__ and existing.__qualname__ == cls.__qualname__:
                del _registry[existing]
        _registry[cls] = cls()
    return cls


def unregister(cls: type[Job]) -> None:
    with _lock:
        _registry.pop(cls, None)


def all_jobs() -> list[Job]:
    with _lock:
        return list(_registry.values())


def get_job(job: type[Job] | Job | str) -> Job:
    """The registered instance for a Job class, instance or dag_id."""
    jobs = all_jobs()
    if isinstance(job, Job):
        job = type(job)
    if isinstance(job, type):
        for candidate in jobs:
            if type(candidate) is job:
                return candidate
        raise UnknownJob(f"Job {job.__name__} is not registered (decorate it with @register).")
    matches = [candidate for candidate in jobs if candidate.dag_id == job]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise UnknownJob(f"No registered Job has dag_id {job!r}.")
    names = ", ".join(type(candidate).__name__ for candidate in matches)
    raise UnknownJob(f"Several Jobs have dag_id {job!r} ({names}): pass the Job class.")


def jobs_for_model(model_or_instance: type[models.Model] | models.Model) -> list[Job]:
    model = model_or_instance if isinstance(model_or_instance, type) else type(model_or_instance)
    return [job for job in all_jobs() if job.matches_model(model)]


def find_job(model: type[models.Model] | models.Model | str, dag_id: str) -> Job:
    """The Job of ``dag_id`` for a model (class, instance or "app_label.model" label).

    Not get_job(dag_id): two models may each have a Job of one DAG, and the
    record's model tells them apart. Raises UnknownJob when there is none.
    """
    if isinstance(model, str):
        try:
            model = apps.get_model(model)
        except (LookupError, ValueError):
            raise UnknownJob(f"No model {model!r} is installed.") from None
    for job in jobs_for_model(model):
        if job.dag_id == dag_id:
            return job
    raise UnknownJob(f"No Job with dag_id {dag_id!r} is registered for {model._meta.label}.")


def jobs_for_dag(dag_id: str, environment: str) -> list[Job]:
    return [job for job in all_jobs() if job.dag_id == dag_id and job.environment == environment]


def records_for_conf(jobs: Iterable[Job], conf: Mapping[str, Any]) -> list[models.Model]:
    """The records a run with ``conf`` was about, by every one of ``jobs`` (duplicates dropped)."""
    found: dict[tuple[str, str], models.Model] = {}
    for job in jobs:
        for obj in job.get_objects(conf):
            found.setdefault((obj._meta.label_lower, str(obj.pk)), obj)
    return list(found.values())


def dag_ids(jobs: Iterable[Job] | None = None) -> list[str]:
    return sorted({job.dag_id for job in (all_jobs() if jobs is None else jobs)})


def autodiscover() -> None:
    autodiscover_modules("airflow_jobs")
