"""Django tasks of the test app, run by every backend of tests/tasks (and by the real Airflows)."""

from __future__ import annotations

from airflow_client.tasks_compat import TaskContext, task


@task
def add(a: int, b: int) -> int:
    return a + b


@task
def explode(message: str) -> None:
    raise ValueError(message)


@task(takes_context=True)
def flaky(context: TaskContext) -> str:
    """Fails its first attempt."""
    if context.attempt < 2:
        raise RuntimeError(f"attempt {context.attempt} fails on purpose")
    return f"attempt {context.attempt}"


@task
async def add_later(a: int, b: int) -> int:
    return a + b


@task
def noop() -> None:
    return None


def _lost() -> str:
    return "never imported by this name"


# A task whose import path (tests.testapp.tasks._lost) leads to the bare function, not to the task.
renamed = task(_lost)
