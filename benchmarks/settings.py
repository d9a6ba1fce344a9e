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
