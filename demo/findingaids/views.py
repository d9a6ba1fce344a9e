from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from airflow_client.mixins import prefetch_job_runs
from demo.findingaids.models import FindingAid


@login_required
def finding_aid_list(request: HttpRequest) -> HttpResponse:
    # The compact widget of every row reads the prefetched runs: a constant number of queries.
    finding_aids = prefetch_job_runs(FindingAid.objects.all())
    return render(request, "findingaids/list.html", {"finding_aids": finding_aids})


@login_required
def finding_aid_detail(request: HttpRequest, pk: int) -> HttpResponse:
    finding_aid = get_object_or_404(FindingAid, pk=pk)
    return render(request, "findingaids/detail.html", {"finding_aid": finding_aid})
