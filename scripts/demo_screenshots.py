"""Take the README's screenshots from a running demo (`make demo`, any AIRFLOW=...).

    .venv/bin/python scripts/demo_screenshots.py [http://127.0.0.1:8000]

Logs in as demo/demo, starts "Index" on the first finding aid and photographs
the widget while the run is going on, then the job history and the run's page
with its tasks. Drives Debian's chromium headless (Playwright's own browser
download is not used).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

DOCS = Path(__file__).resolve().parents[1] / "docs"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def main(base: str) -> None:
    chromium = shutil.which("chromium")
    if chromium is None:
        sys.exit("chromium is missing: scripts/browser.sh install")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True, args=ARGS)
        page = browser.new_page(viewport={"width": 1100, "height": 800})
        page.goto(f"{base}/accounts/login/")
        page.get_by_label("Username").fill("demo")
        page.get_by_label("Password").fill("demo")
        page.get_by_role("button", name="Log in").click()

        page.goto(f"{base}/findingaids/")
        page.locator("main a[href^='/findingaids/']").first.click()
        widget = page.locator(".ac-widget").first
        widget.get_by_role("button", name="Start").click()
        expect(widget.get_by_role("status")).to_have_text("Running", timeout=60_000)
        page.wait_for_timeout(400)  # let the swap settle before the picture
        DOCS.mkdir(exist_ok=True)
        page.locator(".jobs").screenshot(path=str(DOCS / "widget.png"), animations="disabled")
        expect(widget.get_by_role("status")).to_have_text("Succeeded", timeout=120_000)

        widget.get_by_role("link", name="Logs").click()
        page.locator("#tasks").wait_for()
        page.locator(".ac-log-link").first.click()
        page.locator(".ac-log-line").first.wait_for(timeout=30_000)
        page.screenshot(path=str(DOCS / "run-detail.png"), full_page=True, animations="disabled")

        page.goto(f"{base}/airflow/runs/")
        page.screenshot(path=str(DOCS / "history.png"), full_page=True, animations="disabled")
        browser.close()
    print(f"Wrote {DOCS / 'widget.png'}, {DOCS / 'history.png'}, {DOCS / 'run-detail.png'}")


if __name__ == "__main__":
    main(sys.argv[1].rstrip("/") if len(sys.argv) > 1 else "http://127.0.0.1:8000")
