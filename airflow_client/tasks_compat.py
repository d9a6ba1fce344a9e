"""Django's task framework, wherever it comes from: ``django.tasks`` (Django 6), else the
``django-tasks`` backport (Django 5.2, ``pip install 'django-airflow-client[tasks]'``).

Importing this module without either raises an ImportError saying so.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import django

__all__ = [
    "DEFAULT_TASK_QUEUE_NAME",
    "BaseTaskBackend",
    "InvalidTask",
    "Task",
    "TaskContext",
    "TaskError",
    "TaskResult",
    "TaskResultDoesNotExist",
    "TaskResultStatus",
    "load_task",
    "normalize_json",
    "task",
    "task_backends",
    "task_enqueued",
    "task_finished",
    "task_started",
]

if TYPE_CHECKING or django.VERSION >= (6, 0):
    from django.tasks import DEFAULT_TASK_QUEUE_NAME, task, task_backends
    from django.tasks.backends.base import BaseTaskBackend
    from django.tasks.base import Task, TaskContext, TaskError, TaskResult, TaskResultStatus
    from django.tasks.exceptions import InvalidTask, TaskResultDoesNotExist
    from django.tasks.signals import task_enqueued, task_finished, task_started
    from django.utils.json import normalize_json
else:  # pragma: no cover  (Django 5.2: the matrix runs it)
    try:
        from django_tasks import DEFAULT_TASK_QUEUE_NAME, task, task_backends
        from django_tasks.backends.base import BaseTaskBackend
        from django_tasks.base import Task, TaskContext, TaskError, TaskResult, TaskResultStatus
        from django_tasks.exceptions import InvalidTaskError as InvalidTask, TaskResultDoesNotExist
        from django_tasks.signals import task_enqueued, task_finished, task_started
        from django_tasks.utils import normalize_json
    except ImportError as exc:
        raise ImportError(
            f"airflow_client.tasks needs Django's task framework: Django 6, or on Django "
            f"{django.get_version()} the django-tasks backport "
            "(pip install 'django-airflow-client[tasks]', and add 'django_tasks' to INSTALLED_APPS)."
        ) from exc


def load_task(path: str) -> Task[Any, Any]:
    """The task at the import path ``path`` (as Airflow's worker will import it); InvalidTask if none."""
    from django.utils.module_loading import import_string

    try:
        found = import_string(path)
    except ImportError as exc:
        raise InvalidTask(f"The task {path!r} cannot be imported: {exc}") from exc
    if not isinstance(found, Task):
        raise InvalidTask(f"{path!r} is not a task (a function decorated with @task).")
    return found
