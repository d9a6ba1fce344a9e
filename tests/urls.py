from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from tests.testapp import views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("airflow/", include("airflow_client.urls")),
    path("findingaids/", views.finding_aid_list, name="findingaid_list"),
    path("findingaids/<int:pk>/", views.finding_aid, name="findingaid_detail"),
    path("collections/<path:pk>/", views.collection, name="collection_detail"),
]
