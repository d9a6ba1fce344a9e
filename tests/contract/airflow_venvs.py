"""Where scripts/airflow.sh installs each Airflow major: the same rule, read from the script itself.

The versions are the script's (``3) version=3.3.2; ...``), the cache folder its
``${DAC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/django-airflow-client}``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "airflow.sh"


def version(major: int) -> str:
    """The Airflow version scripts/airflow.sh installs for ``major`` (3 or 2)."""
    found = re.search(rf"^\s*{major}\) version=([0-9][0-9.]*);", SCRIPT.read_text(), re.MULTILINE)
    if not found:
        raise LookupError(f"scripts/airflow.sh names no version for Airflow {major}")
    return found.group(1)


def cache() -> Path:
    # Like the shell's ${VAR:-default}: an empty variable counts as unset.
    if os.environ.get("DAC_CACHE"):
        return Path(os.environ["DAC_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "django-airflow-client"


def python(major: int) -> Path:
    """The python of Airflow ``major``'s virtual environment (it may not exist yet)."""
    return cache() / f"airflow-{version(major)}" / "bin" / "python"


def database_template(major: int) -> Path:
    """The migrated, empty SQLite database the script copies into each fresh Airflow home."""
    return cache() / f"airflow-db-{version(major)}" / "airflow.db"
