"""manage.py airflow_prune [--dry-run [--policy POLICY]] [--dag DAG_ID]: apply the Jobs' retention now."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import models
from django.utils import timezone

from airflow_client.jobs import all_jobs
from airflow_client.models import JobRun
from airflow_client.pruning import JobPruning, prune_jobs
from airflow_client.retention import RetentionPolicy, parse_policy


class Command(BaseCommand):
    help = (
        "Delete finished runs that the registered Jobs' retention policies no longer keep "
        "(a run another record still keeps is only unlinked from the pruned record). "
        "Unfinished runs and each record's newest success are always kept."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Change nothing; list, per Job and record, the runs that would be deleted.",
        )
        parser.add_argument(
            "--policy",
            metavar="POLICY",
            help=(
                "With --dry-run: preview this policy in place of every Job's own, written as in a Job, "
                'e.g. "KeepNewest(3)" or "KeepSinceLastSuccess()".'
            ),
        )
        parser.add_argument("--dag", metavar="DAG_ID", help="Only the Job(s) of this DAG.")

    def handle(
        self,
        *args: Any,
        dry_run: bool = False,
        policy: str | None = None,
        dag: str | None = None,
        **options: Any,
    ) -> None:
        preview = self._policy(policy, dry_run)
        if dag is not None and not any(job.dag_id == dag for job in all_jobs()):
            raise CommandError(f"No registered Job runs the DAG {dag!r}.")
        results = prune_jobs(dry_run=dry_run, policy=preview, dag_id=dag)
        detail = dry_run or options["verbosity"] > 1
        verb = "would delete" if dry_run else "deleted"
        if dry_run:
            instead = f", with {preview!r} in place of each Job's own policy" if preview is not None else ""
            self.stdout.write(f"Dry run{instead}: nothing is deleted.")
        total = 0
        for result in sorted(results, key=lambda result: (result.job.dag_id, result.job.environment)):
            total += len(result.runs)
            self._write_job(result, verb, detail)
        self.stdout.write(f"Total: {verb} {total} run(s).")

    def _policy(self, text: str | None, dry_run: bool) -> RetentionPolicy | None:
        if text is None:
            return None
        if not dry_run:
            raise CommandError(
                "--policy only previews a policy: add --dry-run. "
                "To change what a Job keeps, set its `retention` in its airflow_jobs module."
            )
        try:
            return parse_policy(text)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc

    def _write_job(self, result: JobPruning, verb: str, detail: bool) -> None:
        job = result.job
        name = job.dag_id if job.environment == "default" else f"{job.dag_id} ({job.environment})"
        records = f" of {len(result.records)} record(s)" if result.records else ""
        self.stdout.write(f"{name}: {verb} {len(result.runs)} run(s){records}")
        if not detail:
            return
        self.stdout.write(f"  policy {result.policy!r}: {result.policy.describe()}")
        labels = _labels(job.get_model(), list(result.records))
        for object_id, runs in result.records.items():
            self.stdout.write(f"  {labels.get(object_id, object_id)}: {len(runs)} run(s)")
            for run in runs:
                self.stdout.write(f"    {run.dag_run_id}  {run.state}  {_when(run)}")


def _labels(model: type[models.Model], object_ids: list[str]) -> dict[str, str]:
    """object_id -> 'FindingAid 7 "Papers of Ada Lovelace"' (the record's own text when it still exists)."""
    kind = model._meta.object_name
    labels = {object_id: f"{kind} {object_id} (record deleted)" for object_id in object_ids}
    try:
        found = list(model._default_manager.filter(pk__in=object_ids))
    except (ValueError, TypeError, ValidationError):  # a key the model's pk cannot hold
        return {object_id: f"{kind} {object_id}" for object_id in object_ids}
    for obj in found:
        text = " ".join(str(obj).split())  # one line, whatever the record's text
        labels[str(obj.pk)] = f'{kind} {obj.pk} "{text}"'
    return labels


def _when(run: JobRun) -> str:
    if run.end_date is not None:
        return f"ended {timezone.localtime(run.end_date):%Y-%m-%d %H:%M}"
    return f"recorded {timezone.localtime(run.created_at):%Y-%m-%d %H:%M}"
