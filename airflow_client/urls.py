"""``path("airflow/", include("airflow_client.urls"))``; names live in the ``airflow_client`` namespace."""

from __future__ import annotations

from urllib.parse import unquote

from django.urls import path, register_converter

from airflow_client import endpoints, views


class TaskIdConverter:
    """Any task id as one path segment: "/" and "%" are escaped, and "." or ".." (which a
    browser would collapse, also when written %2E) become %252E: ``reverse()`` escapes the
    "%" once more, the server decodes it once, and ``to_python`` gives the task id back."""

    regex = "[^/]+"

    def to_python(self, value: str) -> str:
        return unquote(value)

    def to_url(self, value: str) -> str:
        escaped = value.replace("%", "%25").replace("/", "%2F")
        return escaped.replace(".", "%2E") if escaped in (".", "..") else escaped


register_converter(TaskIdConverter, "airflow_task_id")

app_name = "airflow_client"

urlpatterns = [
    path("runs/", views.run_list, name="run_list"),
    path("runs.csv", views.run_list_csv, name="run_list_csv"),
    path("runs/<int:pk>/", views.run_detail, name="run_detail"),
    path("runs/<int:pk>/<slug:action>/", views.run_control, name="run_control"),
    path("runs/<int:pk>/logs/<airflow_task_id:task_id>/<int:try_number>/", views.run_log, name="run_log"),
    path("widget/poll/", views.page_poll, name="page_poll"),
    # The record's key comes last and may hold slashes (text primary keys).
    path("widget/<str:model>/<str:dag_id>/<path:object_id>/status/", views.status, name="status"),
    path("widget/<str:model>/<str:dag_id>/<path:object_id>/trigger/", views.trigger, name="trigger"),
    path("events/", endpoints.events, name="events"),
]
