from __future__ import annotations

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from demo.collections import views as collections
from demo.findingaids import views as findingaids

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="findingaid_list"), name="home"),
    path("findingaids/", findingaids.finding_aid_list, name="findingaid_list"),
    path("findingaids/<int:pk>/", findingaids.finding_aid_detail, name="findingaid_detail"),
    path("collections/", collections.collection_list, name="collection_list"),
    path("collections/<int:pk>/", collections.collection_detail, name="collection_detail"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("airflow/", include("airflow_client.urls")),
    path("admin/", admin.site.urls),
]
