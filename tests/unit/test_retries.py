"""The transports' one retry loop: reads again while Airflow is unavailable, writes never blindly."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from airflow_client.exceptions import AirflowError, AirflowTimeout, AirflowUnavailable, NotFound
from airflow_client.transports.retries import NotSent, with_retries


def failing(*errors: AirflowError) -> tuple[Callable[[], str], list[int]]:
    """An attempt raising ``errors`` one after the other, then answering "ok"; and its call count."""
    calls: list[int] = []

    def attempt() -> str:
        calls.append(1)
        if len(calls) <= len(errors):
            raise errors[len(calls) - 1]
        return "ok"

    return attempt, calls


def test_a_read_is_retried_with_doubling_pauses() -> None:
    attempt, calls = failing(AirflowUnavailable("503"), AirflowUnavailable("503"))
    sleeps: list[float] = []
    assert with_retries(attempt, read=True, retries=2, pause=0.5, sleep=sleeps.append) == "ok"
    assert (len(calls), sleeps) == (3, [0.5, 1.0])


def test_the_last_error_propagates() -> None:
    attempt, calls = failing(*[AirflowUnavailable(f"try {i}") for i in range(3)])
    with pytest.raises(AirflowUnavailable, match="try 2"):
        with_retries(attempt, read=True, retries=2, pause=0, sleep=lambda s: None)
    assert len(calls) == 3


@pytest.mark.parametrize("read", [True, False])
def test_timeouts_and_other_errors_are_not_retried(read: bool) -> None:
    for error in (AirflowTimeout("slow"), NotFound("gone")):
        attempt, calls = failing(error)
        with pytest.raises(type(error)):
            with_retries(attempt, read=read, retries=3, pause=0, sleep=lambda s: None)
        assert len(calls) == 1


def test_a_write_is_retried_only_when_never_sent() -> None:
    attempt, calls = failing(AirflowUnavailable("reset"))
    with pytest.raises(AirflowUnavailable, match="reset"):
        with_retries(attempt, read=False, retries=3, pause=0, sleep=lambda s: None)
    assert len(calls) == 1

    attempt, calls = failing(NotSent("refused"))
    assert with_retries(attempt, read=False, retries=3, pause=0, sleep=lambda s: None) == "ok"
    assert len(calls) == 2
