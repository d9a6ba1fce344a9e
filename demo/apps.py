from django.apps import AppConfig


class DemoConfig(AppConfig):
    """The demo site itself: its pages, the login and ``manage.py seed_demo``."""

    name = "demo"
    verbose_name = "Demo site"
