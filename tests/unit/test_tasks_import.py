"""Without Django's task framework (Django 5.2 without the django-tasks backport) the backend says what to install."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

WITHOUT_FRAMEWORK = """
import django
django.VERSION = (5, 2, 0, "final", 0)
import sys
sys.modules["django_tasks"] = None  # not installed
try:
    import airflow_client.tasks_compat  # what airflow_client.tasks imports it from
except ImportError as exc:
    print(exc)
"""


def test_importing_the_backend_without_a_task_framework_says_what_to_install() -> None:
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_FRAMEWORK], cwd=ROOT, capture_output=True, text=True, check=True
    )

    assert "airflow_client.tasks needs Django's task framework" in done.stdout
    assert "pip install 'django-airflow-client[tasks]'" in done.stdout
