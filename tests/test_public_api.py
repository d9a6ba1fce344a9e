"""The public names: importable from ``airflow_client``, lazily at run time, fully typed for checkers."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import airflow_client

ROOT = Path(__file__).resolve().parents[1]


def test_every_public_name_resolves_to_its_home() -> None:
    for name in airflow_client._HOMES:
        value = getattr(airflow_client, name)
        assert value.__module__ == airflow_client._HOMES[name]
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        airflow_client.nope  # noqa: B018


def test_type_checkers_see_the_same_names_as_the_lazy_map() -> None:
    """The ``if TYPE_CHECKING:`` imports and the run-time map must not drift apart."""
    tree = ast.parse((ROOT / "airflow_client/__init__.py").read_text())
    typed = {
        alias.asname or alias.name: node.module
        for block in tree.body
        if isinstance(block, ast.If) and ast.unparse(block.test) == "TYPE_CHECKING"
        for node in block.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    assert typed == airflow_client._HOMES


def test_importing_the_package_loads_nothing_else() -> None:
    code = "import sys, airflow_client; print(sorted(m for m in sys.modules if m.startswith(('airflow_client.', 'django'))))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


def _mypy(tmp_path: Path, source: str) -> tuple[int, str]:
    user = tmp_path / "user_code.py"
    user.write_text(textwrap.dedent(source).lstrip())
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "--no-incremental",
            str(user),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    return result.returncode, result.stdout + result.stderr


USER_CODE = """
    from django.contrib.auth.models import User
    from airflow_client import JobRun, TriggerFailed, refresh, sync, trigger
    from tests.testapp.airflow_jobs import IndexFindingAid
    from tests.testapp.models import FindingAid

    def start(aid: FindingAid, user: User) -> JobRun:
        try:
            run = trigger(IndexFindingAid, aid, user=user, conf={"full": True}, note="again")
        except TriggerFailed as exc:
            print(exc.job_trigger.status_code)
            raise
        report = sync()
        print(report.discovered)
        return refresh(run, force=True)
"""


def test_mypy_accepts_a_correct_call_and_rejects_a_wrong_one(tmp_path: Path) -> None:
    pytest.importorskip("mypy")  # in the lint group: `make test` has it, the matrix runs without
    status, output = _mypy(
        tmp_path, USER_CODE + "    reveal_type(trigger)\n    reveal_type(sync)\n    reveal_type(JobRun)\n"
    )
    assert status == 0, output
    assert output.count("Revealed type is") == 3, output
    assert 'Revealed type is "Any"' not in output, output  # every public name has a real type
    status, output = _mypy(
        tmp_path,
        """
        from airflow_client import trigger
        from tests.testapp.models import FindingAid

        trigger("index_finding_aid", FindingAid(), conf=["not", "a", "mapping"])
        """,
    )
    assert status == 1, output
    assert 'Argument "conf" to "trigger" has incompatible type' in output, output
