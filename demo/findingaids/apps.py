from django.apps import AppConfig


class FindingAidsConfig(AppConfig):
    """Cinco's finding aids: indexed (and removed from the index) by Airflow DAGs."""

    name = "demo.findingaids"
    label = "findingaids"
    verbose_name = "Finding aids"

    def ready(self) -> None:
        from demo.findingaids import receivers  # noqa: F401  (connects the state-changed receiver)
