"""manage.py airflow_sync [--environment ALIAS] [--no-discover]: run sync() and print its report.

Meant for cron. Exits non-zero only when no environment could be synced
(Airflow down or refusing us), so one unreachable environment among several
does not page anyone on its own; its errors are printed all the same.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from airflow_client.exceptions import ConfigurationError
from airflow_client.syncing import sync


class Command(BaseCommand):
    help = (
        "Settle unanswered triggers, discover runs of registered DAGs started outside this site, "
        "and refresh unfinished runs."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--environment", metavar="ALIAS", help="Only this alias of AIRFLOW_ENVIRONMENTS (default: all)."
        )
        parser.add_argument(
            "--no-discover",
            dest="discover",
            action="store_false",
            help="Do not list runs in Airflow; only settle triggers and refresh unfinished runs.",
        )

    def handle(
        self, *args: Any, environment: str | None = None, discover: bool = True, **options: Any
    ) -> None:
        try:
            report = sync(environment=environment, discover=discover)
        except ConfigurationError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(str(report))
        if report.all_failed:
            refused = list(report.auth_failed_environments)
            unreached = [alias for alias in report.failed_environments if alias not in refused]
            reasons = [f"Airflow refused the credentials: {', '.join(refused)}."] if refused else []
            reasons += [f"Airflow could not be reached: {', '.join(unreached)}."] if unreached else []
            raise CommandError(" ".join(reasons))
