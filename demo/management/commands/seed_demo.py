"""``manage.py seed_demo``: the demo's user, 20 records and a little run history.

The history is made the way real runs are: ``trigger()`` then ``refresh()``, here
against the in-memory fake Airflow (so no Airflow is needed and the seed takes a
second), then moved back in time. The state-changed signal sets each finding
aid's status and each Job's retention prunes, exactly as for live runs. These
runs exist only in Django: Airflow's UI does not know them.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import models
from django.test import override_settings
from django.utils import timezone

from airflow_client import JobRun, refresh, trigger
from airflow_client.transports.fake import get_airflow, reset_all
from demo.collections.models import Collection
from demo.findingaids.models import FindingAid

USERNAME = PASSWORD = "demo"

REPOSITORIES = [
    "The Bancroft Library",
    "UCLA Library Special Collections",
    "UC San Diego Special Collections & Archives",
    "Online Archive of California",
]
FINDING_AIDS = [
    "Papers of Ada Lovelace",
    "Letters of Charles Babbage",
    "Records of the Sierra Club, Bay Chapter",
    "Photographs of the 1906 earthquake",
    "Julia Morgan architectural drawings",
    "Oral histories of the California wine industry",
    "Papers of John Muir",
    "Records of the Panama-Pacific International Exposition",
    "Maps of the Mexican land grants",
    "Papers of Dorothea Lange",
    "Records of the Free Speech Movement",
    "Diaries of a Gold Rush miner",
]
#: per finding aid (cycled): the outcomes of its past index runs, oldest first.
INDEX_HISTORY: list[list[str]] = [[], ["success"], ["failed", "success"], ["success", "failed"]]
COLLECTIONS: list[tuple[str, str, str, str, int]] = [
    ("Postcards, 1900-1920", "oai", "https://example.org/oai", "postcards", 3),
    ("Japanese American internment photographs", "nuxeo", "https://nuxeo.example.org", "", 5),
    ("Citrus crate labels", "json", "https://api.example.org/labels", "", 2),
    ("Mission era maps", "oai", "https://example.org/oai", "maps", 4),
    ("Radical newspapers of the 1960s", "etl", "", "", 3),
    ("Agricultural extension bulletins", "oai", "https://example.org/oai", "bulletins", 6),
    ("Portraits of Chinatown merchants", "json", "https://api.example.org/portraits", "", 2),
    ("Aerial survey of the Central Valley", "nuxeo", "https://nuxeo.example.org", "", 4),
]
#: per collection (cycled): its past harvests, oldest first. Every one is kept (KeepAll).
HARVEST_HISTORY: list[list[str]] = [
    ["success", "success", "failed"],
    ["success"],
    [],
    ["failed", "success", "success", "success"],
]


class Command(BaseCommand):
    help = "Create the demo user (demo/demo) and about 20 records with a little run history."

    def handle(self, *args: Any, **options: Any) -> None:
        user = self.make_user()
        if FindingAid.objects.exists() or Collection.objects.exists():
            self.stdout.write("The demo records exist already; nothing seeded.")
            return
        now = timezone.now()
        finding_aids = [
            FindingAid.objects.create(
                ark=f"ark:/13030/demo{n:03d}",
                title=title,
                repository=REPOSITORIES[n % len(REPOSITORIES)],
            )
            for n, title in enumerate(FINDING_AIDS, start=1)
        ]
        collections = [
            Collection.objects.create(
                name=name, harvest_type=kind, harvest_url=url, harvest_extra=extra, pages=pages
            )
            for name, kind, url, extra, pages in COLLECTIONS
        ]
        runs = 0
        # Against the in-memory fake Airflow, whatever the demo is configured with.
        with override_settings(AIRFLOW_ENVIRONMENTS={"default": {"TRANSPORT": "fake"}}):
            try:
                for n, finding_aid in enumerate(finding_aids):
                    history = INDEX_HISTORY[n % len(INDEX_HISTORY)]
                    for age, state in zip(range(len(history) - 1, -1, -1), history, strict=True):
                        when = now - timedelta(days=2 + 9 * age + n, hours=n)
                        self.past_run("index_finding_aid", finding_aid, state, when, user, minutes=1 + n % 3)
                        runs += 1
                for n, collection in enumerate(collections):
                    history = HARVEST_HISTORY[n % len(HARVEST_HISTORY)]
                    for age, state in zip(range(len(history) - 1, -1, -1), history, strict=True):
                        when = now - timedelta(days=1 + 7 * age + n, hours=2 * n)
                        self.past_run("harvest_collection", collection, state, when, user, minutes=4 + n)
                        runs += 1
            finally:
                reset_all()
        self.stdout.write(
            f"Seeded {len(finding_aids)} finding aids, {len(collections)} collections and {runs} past runs."
        )

    def make_user(self) -> models.Model:
        User = get_user_model()
        user, created = User.objects.get_or_create(
            username=USERNAME, defaults={"is_staff": True, "is_superuser": True}
        )
        if created:
            user.set_password(PASSWORD)
            user.save()
            self.stdout.write(f"Created the superuser {USERNAME!r} (password {PASSWORD!r}).")
        return user

    def past_run(
        self, dag_id: str, obj: models.Model, state: str, queued: Any, user: Any, *, minutes: int
    ) -> None:
        """One finished run of ``obj`` queued at ``queued`` (called oldest first: retention sees them in order)."""
        run = trigger(dag_id, obj, user=user, conf={"fail": True} if state == "failed" else None)
        get_airflow().finish((run.dag_id, run.dag_run_id), state)
        refresh(run, force=True)
        started = queued + timedelta(seconds=5)
        JobRun.objects.filter(pk=run.pk).update(
            created_at=queued,
            run_after=queued,
            queued_at=queued,
            start_date=started,
            end_date=started + timedelta(minutes=minutes, seconds=17),
            refreshed_at=started + timedelta(minutes=minutes, seconds=20),
        )
