"""Picks the transport for an environment alias; one instance per alias per process."""

from __future__ import annotations

import threading
from typing import Any

from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string

from airflow_client.conf import TRANSPORT_ALIASES, get_settings
from airflow_client.exceptions import AirflowDisabled, ConfigurationError
from airflow_client.transports.base import Transport

__all__ = ["Transport", "get_transport", "reset", "transport_class"]

_lock = threading.Lock()
_instances: dict[str, Transport] = {}


def transport_class(name: str) -> type[Transport]:
    """The class for a TRANSPORT value: "rest", "mwaa", "fake" or a dotted path."""
    if not isinstance(name, str) or not name:
        raise ConfigurationError(f"TRANSPORT must be 'rest', 'mwaa', 'fake' or a dotted path, not {name!r}.")
    path = TRANSPORT_ALIASES.get(name, name)
    try:
        cls = import_string(path)
    except ImportError as exc:
        raise ConfigurationError(f"Cannot import Airflow transport {name!r}: {exc}") from exc
    if not (isinstance(cls, type) and issubclass(cls, Transport)):
        raise ConfigurationError(f"{path} is not an airflow_client Transport subclass.")
    return cls


def get_transport(alias: str = "default") -> Transport:
    """The transport for ``alias`` of AIRFLOW_ENVIRONMENTS (created once, then reused).

    AirflowDisabled while AIRFLOW_ENABLED is False: every path to Airflow passes here.
    """
    if not get_settings().enabled:
        raise AirflowDisabled()
    with _lock:
        if alias not in _instances:
            options = get_settings().environments.get(alias)
            if options is None:
                raise ConfigurationError(f"No Airflow environment {alias!r} in AIRFLOW_ENVIRONMENTS.")
            _instances[alias] = transport_class(options["TRANSPORT"])(alias, options)
        return _instances[alias]


def reset() -> None:
    """Forget every transport (settings changed)."""
    with _lock:
        for transport in _instances.values():
            transport.close()
        _instances.clear()


@receiver(setting_changed)
def _reset_on_setting_change(*, setting: str, **kwargs: Any) -> None:
    # Registered here, not in conf: settings must not know the transports built on them.
    if setting.startswith("AIRFLOW_"):
        reset()
