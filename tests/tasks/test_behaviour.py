"""What a user of Django's task framework sees, the same on every backend (apart from timing).

Each test runs on the Airflow backend with the fake transport, on Django's
ImmediateBackend, and (contract) on the real Airflow 3 and 2: see conftest.py.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.utils import timezone

from airflow_client.tasks_compat import (
    InvalidTask,
    TaskResultStatus,
    task_backends,
    task_enqueued,
    task_finished,
    task_started,
)
from tests.tasks.conftest import Backend
from tests.testapp.tasks import add, add_later, explode, flaky

READY, RUNNING, FAILED, SUCCESSFUL = (
    TaskResultStatus(s) for s in ("READY", "RUNNING", "FAILED", "SUCCESSFUL")
)


def test_a_task_returning_a_value_is_successful_with_the_value(backend: Backend) -> None:
    result = add.using(backend=backend.alias).enqueue(2, 3)

    done = backend.finish(result)

    assert done.status == SUCCESSFUL
    assert done.return_value == 5
    assert (done.args, done.kwargs) == ([2, 3], {})
    assert done.errors == []
    assert done.attempts == 1
    assert done.enqueued_at is not None
    assert done.started_at is not None
    assert done.finished_at is not None
    assert done.enqueued_at <= done.started_at <= done.finished_at
    assert done.last_attempted_at is not None


def test_the_result_is_found_again_by_its_id(backend: Backend) -> None:
    result = add.using(backend=backend.alias).enqueue(1, 1)
    backend.finish(result)

    if not backend.follows_results:
        with pytest.raises(NotImplementedError):
            add.using(backend=backend.alias).get_result(result.id)
        return
    found = add.using(backend=backend.alias).get_result(result.id)
    assert (found.id, found.status, found.return_value) == (result.id, SUCCESSFUL, 2)
    assert async_to_sync(task_backends[backend.alias].aget_result)(result.id).return_value == 2


def test_a_raising_task_fails_with_its_exception_class_and_traceback(backend: Backend) -> None:
    result = explode.using(backend=backend.alias).enqueue("kaboom")

    done = backend.finish(result)

    assert done.status == FAILED
    [error] = done.errors
    assert error.exception_class is ValueError
    assert error.traceback.startswith("Traceback (most recent call last)")
    assert "in explode" in error.traceback
    assert error.traceback.rstrip().endswith("ValueError: kaboom")
    with pytest.raises(ValueError, match="Task failed"):
        _ = done.return_value


def test_a_task_with_a_retry_succeeds_on_its_second_attempt(backend: Backend) -> None:
    """The "retry" queue's DAG on Airflow gives a task a second try; Django's ImmediateBackend never retries."""
    result = flaky.using(backend=backend.alias, queue_name="retry").enqueue()

    done = backend.finish(result)

    if backend.retry_queue_retries:
        assert (done.status, done.return_value, done.attempts) == (SUCCESSFUL, "attempt 2", 2)
    else:
        assert (done.status, done.attempts) == (FAILED, 1)
        assert done.errors[0].exception_class is RuntimeError


def test_supports_defer_behaves_as_declared(backend: Backend, settings: Any) -> None:
    declared = task_backends[backend.alias].supports_defer
    run_after = timezone.now() + timedelta(seconds=20 if backend.kind == "real" else 3600)
    if not declared:
        with pytest.raises(InvalidTask):
            add.using(backend=backend.alias, run_after=run_after)
        return

    result = add.using(backend=backend.alias, run_after=run_after).enqueue(4, 4)

    if backend.kind == "fake":
        from airflow_client.transports import fake

        fake.get_airflow().run_tasks()  # not yet: the run waits in the queue
        result.refresh()
        assert result.status == READY
        fake.get_airflow().clock = lambda: run_after + timedelta(seconds=1)
    else:  # the real Airflow: still waiting well before run_after
        while timezone.now() < run_after - timedelta(seconds=8):
            result.refresh()
            assert result.status == READY, f"started before run_after ({run_after})"
            time.sleep(1)
    done = backend.finish(result)
    assert (done.status, done.return_value) == (SUCCESSFUL, 8)
    assert done.started_at >= run_after - timedelta(seconds=1)  # Airflow's clock and ours


def test_an_async_task_runs_to_its_end(backend: Backend) -> None:
    result = async_to_sync(add_later.using(backend=backend.alias).aenqueue)(20, 22)

    assert backend.finish(result).return_value == 42


def test_arguments_that_are_not_json_are_refused_at_enqueue(backend: Backend) -> None:
    with pytest.raises(TypeError):
        add.using(backend=backend.alias).enqueue(object(), 1)


@pytest.fixture
def signals() -> Iterator[list[tuple[str, str, str]]]:
    """(signal, result id, status) of every task signal sent, in order."""
    sent: list[tuple[str, str, str]] = []
    receivers = {}
    for name, signal in (("enqueued", task_enqueued), ("started", task_started), ("finished", task_finished)):

        def receiver(sender: Any, task_result: Any, _name: str = name, **kwargs: Any) -> None:
            sent.append((_name, task_result.id, str(task_result.status)))

        signal.connect(receiver, weak=False)
        receivers[signal] = receiver
    yield sent
    for signal, receiver in receivers.items():
        signal.disconnect(receiver)


def test_the_task_signals_follow_the_state(backend: Backend, signals: list[tuple[str, str, str]]) -> None:
    result = add.using(backend=backend.alias).enqueue(1, 2)
    backend.finish(result)
    backend.finish(result)  # looking again announces nothing twice

    assert [(name, status) for name, id_, status in signals if id_ == result.id] == [
        ("enqueued", READY),
        ("started", RUNNING),
        ("finished", SUCCESSFUL),
    ]
