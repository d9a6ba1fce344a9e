"""A record page of the kind a site has, with the status widgets on it (used by the browser tests)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from tests.testapp.models import Collection, FindingAid


@login_required
def finding_aid(request: HttpRequest, pk: int) -> HttpResponse:
    obj = get_object_or_404(FindingAid, pk=pk)
    return render(request, "testapp/record.html", {"obj": obj})


@login_required
def finding_aid_list(request: HttpRequest) -> HttpResponse:
    return render(request, "testapp/finding_aid_list.html", {"objects": FindingAid.objects.order_by("pk")})


@login_required
def collection(request: HttpRequest, pk: str) -> HttpResponse:
    obj = get_object_or_404(Collection, pk=pk)
    return render(request, "testapp/record.html", {"obj": obj})
