"""One poll per page (issue 12, item 4): what a list of 50 compact widgets costs per interval.

The page is the test app's list of finding aids (tests/testapp), each row a
compact widget of the Index Job, read through the Django test client as a
signed-in operator. Requests per interval are read from the page itself: each
element with an ``every`` trigger makes one request per interval. Queries are
those of one poll of the page's poller, with the keys the page holds; the runs
were read from Airflow a moment ago (never due), so the figures are this side's
only. "One widget's poll" is the status view, as each widget polled before.
"""

from __future__ import annotations

import re
from typing import Any

from benchmarks import harness

WIDGETS = 50
REPEAT = 30
HTMX = {"HX-Request": "true"}


def rows(db: str) -> list[harness.Row]:
    harness.setup_django(db)
    bench = _Bench(db)
    return bench.active() + bench.finished()


class _Bench:
    def __init__(self, db: str) -> None:
        from django.apps import apps
        from django.contrib.auth.models import Permission, User
        from django.test import Client

        if not apps.is_installed("tests.testapp"):
            raise RuntimeError("bench_poll_page needs the test app (tests.testapp) in INSTALLED_APPS")
        from tests.testapp.models import FindingAid

        self.db = db
        user = User.objects.create(username="bench-page-poll")
        user.user_permissions.add(
            *Permission.objects.filter(
                content_type__app_label="airflow_client", codename__in=["view_jobrun", "trigger_job"]
            )
        )
        self.client = Client()
        self.client.force_login(user)
        FindingAid.objects.all().delete()
        self.aids = FindingAid.objects.bulk_create(FindingAid(title=f"Bench {i}") for i in range(WIDGETS))

    # --- helpers -----------------------------------------------------------------------------------

    def _run(self, aid: Any, state: str) -> Any:
        from datetime import timedelta

        from django.contrib.contenttypes.models import ContentType
        from django.utils import timezone

        from airflow_client.models import JobRecord, JobRun

        now = timezone.now()
        run = JobRun.objects.create(
            environment="default",
            dag_id="index_finding_aid",
            dag_run_id=f"bench_{aid.pk}_{JobRun.objects.count()}",
            state=state,
            queued_at=now - timedelta(seconds=60),
            start_date=now - timedelta(seconds=50),
            end_date=now if state in ("success", "failed") else None,
            refreshed_at=now + timedelta(hours=1),  # never due: this side's cost only
        )
        content_type = ContentType.objects.get_for_model(aid)
        JobRecord.objects.create(
            job_run=run, content_type=content_type, object_id=str(aid.pk), dag_id="index_finding_aid"
        )
        return run

    def _page(self) -> tuple[Any, int]:
        """The page as htmx holds it, and the requests it makes per interval."""
        from django.urls import reverse

        from tests.pages import Page

        html = self.client.get(reverse("findingaid_list")).content.decode()
        return Page.of(html), len(re.findall(r'hx-trigger="[^"]*\bevery\b', html))

    def _poll(self, url: str) -> tuple[int, int, float, int]:
        """Status code, queries, median milliseconds and widgets swapped of a GET of ``url``."""
        from tests.pages import Page

        answer = self.client.get(url, headers=HTMX)  # warm: content types cached, as in a running site
        queries = harness.count_queries(lambda: self.client.get(url, headers=HTMX))
        seconds = harness.timed(lambda: self.client.get(url, headers=HTMX), repeat=REPEAT)
        swapped = len(Page().apply(answer.content.decode())) if answer.status_code == 200 else 0
        return answer.status_code, queries, seconds * 1000, swapped

    def _one_widgets_poll(self, object_id: Any, shown: Any) -> tuple[int, float]:
        """Queries and median milliseconds of one compact widget's own poll (the status view),
        of a widget that showed ``shown``."""
        from django.urls import reverse

        from airflow_client.widget import fingerprint

        url = reverse(
            "airflow_client:status",
            kwargs={
                "model": "testapp.findingaid",
                "dag_id": "index_finding_aid",
                "object_id": str(object_id),
            },
        )
        url += f"?uid=1&compact=1&tag={fingerprint(shown)}" + (f"&run={shown.pk}" if shown else "")
        _status, queries, ms, _swapped = self._poll(url)
        return queries, ms

    # --- the rows -------------------------------------------------------------------------------------

    def active(self) -> list[harness.Row]:
        from airflow_client.models import JobRun

        runs = [self._run(aid, "running") for aid in self.aids]
        page, per_interval = self._page()
        single, single_ms = self._one_widgets_poll(self.aids[0].pk, runs[0])
        status, queries, ms, _swapped = self._poll(page.poll_url())
        what = f"page of {WIDGETS} active compact widgets"
        found = [
            harness.Row(
                f"{what}: poll requests per interval",
                "-",
                f"{per_interval} per AIRFLOW_POLL_INTERVAL",
                f"{WIDGETS} (one per widget)",
                "1",
                per_interval == 1,
            ),
            harness.Row(
                f"{what}: size of the poll's URL",
                "-",
                f"{len(page.poll_url()):,} bytes",
                "-",
                "-",
                None,
            ),
            harness.Row(
                f"{what}: a poll, nothing changed",
                self.db,
                f"{status}, {queries} queries, {ms:.1f} ms",
                f"one widget's poll: {single} queries, {single_ms:.1f} ms; "
                f"x {WIDGETS}: {WIDGETS * single} queries, {WIDGETS * single_ms:.0f} ms per interval",
                f"<= {single} + 2 queries",
                status == 204 and queries <= single + 2,
            ),
        ]
        JobRun.objects.filter(pk__in=[run.pk for run in runs]).update(state="success")
        single, single_ms = self._one_widgets_poll(self.aids[0].pk, runs[0])  # it showed the run running
        status, queries, ms, swapped = self._poll(page.poll_url())
        found.append(
            harness.Row(
                f"{what}: the poll in which all {WIDGETS} runs end",
                self.db,
                f"{status}, {queries} queries, {swapped} widgets swapped, {ms:.1f} ms",
                f"one widget's poll: {single} queries, {single_ms:.1f} ms; "
                f"x {WIDGETS}: {WIDGETS * single} queries, {WIDGETS * single_ms:.0f} ms",
                f"<= {single} + 2 queries",
                status == 200 and swapped == WIDGETS and queries <= single + 2,
            )
        )
        return found

    def finished(self) -> list[harness.Row]:
        from airflow_client.models import JobRun

        page, per_interval = self._page()
        what = f"the same page, all {WIDGETS} finished"
        status, queries, ms, _swapped = self._poll(page.poll_url())
        found = [
            harness.Row(
                f"{what}: poll requests per interval",
                "-",
                f"{per_interval} per AIRFLOW_IDLE_POLL_INTERVAL ({page.interval} s)",
                "0 (a finished widget did not poll, nor learn of runs started elsewhere)",
                "1",
                per_interval == 1 and page.poller.get("mode") == "idle",
            ),
            harness.Row(
                f"{what}: a poll, nothing changed",
                self.db,
                f"{status}, {queries} queries, {ms:.1f} ms",
                "-",
                "<= 8 queries",
                status == 204 and queries <= 8,
            ),
        ]
        shown = JobRun.objects.for_object(self.aids[7]).get()
        self._run(self.aids[7], "running")  # started elsewhere: a schedule, Airflow's UI, another site
        single, _single_ms = self._one_widgets_poll(self.aids[7].pk, shown)
        status, queries, ms, swapped = self._poll(page.poll_url())
        found.append(
            harness.Row(
                f"{what}: the poll that finds a run started elsewhere",
                self.db,
                f"{status}, {queries} queries, {swapped} widget swapped, {ms:.1f} ms",
                f"one widget's poll: {single} queries (but no finished widget polled)",
                f"<= {single} + 2 queries",
                status == 200 and swapped == 1 and queries <= single + 2,
            )
        )
        return found
