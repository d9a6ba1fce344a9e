"""The one retry loop of the transports: which failed requests are sent again, and when.

A read is sent again while Airflow is unavailable (it may answer next time). A
write is not: Airflow may have acted on it before the answer was lost, and a
second trigger would start a second run. Only a request that never left
(:class:`NotSent`) is safe to send again whatever it is. A timeout is never
retried: the caller has already waited TIMEOUT, and a write may have arrived.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from airflow_client.exceptions import AirflowTimeout, AirflowUnavailable

__all__ = ["NotSent", "with_retries"]

T = TypeVar("T")


class NotSent(AirflowUnavailable):
    """Airflow could not be reached at all (no connection): it never saw the request."""


def with_retries(
    attempt: Callable[[], T],
    *,
    read: bool,
    retries: int,
    pause: float,
    sleep: Callable[[float], None],
) -> T:
    """``attempt()``'s answer, calling it up to ``1 + retries`` times.

    Between two attempts, ``sleep`` waits ``pause`` seconds, doubled each time.
    The last attempt's error, and any error not worth a retry, propagates as is.
    """
    for number in range(max(0, retries)):
        try:
            return attempt()
        except AirflowTimeout:
            raise
        except NotSent:
            pass
        except AirflowUnavailable:
            if not read:
                raise
        sleep(pause * 2**number)
    return attempt()
