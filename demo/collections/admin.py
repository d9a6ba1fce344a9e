from __future__ import annotations

from django.contrib import admin

from airflow_client.admin import JobRunInline, trigger_action
from demo.collections.airflow_jobs import HarvestCollection
from demo.collections.models import Collection


@admin.register(Collection)
class CollectionAdmin(admin.ModelAdmin):
    list_display = ("name", "harvest_type", "harvest_url", "pages")
    list_filter = ("harvest_type",)
    search_fields = ("name",)
    inlines = [JobRunInline]
    actions = [trigger_action(HarvestCollection)]
