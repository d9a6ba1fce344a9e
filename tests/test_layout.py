"""The suite tests the package the checkout installs, at the top of the checkout.

``make test`` installs the package (editable) into .venv; ``scripts/check_wheel.py``
builds the wheel and checks what it ships, so files missing from the wheel
(templates, static files, migrations) are caught although the tests import the checkout.
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import airflow_client

ROOT = Path(__file__).resolve().parents[1]


def test_the_package_under_test_is_the_installed_distribution_of_this_checkout() -> None:
    assert Path(airflow_client.__file__).resolve() == ROOT / "airflow_client" / "__init__.py"
    installed = [
        dist
        for dist in importlib.metadata.distributions()
        if dist.metadata["Name"] == "django-airflow-client" and dist.read_text("direct_url.json")
    ]
    assert [dist.version for dist in installed] == [airflow_client.__version__]
    # An editable install records where it came from: this checkout, not another copy.
    assert ROOT.as_uri() in (installed[0].read_text("direct_url.json") or "")
