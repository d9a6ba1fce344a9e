"""``path("airflow/", include("airflow_client.urls"))``; names live in the ``airflow_client`` namespace."""

from __future__ import annotations

from django.urls import path

from airflow_client import views

app_name = "airflow_client"

urlpatterns = [
    path("runs/", views.run_list, name="run_list"),
    path("runs.csv", views.run_list_csv, name="run_list_csv"),
    path("runs/<int:pk>/", views.run_detail, name="run_detail"),
    path("runs/<int:pk>/logs/<str:task_id>/<int:try_number>/", views.run_log, name="run_log"),
    # The record's key comes last and may hold slashes (text primary keys).
    path("widget/<str:model>/<str:dag_id>/<path:object_id>/status/", views.status, name="status"),
    path("widget/<str:model>/<str:dag_id>/<path:object_id>/trigger/", views.trigger, name="trigger"),
]
