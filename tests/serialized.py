"""One user of the test database at a time, for the tests whose live server takes requests
while the test itself reads the database.

With SQLite in memory, Django gives the live server's threads the test's own
connection (so they see the same data), and two statements at once on it fail
("cannot release savepoint - SQL statements in progress"). Every live-server request
holds LOCK (the middleware, in tests.settings); a test that reads the database while
something else posts to the live server (Airflow's callbacks) holds it for those reads.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

LOCK = threading.RLock()


class SerializedRequestsMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        with LOCK:
            return self.get_response(request)
