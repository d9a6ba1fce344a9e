"""Build the wheel and check that it ships what a reusable Django app needs.

Templates, static files, migrations and py.typed must be inside the wheel, or
an installed copy of the app breaks while the checkout works.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REQUIRED = [
    "airflow_client/py.typed",
    "airflow_client/migrations/0001_initial.py",
    "airflow_client/templates/airflow_client/",
    "airflow_client/static/airflow_client/",
]


def main() -> int:
    with tempfile.TemporaryDirectory() as out:
        subprocess.run(  # noqa: S603  (our own script, fixed arguments)
            [str(ROOT / "scripts/uv.sh"), "build", "--wheel", "--quiet", "--out-dir", out],
            cwd=ROOT,
            check=True,
        )
        # setuptools leaves its egg-info beside the package; it would shadow the installed metadata.
        shutil.rmtree(ROOT / "django_airflow_client.egg-info", ignore_errors=True)
        (wheel,) = Path(out).glob("*.whl")
        names = zipfile.ZipFile(wheel).namelist()
    missing = [want for want in REQUIRED if not any(name.startswith(want) for name in names)]
    if missing:
        print(f"{wheel.name} lacks: {', '.join(missing)}", file=sys.stderr)
        return 1
    # The package sits at the top of the checkout beside tests/ and demo/: only it may ship.
    strays = sorted(
        {name.split("/")[0] for name in names}
        - {"airflow_client"}
        - {n.split("/")[0] for n in names if ".dist-info/" in n}
    )
    if strays:
        print(f"{wheel.name} ships more than the app: {', '.join(strays)}", file=sys.stderr)
        return 1
    print(f"{wheel.name}: {len(names)} files, templates, static files and migrations included")
    return 0


if __name__ == "__main__":
    sys.exit(main())
