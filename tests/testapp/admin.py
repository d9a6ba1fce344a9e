from __future__ import annotations

from django.contrib import admin

from airflow_client.admin import JobRunInline, trigger_action
from tests.testapp.airflow_jobs import HarvestCollection, IndexFindingAid
from tests.testapp.models import Collection, FindingAid


@admin.register(FindingAid)
class FindingAidAdmin(admin.ModelAdmin):
    inlines = [JobRunInline]
    actions = [trigger_action(IndexFindingAid)]


@admin.register(Collection)
class CollectionAdmin(admin.ModelAdmin):
    inlines = [JobRunInline]
    actions = [trigger_action(HarvestCollection)]
