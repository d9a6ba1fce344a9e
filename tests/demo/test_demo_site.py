"""The demo site (demo/, manage.py) cannot rot: its checks pass, it migrates and seeds on SQLite,
its pages answer, and its list pages cost the same number of queries however many records they show.

It runs in a subprocess: the demo has its own settings module and apps.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

SETUP = """
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from airflow_client import JobRun
from demo.collections.models import Collection
from demo.findingaids.models import FindingAid

client = Client()
client.force_login(get_user_model().objects.get(username="demo"))
"""

PAGES = (
    SETUP
    + """
assert FindingAid.objects.count() + Collection.objects.count() == 20
assert JobRun.objects.filter(dag_id="index_finding_aid").exists()
assert JobRun.objects.filter(dag_id="harvest_collection", state="failed").exists()
assert set(FindingAid.objects.values_list("status", flat=True)) == {"new", "indexed", "failed"}

pages = ["/findingaids/", "/collections/", "/airflow/runs/", "/admin/findingaids/findingaid/",
         "/admin/collections/collection/", "/admin/findingaids/findingaid/1/change/"]
pages += [FindingAid.objects.first().get_absolute_url(), Collection.objects.first().get_absolute_url()]
for url in pages:
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    if not url.startswith("/admin/"):
        assert b'class="site-header"' in response.content, url  # the site's own base template
assert client.get("/accounts/login/").status_code == 200

# the admin's bulk action starts the Job for each selected record (here on the simulated Airflow)
picked = [str(pk) for pk in FindingAid.objects.filter(status="new").values_list("pk", flat=True)[:2]]
response = client.post(
    "/admin/findingaids/findingaid/",
    {"action": "trigger_index_finding_aid", "_selected_action": picked},
    follow=True,
)
assert response.status_code == 200
assert FindingAid.objects.filter(pk__in=picked, status="indexing").count() == 2  # the signal, at "queued"
assert JobRun.objects.filter(dag_id="index_finding_aid", state="queued").count() == 2
print("demo probe ok")
"""
)

QUERIES = (
    SETUP
    + """
def queries(url):
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


for url in ("/findingaids/", "/collections/"):
    queries(url)  # warm the per-process caches (content types) first
before = {url: queries(url) for url in ("/findingaids/", "/collections/")}
for n in range(10):
    FindingAid.objects.create(ark=f"ark:/99999/more{n}", title=f"More {n}", repository="Elsewhere")
    Collection.objects.create(name=f"More {n}")
after = {url: queries(url) for url in before}
assert after == before, (before, after)
print("demo probe ok")
"""
)


def manage(*args: str, db: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "demo.settings",
        "DEMO_AIRFLOW": "fake",
        "DEMO_DB": str(db),
        "PYTHONWARNINGS": "error::DeprecationWarning",
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A demo database, checked, migrated and seeded as `make demo` does."""
    db = tmp_path_factory.mktemp("demo") / "demo.sqlite3"
    for args in (
        ["check", "--fail-level", "WARNING"],
        ["makemigrations", "--check", "--dry-run"],
        ["migrate"],
    ):
        result = manage(*args, db=db)
        assert result.returncode == 0, (args, result.stdout, result.stderr)
    seeded = manage("seed_demo", db=db)
    assert seeded.returncode == 0, seeded.stderr
    assert "Seeded 12 finding aids, 8 collections" in seeded.stdout
    again = manage("seed_demo", db=db)
    assert "nothing seeded" in again.stdout  # idempotent
    return db


def test_demo_checks_migrates_seeds_and_serves_its_pages(seeded: Path):
    probe = manage("shell", "-c", PAGES, db=seeded)
    assert probe.returncode == 0, probe.stdout + probe.stderr
    assert "demo probe ok" in probe.stdout


def test_list_pages_cost_the_same_queries_whatever_the_number_of_rows(seeded: Path, tmp_path: Path):
    db = tmp_path / "copy.sqlite3"
    shutil.copy(seeded, db)
    probe = manage("shell", "-c", QUERIES, db=db)
    assert probe.returncode == 0, probe.stdout + probe.stderr
