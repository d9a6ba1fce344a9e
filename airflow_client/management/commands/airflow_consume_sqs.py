"""manage.py airflow_consume_sqs --queue URL: store the events Airflow's callbacks published to SQS.

Runs until stopped (a systemd service, a container), long polling; ``--once``
reads one batch and exits (cron, tests). Needs boto3 (the ``sqs`` or ``mwaa`` extra)
and AIRFLOW_EVENTS_SECRET (messages are signed as the endpoint's requests are).
"""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from airflow_client.conf import get_settings
from airflow_client.queue import LONG_POLL_SECONDS, consume_once

RETRY_SECONDS = 10


def sqs_client(region: str | None) -> Any:
    try:
        import boto3
    except ImportError as exc:
        raise CommandError("boto3 is not installed: pip install 'django-airflow-client[sqs]'.") from exc
    return boto3.client("sqs", region_name=region or None)


class Command(BaseCommand):
    help = "Read the events Airflow's callbacks published to an SQS queue and store them."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--queue", required=True, metavar="URL", help="The SQS queue's URL.")
        parser.add_argument("--region", help="AWS region (default: boto3's, e.g. AWS_DEFAULT_REGION).")
        parser.add_argument(
            "--wait",
            type=int,
            default=LONG_POLL_SECONDS,
            choices=range(0, LONG_POLL_SECONDS + 1),
            metavar="SECONDS",
            help=f"Long poll of each receive, 0-{LONG_POLL_SECONDS} s (default {LONG_POLL_SECONDS}).",
        )
        parser.add_argument("--once", action="store_true", help="Read one batch, then exit.")

    def handle(
        self, *args: Any, queue: str, region: str | None, wait: int, once: bool, **options: Any
    ) -> None:
        secret = get_settings().events_secret
        if secret is None:
            raise CommandError(
                "AIRFLOW_EVENTS_SECRET is not set: the messages' signatures cannot be checked."
            )
        from botocore.exceptions import BotoCoreError, ClientError

        client = sqs_client(region)
        try:
            while True:
                try:
                    batch = consume_once(client, queue, secret, wait=wait)
                except (BotoCoreError, ClientError) as exc:
                    if once:
                        raise CommandError(f"SQS could not be read: {exc}") from exc
                    # The queue or the network is away for a while: keep the service up, try again.
                    self.stderr.write(f"SQS could not be read, trying again in {RETRY_SECONDS} s: {exc}")
                    time.sleep(RETRY_SECONDS)
                    continue
                if batch.received or once:
                    self.stdout.write(str(batch))
                if once:
                    return
        except KeyboardInterrupt:
            self.stdout.write("Stopped.")
