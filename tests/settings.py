"""Minimal settings for the test suite (SQLite, or PostgreSQL when DAC_POSTGRES_PORT is set)."""

from __future__ import annotations

import importlib.util
import os

import django

SECRET_KEY = "tests-only-not-secret"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "tests.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

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
    "tests.testapp",
]
if django.VERSION < (6, 0):  # Django 6 has template partials built in
    INSTALLED_APPS.append("template_partials")

MIDDLEWARE = [
    "tests.serialized.SerializedRequestsMiddleware",  # the live server and the test share SQLite
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
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    }
]

STATIC_URL = "/static/"

if os.environ.get("DAC_POSTGRES_PORT"):
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": "airflow_client",
            "USER": "postgres",
            "HOST": "127.0.0.1",
            "PORT": os.environ["DAC_POSTGRES_PORT"],
        }
    }
else:
    DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}

CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

AIRFLOW_ENVIRONMENTS = {
    "default": {
        "TRANSPORT": "fake",
        "BASE_URL": "http://airflow.test",
        "UI_URL": "https://airflow.example.org",
    },
}

# The events endpoint is on; Airflow's callbacks in the contract tests sign with the same secret.
AIRFLOW_EVENTS_SECRET = os.environ.get("DAC_EVENTS_SECRET", "tests-events-secret-0123456789")

# Django's task framework (Django 6, or the django-tasks backport on 5.2): the Airflow
# backend on the fake transport, and Django's own ImmediateBackend for comparison.
if django.VERSION >= (6, 0):
    IMMEDIATE_BACKEND = "django.tasks.backends.immediate.ImmediateBackend"
else:
    IMMEDIATE_BACKEND = "django_tasks.backends.immediate.ImmediateBackend"
    if importlib.util.find_spec("django_tasks"):
        INSTALLED_APPS.append("django_tasks")
TASK_QUEUES = ["default", "retry"]
TASKS = {
    "default": {
        "BACKEND": "airflow_client.tasks.AirflowBackend",
        "QUEUES": TASK_QUEUES,
        # The "retry" queue's DAG gives a failing task a second try (tests/contract/dags/contract_tasks.py).
        "OPTIONS": {"QUEUES": {"retry": "django_tasks_retry"}},
    },
    "immediate": {"BACKEND": IMMEDIATE_BACKEND, "QUEUES": TASK_QUEUES},
}
