"""Issue 9, defect 16: compact widgets of a prefetched list cost the same queries for 10 and 500 rows.

The widget of a record whose run finished (or that never ran) looks for a trigger
Airflow has not confirmed yet; prefetch_job_runs() fetches those too, per model.
"""

from __future__ import annotations

import secrets
from typing import Any

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.template import Context, Template
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext

from airflow_client.mixins import prefetch_job_runs
from airflow_client.models import JobTrigger
from tests.factories import make_run, make_user
from tests.testapp.models import FindingAid

pytestmark = pytest.mark.django_db

LIST = Template(
    "{% load airflow_client %}{% for obj in objects %}{% airflow_status obj job='index_finding_aid' compact=True %}{% endfor %}"
)


def _pending(obj: Any, dag_id: str = "index_finding_aid", environment: str = "default") -> JobTrigger:
    request = {
        "environment": environment,
        "dag_id": dag_id,
        "run_id": f"dj_{secrets.token_hex(6)}",
        "conf": {},
        "note": "",
        "user": None,
    }
    return JobTrigger.objects.create_for(obj, request)


def _records(count: int) -> tuple[list[FindingAid], int]:
    """``count`` records: a third finished, a third never run, a third with a pending trigger."""
    made = FindingAid.objects.bulk_create(FindingAid(title=f"Aid {i}") for i in range(count))
    pending = 0
    for i, aid in enumerate(made):
        if i % 3 == 0:
            make_run(aid, state="success")
        elif i % 3 == 1:
            _pending(aid)
            _pending(aid, dag_id="other_dag")  # another DAG's trigger: not this widget's
            pending += 1
        if i % 5 == 0:  # a finished run and a pending trigger: the trigger is shown
            make_run(aid, state="failed")
            if i % 3 != 1:
                _pending(aid)
                pending += 1
    return made, pending


def _render(objects: list[FindingAid], user: Any) -> tuple[str, int]:
    request = RequestFactory().get("/findingaids/")
    request.user = type(user).objects.get(pk=user.pk)  # a new request: nothing cached on the user
    ContentType.objects.clear_cache()
    with CaptureQueriesContext(connection) as queries:
        html = LIST.render(Context({"request": request, "objects": prefetch_job_runs(objects)}))
    return html, len(queries)


def test_compact_widgets_cost_constant_queries_with_pending_triggers() -> None:
    user = make_user("viewer", "airflow_client.view_jobrun")
    counts = []
    for size in (10, 500):
        FindingAid.objects.all().delete()
        JobTrigger.objects.all().delete()
        objects, pending = _records(size)
        html, queries = _render(list(FindingAid.objects.filter(pk__in=[o.pk for o in objects])), user)
        assert html.count('class="ac-widget') == size
        assert html.count("ac-state-starting") == pending
        counts.append(queries)
    assert counts[0] == counts[1], counts


def test_prefetched_pending_trigger_is_the_one_the_query_finds() -> None:
    from airflow_client import triggering, widget
    from airflow_client.jobs import get_job

    job = get_job("index_finding_aid")
    aid = FindingAid.objects.create(title="One")
    make_run(aid, state="success")
    older = _pending(aid)
    newer = _pending(aid)
    JobTrigger.objects.filter(pk=older.pk).update(outcome=JobTrigger.Outcome.UNKNOWN)
    other_env = _pending(aid, environment="elsewhere")
    assert triggering.pending_trigger(job, aid) == newer
    (prefetched,) = prefetch_job_runs([FindingAid.objects.get(pk=aid.pk)])
    assert widget.look_up(job, prefetched) == (None, newer)
    JobTrigger.objects.filter(pk=newer.pk).update(outcome=JobTrigger.Outcome.FAILED)
    (prefetched,) = prefetch_job_runs([FindingAid.objects.get(pk=aid.pk)])
    assert widget.look_up(job, prefetched)[1] == older
    assert other_env != newer
