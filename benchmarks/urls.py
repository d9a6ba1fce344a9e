"""The test suite's URLs plus a bare login-protected view, the yardstick of bench_endpoints."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.urls import path

from tests.urls import urlpatterns as test_urlpatterns


@login_required
def bare(request: HttpRequest) -> HttpResponse:
    """Sessions and authentication, nothing else: what any login-protected view costs."""
    return HttpResponse(status=204)


urlpatterns = [*test_urlpatterns, path("bench/bare/", bare, name="bench_bare")]
