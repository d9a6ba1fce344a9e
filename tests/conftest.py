from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from airflow_client.exceptions import AirflowTimeout
from airflow_client.transports import fake

pytest_plugins = ["tests.browsers"]


@pytest.fixture(autouse=True)
def _reset_fake_airflow() -> Iterator[None]:
    """Every test starts with an empty fake Airflow (the default test transport)."""
    fake.reset_all()
    yield
    fake.reset_all()


@pytest.fixture
def fake_airflow() -> fake.FakeAirflow:
    """The fake Airflow behind the "default" environment (emptied around every test)."""
    return fake.get_airflow("default")


@pytest.fixture
def trigger_answer_lost(fake_airflow: fake.FakeAirflow) -> None:
    """The next trigger creates its run in Airflow, but its answer never arrives (a timeout)."""
    fake_airflow.lose_next_answer("trigger", AirflowTimeout("Airflow did not answer within 10 s."))


@pytest.fixture
def finding_aid(db: None) -> Any:
    from tests.testapp.models import FindingAid

    return FindingAid.objects.create(title="Papers of Ada Lovelace")


@pytest.fixture
def collection(db: None) -> Any:
    from tests.testapp.models import Collection

    return Collection.objects.create(slug="postcards/1900s", name="Postcards")


@pytest.fixture
def changes() -> Iterator[list[tuple[str | None, str]]]:
    """(old state, new state) of every run_state_changed sent during the test."""
    from airflow_client.signals import run_state_changed

    seen: list[tuple[str | None, str]] = []

    def receiver(sender: Any, job_run: Any, old_state: str | None, new_state: str, **kwargs: Any) -> None:
        seen.append((old_state, new_state))

    run_state_changed.connect(receiver, weak=False)
    yield seen
    run_state_changed.disconnect(receiver)
