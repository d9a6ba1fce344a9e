from __future__ import annotations

from django.contrib import admin

from airflow_client.admin import JobRunInline, trigger_action
from demo.findingaids.airflow_jobs import DeleteFindingAid, IndexFindingAid
from demo.findingaids.models import FindingAid


@admin.register(FindingAid)
class FindingAidAdmin(admin.ModelAdmin):
    list_display = ("title", "ark", "repository", "status", "status_changed")
    list_filter = ("status", "repository")
    search_fields = ("title", "ark")
    readonly_fields = ("status", "status_changed")
    inlines = [JobRunInline]
    actions = [trigger_action(IndexFindingAid), trigger_action(DeleteFindingAid)]
