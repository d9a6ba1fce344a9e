from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from tests.factories import make_user


@pytest.fixture
def operator(db: None) -> User:
    """May see runs and start jobs."""
    return make_user("operator", "airflow_client.view_jobrun", "airflow_client.trigger_job")


@pytest.fixture
def viewer(db: None) -> User:
    """May see runs, not start jobs."""
    return make_user("viewer", "airflow_client.view_jobrun")


@pytest.fixture
def client_for(client: Client) -> Any:
    def login(user: User) -> Client:
        client.force_login(user)
        return client

    return login
