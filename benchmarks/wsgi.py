"""gunicorn's entry point for bench_endpoints (settings: benchmarks.settings, from the environment)."""

from __future__ import annotations

from django.core.wsgi import get_wsgi_application

application = get_wsgi_application()
