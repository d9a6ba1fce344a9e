"""The benchmarks' settings: the test suite's, with the database harness.setup_django() made.

The database comes from the environment (DAC_BENCH_DATABASE, JSON), so that the
processes a benchmark starts (gunicorn's workers) use the same one.
"""

from __future__ import annotations

import json
import os

from tests.settings import *  # noqa: F403

DATABASES = {"default": json.loads(os.environ["DAC_BENCH_DATABASE"])}
ROOT_URLCONF = "benchmarks.urls"
# A site does not serialize its requests: leave out the test suite's live-server lock.
MIDDLEWARE = [name for name in MIDDLEWARE if name != "tests.serialized.SerializedRequestsMiddleware"]  # noqa: F405
