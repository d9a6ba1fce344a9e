import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models
from django.db.models import OuterRef, Subquery


def from_kept_triggers(apps, schema_editor):
    """Runs whose trigger was kept (AIRFLOW_PRESERVE_JOB_TRIGGER) know who started them."""
    JobRun = apps.get_model("airflow_client", "JobRun")
    JobTrigger = apps.get_model("airflow_client", "JobTrigger")
    users = JobTrigger.objects.filter(pk=OuterRef("job_trigger_id")).values("user_id")[:1]
    JobRun.objects.filter(job_trigger__user__isnull=False).update(started_by=Subquery(users))


class Migration(migrations.Migration):
    dependencies = [
        ("airflow_client", "0003_run_progress_and_events"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="jobrun",
            name="started_by",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
                verbose_name="started by",
            ),
        ),
        migrations.AddField(
            model_name="jobrun",
            name="failed_error",
            field=models.TextField(blank=True, verbose_name="failed task's error"),
        ),
        migrations.RunPython(from_kept_triggers, migrations.RunPython.noop),
    ]
