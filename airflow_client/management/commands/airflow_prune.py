"""manage.py airflow_prune [--dry-run]: apply every Job's retention policy now."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from airflow_client.pruning import prune


class Command(BaseCommand):
    help = (
        "Delete finished runs that the registered Jobs' retention policies no longer keep "
        "(a run another record still keeps is only unlinked from the pruned record)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="Only report what would be deleted.")

    def handle(self, *args: Any, dry_run: bool = False, **options: Any) -> None:
        report = prune(dry_run=dry_run)
        verb = "would delete" if dry_run else "deleted"
        total = 0
        for dag_id, runs in sorted(report.items()):
            total += len(runs)
            self.stdout.write(f"{dag_id}: {verb} {len(runs)} run(s)")
            if dry_run and options["verbosity"] > 1:
                for run in runs:
                    self.stdout.write(f"  {run.dag_run_id} ({run.state}, {run.created_at:%Y-%m-%d})")
        self.stdout.write(f"Total: {verb} {total} run(s).")
