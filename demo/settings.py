"""Settings of the demo site (`make demo`; see scripts/demo.sh).

Which Airflow it talks to comes from the environment, which scripts/demo.sh sets:

* ``DEMO_AIRFLOW``: ``3`` or ``2`` (a real Airflow at ``DEMO_AIRFLOW_URL``, admin/admin),
  or ``fake`` (the default: a simulated Airflow in this process whose runs end
  ``DEMO_SIMULATE_SECONDS`` after they were triggered; run ``runserver --noreload``).
* ``DEMO_DB``: the SQLite file (default ``.demo/db.sqlite3`` in the checkout).
"""

from __future__ import annotations

import os
from pathlib import Path

import django

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get("DEMO_SECRET_KEY", "demo-only-not-secret-do-not-deploy")
DEBUG = os.environ.get("DEMO_DEBUG", "1") == "1"  # runserver serves the static files only when DEBUG
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]", "testserver"]
ROOT_URLCONF = "demo.urls"
WSGI_APPLICATION = None
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "UTC"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "django_tables2",
    "django_filters",
    "airflow_client",
    "demo",
    "demo.findingaids",
    "demo.collections",
]
if django.VERSION < (6, 0):  # Django 6 has template partials built in
    INSTALLED_APPS.append("template_partials")

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # The site's own templates; templates/airflow_client/base.html puts the
        # package's pages (job history, run detail) inside the site's layout.
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "demo.views.demo_context",
            ],
        },
    }
]

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("DEMO_DB") or BASE_DIR / ".demo" / "db.sqlite3",
        # runserver's threads poll and write at once: WAL, and write transactions that wait their turn.
        "OPTIONS": {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
        },
    }
}

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "findingaid_list"
LOGOUT_REDIRECT_URL = "login"

DEMO_AIRFLOW = os.environ.get("DEMO_AIRFLOW", "fake")
if DEMO_AIRFLOW in ("2", "3"):
    _url = os.environ.get("DEMO_AIRFLOW_URL", "http://127.0.0.1:28090")
    AIRFLOW_ENVIRONMENTS = {
        "default": {
            "TRANSPORT": "rest",
            "BASE_URL": _url,
            "API_VERSION": "v2" if DEMO_AIRFLOW == "3" else "v1",
            "USERNAME": "admin",
            "PASSWORD": "admin",
        }
    }
else:
    AIRFLOW_ENVIRONMENTS = {
        "default": {
            "TRANSPORT": "simulated",
            "OPTIONS": {"SIMULATE_SECONDS": float(os.environ.get("DEMO_SIMULATE_SECONDS", "10"))},
        }
    }

# A lively demo: a page polls every 2 s while a run on it is going, and each poll may ask
# Airflow; a page of finished runs looks every 10 s for runs started elsewhere (Airflow's UI).
AIRFLOW_POLL_INTERVAL = 2
AIRFLOW_IDLE_POLL_INTERVAL = 10
AIRFLOW_REFRESH_INTERVAL = 1
AIRFLOW_PRESERVE_JOB_TRIGGER = True  # the admin shows each trigger's request and answer
# DEMO_AIRFLOW_ENABLED=0 make demo: the site with Airflow turned off (a deployment, an outage).
AIRFLOW_ENABLED = os.environ.get("DEMO_AIRFLOW_ENABLED", "1") != "0"
# The events endpoint (/airflow/events/): the demo DAGs' callbacks sign with this secret.
AIRFLOW_EVENTS_SECRET = os.environ.get("DEMO_EVENTS_SECRET", "demo-events-secret-not-for-production")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"airflow_client": {"handlers": ["console"], "level": "INFO"}},
}
