"""The demo, end to end, in a real browser against the real Airflow 3 that scripts/test.sh starts.

The demo site runs as `make demo` runs it (its own settings, migrated and seeded,
``runserver --noreload``) in a subprocess pointed at DAC_AIRFLOW3_URL, whose DAG
folder holds demo/dags (scripts/test.sh copies them there). Skipped without
DAC_AIRFLOW3_URL, unless DAC_REQUIRE_SERVICES=1.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from airflow_client.exceptions import AirflowUnavailable, NotFound
from tests.contract.conftest import make_transport

pytestmark = [pytest.mark.browser, pytest.mark.contract]

ROOT = Path(__file__).resolve().parents[2]
DEMO_DAGS = ("index_finding_aid", "delete_finding_aid", "harvest_collection")
#: a run of a few one-second tasks; far more on a busy 2-core machine.
RUN_MS = 180_000


def airflow3_url() -> str:
    url = os.environ.get("DAC_AIRFLOW3_URL", "")
    if not url:
        if os.environ.get("DAC_REQUIRE_SERVICES") == "1":
            pytest.fail("DAC_AIRFLOW3_URL is not set (scripts/test.sh starts Airflow 3 and sets it).")
        pytest.skip("DAC_AIRFLOW3_URL is not set (scripts/test.sh starts Airflow 3 and sets it).")
    return url


def wait_for_demo_dags(url: str, seconds: float = 120) -> None:
    transport = make_transport(url)
    deadline = time.monotonic() + seconds
    missing = list(DEMO_DAGS)
    try:
        while missing:
            for dag_id in list(missing):
                try:
                    transport.get_dag(dag_id)
                    missing.remove(dag_id)
                except (NotFound, AirflowUnavailable):
                    pass
            if missing and time.monotonic() > deadline:
                pytest.fail(f"Airflow at {url} does not list {missing}: is demo/dags in its DAG folder?")
            time.sleep(0.5)
    finally:
        transport.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The demo site against the test suite's Airflow 3: its base URL."""
    url = airflow3_url()
    wait_for_demo_dags(url)
    folder = tmp_path_factory.mktemp("demo")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "demo.settings",
        "DEMO_AIRFLOW": "3",
        "DEMO_AIRFLOW_URL": url,
        "DEMO_DB": str(folder / "demo.sqlite3"),
    }
    for args in (["migrate", "-v", "0"], ["seed_demo"]):
        subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, timeout=180)
    port = free_port()
    log = (folder / "django.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own group: stopped whole below
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"The demo did not start: {(folder / 'django.log').read_text()[-2000:]}")
                time.sleep(0.2)
        yield base
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=20)
        log.close()


@pytest.fixture
def page(browser: Any, demo: str) -> Iterator[Any]:
    context = browser.new_context(base_url=demo, viewport={"width": 1200, "height": 900})
    context.set_default_timeout(20_000)
    tab = context.new_page()
    tab.goto("/")
    tab.get_by_label("Username").fill("demo")
    tab.get_by_label("Password").fill("demo")
    tab.get_by_role("button", name="Log in").click()
    expect(tab.get_by_role("heading", name="Finding aids")).to_be_visible()
    yield tab
    context.close()


def start_and_follow(page: Any, dag_id: str) -> Any:
    """Press Start on the record page's widget of ``dag_id``; wait for success without a reload."""
    page.evaluate("window.notReloaded = true")
    widget = page.locator(f'.jobs .ac-widget[data-dag-id="{dag_id}"]')
    widget.get_by_role("button", name="Start").click()
    status = page.locator(f'.jobs .ac-widget[data-dag-id="{dag_id}"]').get_by_role("status")
    expect(status).to_have_text(re.compile("Queued|Running|Succeeded"))
    expect(status).to_have_text("Succeeded", timeout=RUN_MS)
    assert page.evaluate("window.notReloaded") is True  # followed by polling alone
    return page.locator(f'.jobs .ac-widget[data-dag-id="{dag_id}"]')


def test_index_a_finding_aid_then_read_its_history_and_logs(page: Any):
    page.get_by_role("link", name="Papers of Ada Lovelace").click()
    expect(page.get_by_role("heading", name="Papers of Ada Lovelace")).to_be_visible()
    record_url = page.url
    widget = start_and_follow(page, "index_finding_aid")

    widget.get_by_role("link", name="History").click()
    rows = page.locator("#ac-runs .ac-table-wrap tbody tr")  # not the chart's table of the same runs
    expect(rows.first).to_contain_text("index_finding_aid")
    expect(rows.first).to_contain_text("Succeeded")

    page.goto(record_url)
    page.locator('.jobs .ac-widget[data-dag-id="index_finding_aid"]').get_by_role("link", name="Logs").click()
    expect(page.get_by_text("publish_to_index").first).to_be_visible()
    page.locator("a[href*='/logs/fetch_finding_aid/']").first.click()
    expect(page.get_by_role("log")).to_contain_text("Fetching finding aid", timeout=30_000)


def test_harvest_a_collection(page: Any):
    page.get_by_role("navigation").get_by_role("link", name="Collections").click()
    page.get_by_role("link", name="Citrus crate labels").click()
    widget = start_and_follow(page, "harvest_collection")
    widget.get_by_role("link", name="Logs").click()
    expect(page.get_by_text("map_page").first).to_be_visible()
    page.locator("a[href*='/logs/fetch_metadata/']").first.click()
    expect(page.get_by_role("log")).to_contain_text("fetched page 2 of 2", timeout=30_000)
