from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from airflow_client.mixins import prefetch_job_runs
from airflow_client.models import JobRun
from demo.collections.models import Collection


@login_required
def collection_list(request: HttpRequest) -> HttpResponse:
    collections = prefetch_job_runs(Collection.objects.all())
    return render(request, "collections/list.html", {"collections": collections})


@login_required
def collection_detail(request: HttpRequest, pk: int) -> HttpResponse:
    collection = get_object_or_404(Collection, pk=pk)
    # The harvest DAG pushes events (airflow_client.callbacks): the newest run's timeline.
    newest = JobRun.objects.for_object(collection).newest()
    events = list(newest.events.order_by("-occurred_at", "-id")[:12])[::-1] if newest else []
    return render(
        request, "collections/detail.html", {"collection": collection, "newest": newest, "events": events}
    )
