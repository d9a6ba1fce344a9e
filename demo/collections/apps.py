from django.apps import AppConfig


class CollectionsConfig(AppConfig):
    """The Collection Registry's collections, harvested by Rikolti's DAG."""

    name = "demo.collections"
    label = "collections"
    verbose_name = "Collections"
