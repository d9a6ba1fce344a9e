from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _reset_fake_airflow() -> Iterator[None]:
    """Every test starts with an empty fake Airflow (the default test transport)."""
    from airflow_client.transports import fake

    fake.reset_all()
    yield
    fake.reset_all()
