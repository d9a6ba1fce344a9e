"""Settings are read lazily, merged over defaults, and re-read when they change."""

from __future__ import annotations

from django.test import override_settings

from airflow_client.conf import get_settings
from airflow_client.transports import get_transport


@override_settings(AIRFLOW_EVENTS_SECRET=None)
def test_defaults() -> None:
    s = get_settings()
    assert s.preserve_job_trigger is False
    assert s.refresh_interval == 5
    assert s.poll_interval == 5
    assert s.idle_poll_interval == 30
    assert s.events_secret is None
    assert s.run_id_prefix == "dj"
    assert s.events_max_bytes == 256 * 1024


def test_ui_url_defaults_to_base_url() -> None:
    with override_settings(AIRFLOW_ENVIRONMENTS={"default": {"TRANSPORT": "fake", "BASE_URL": "http://a:1"}}):
        env = get_settings().environments["default"]
        assert env["UI_URL"] == "http://a:1"
        assert env["API_VERSION"] == "auto"
        assert env["TIMEOUT"] == 10


def test_override_settings_resets_the_cache_and_the_transports() -> None:
    before = get_transport("default")
    with override_settings(AIRFLOW_REFRESH_INTERVAL=60, AIRFLOW_PRESERVE_JOB_TRIGGER=True):
        assert get_settings().refresh_interval == 60
        assert get_settings().preserve_job_trigger is True
        assert get_transport("default") is not before
    assert get_settings().refresh_interval == 5
