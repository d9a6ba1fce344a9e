"""Secrets never leave the transport, whatever Airflow answers.

Across every fault of the matrix and every entry point, with either kind of
credentials (USERNAME/PASSWORD exchanged for tokens, or a static TOKEN), this
captures what anyone could read afterwards: the rendered page, every stored row
(JobTrigger.error/response, JobRun.refresh_error, all their fields), the str and
repr of exceptions raised (with their causes), the SyncReport's text and every
log record of every logger (message and formatted traceback). None may hold the
configured PASSWORD or TOKEN, the Basic pair, or an access token Airflow issued.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.faults.conftest import (
    ENTRIES,
    FAULT_IDS,
    FAULTS,
    Fault,
    build_scene,
    inject,
    run_entry,
)
from tests.faults.server import FaultyAirflow

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("entry", ENTRIES)
@pytest.mark.parametrize("fault", FAULTS, ids=FAULT_IDS)
def test_no_secret_is_shown_stored_raised_or_logged(
    fault: Fault,
    entry: str,
    credentials: str,
    faulty_airflow: FaultyAirflow,
    settings: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("DEBUG")  # every logger, every level
    scene = build_scene(faulty_airflow, settings, credentials)
    inject(scene, fault, entry, settings)

    outcome = run_entry(scene, fault, entry, caplog)

    seen = outcome.seen()
    assert seen.strip()
    leaked = [secret for secret in scene.secrets() if secret in seen]
    assert not leaked, f"secrets found in what {entry} left behind: {leaked}"
