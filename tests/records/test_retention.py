from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from airflow_client import pruning, refresh, trigger
from airflow_client.jobs import Job, register, unregister
from airflow_client.models import JobRun
from airflow_client.retention import (
    POLICIES,
    KeepAll,
    KeepNewest,
    KeepNewestAndLastSuccess,
    KeepRecent,
    KeepSinceLastSuccess,
    RetentionPolicy,
    parse_policy,
)
from airflow_client.transports import fake
from tests.factories import DAY, make_run

pytestmark = pytest.mark.django_db


def history(obj: Any, dag_id: str = "index_latest") -> dict[str, JobRun]:
    """Newest first: a new failure, a success, an older failure, an old success, an old running run."""
    return {
        "running_old": make_run(obj, dag_id=dag_id, state="running", age=40 * DAY),
        "success_old": make_run(obj, dag_id=dag_id, state="success", age=30 * DAY),
        "failed_mid": make_run(obj, dag_id=dag_id, state="failed", age=20 * DAY),
        "success_new": make_run(obj, dag_id=dag_id, state="success", age=10 * DAY),
        "failed_new": make_run(obj, dag_id=dag_id, state="failed", age=1 * DAY),
    }


def kept(obj: Any) -> set[str]:
    return set(JobRun.objects.for_object(obj).values_list("dag_run_id", flat=True))


def names(runs: dict[str, JobRun], *which: str) -> set[str]:
    return {runs[name].dag_run_id for name in which}


def newest_first(obj: Any) -> list[JobRun]:
    return list(JobRun.objects.for_object(obj).order_by("-created_at", "-id"))


# --- every policy, in the cases that tell them apart ------------------------------------------

#: Each case's runs, oldest first: (name, state, age in days). The name says both.
CASES: dict[str, list[tuple[str, str, int]]] = {
    "never succeeded": [
        ("failed_50", "failed", 50),
        ("failed_30", "failed", 30),
        ("failed_10", "failed", 10),
    ],
    "only successes": [
        ("success_50", "success", 50),
        ("success_30", "success", 30),
        ("success_10", "success", 10),
    ],
    "failure after success": [
        ("failed_50", "failed", 50),
        ("success_40", "success", 40),
        ("failed_30", "failed", 30),
        ("success_20", "success", 20),
        ("failed_10", "failed", 10),
        ("failed_1", "failed", 1),
    ],
    "active run present": [
        ("running_60", "running", 60),  # stuck for two months: still never deleted
        ("success_50", "success", 50),
        ("failed_40", "failed", 40),
        ("success_20", "success", 20),
        ("failed_10", "failed", 10),
        ("queued_0", "queued", 0),
    ],
}

ALL = {case: {name for name, _state, _age in runs} for case, runs in CASES.items()}

#: policy -> case -> the runs that remain.
EXPECTED: dict[RetentionPolicy, dict[str, set[str]]] = {
    KeepAll(): ALL,
    KeepNewestAndLastSuccess(): {
        "never succeeded": {"failed_10"},
        "only successes": {"success_10"},
        "failure after success": {"success_20", "failed_1"},
        "active run present": {"running_60", "success_20", "queued_0"},
    },
    KeepNewest(n=2): {
        "never succeeded": {"failed_30", "failed_10"},
        "only successes": {"success_30", "success_10"},
        "failure after success": {"success_20", "failed_10", "failed_1"},
        "active run present": {"running_60", "success_20", "failed_10", "queued_0"},
    },
    KeepRecent(days=35): {
        "never succeeded": {"failed_30", "failed_10"},
        "only successes": {"success_30", "success_10"},
        "failure after success": {"failed_30", "success_20", "failed_10", "failed_1"},
        "active run present": {"running_60", "success_20", "failed_10", "queued_0"},
    },
    KeepSinceLastSuccess(): {
        "never succeeded": ALL["never succeeded"],  # keeps everything
        "only successes": {"success_10"},
        "failure after success": {"success_20", "failed_10", "failed_1"},  # the failures after it stay
        "active run present": {"running_60", "success_20", "failed_10", "queued_0"},
    },
}


@contextmanager
def job_keeping(policy: RetentionPolicy, dag_id: str = "index_policy") -> Iterator[type[Job]]:
    """A registered Job of finding aids whose retention is ``policy``."""
    job = type(
        "PolicyIndex",
        (Job,),
        {"dag_id": dag_id, "model": "testapp.FindingAid", "conf_key": "finding_aid_id", "retention": policy},
    )
    register(job)
    try:
        yield job
    finally:
        unregister(job)


def test_every_policy_has_its_cases() -> None:
    assert {type(policy) for policy in EXPECTED} == set(POLICIES.values())


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("policy", EXPECTED, ids=repr)
def test_what_each_policy_keeps(policy: RetentionPolicy, case: str, finding_aid: Any) -> None:
    runs = {
        name: make_run(finding_aid, dag_id="index_policy", state=state, age=age * DAY)
        for name, state, age in CASES[case]
    }
    with job_keeping(policy):
        report = pruning.prune()

    remaining = {name for name, run in runs.items() if JobRun.objects.filter(pk=run.pk).exists()}
    assert remaining == EXPECTED[policy][case]
    # prune()'s answer names exactly the runs that went (a Job keeping all is not listed).
    gone = {run.dag_run_id for run in report.get("index_policy", [])}
    assert gone == {runs[name].dag_run_id for name in ALL[case] - remaining}
    assert ("index_policy" in report) is policy.deletes
    # The guarantees every policy gives: each unfinished run and the newest success stay.
    assert {name for name in runs if name.startswith(("running", "queued"))} <= remaining
    successes = [name for name, state, _age in CASES[case] if state == "success"]
    assert not successes or successes[-1] in remaining


def test_keep_newest_and_recent_refuse_nonsense() -> None:
    with pytest.raises(ValueError, match="n >= 1"):
        KeepNewest(0)
    with pytest.raises(TypeError, match="whole number"):
        KeepNewest(2.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="days >= 0"):
        KeepRecent(-1)
    with pytest.raises(TypeError, match="a number"):
        KeepRecent("30")  # type: ignore[arg-type]


def test_keep_recent_counts_from_the_end_and_keeps_an_old_newest_success(finding_aid: Any) -> None:
    old_success = make_run(finding_aid, state="success", age=100 * DAY)
    old_failure = make_run(finding_aid, state="failed", age=90 * DAY)
    # Recorded long ago, ended yesterday: recent.
    long_run = make_run(finding_aid, state="failed", age=60 * DAY, end_date=timezone.now() - DAY)
    doomed = KeepRecent(7).deletable(newest_first(finding_aid))
    assert doomed == [old_failure]
    assert old_success not in doomed
    assert long_run not in doomed
    assert KeepRecent(1e9).deletable(newest_first(finding_aid)) == []  # further back than dates go


def test_keep_all_deletes_nothing(finding_aid: Any) -> None:
    history(finding_aid)
    assert KeepAll().deletable(newest_first(finding_aid)) == []


# --- names, descriptions, the old names ----------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "written", "description"),
    [
        (KeepAll(), "KeepAll()", "keeps every run"),
        (
            KeepNewestAndLastSuccess(),
            "KeepNewestAndLastSuccess()",
            "keeps each record's newest run and its newest success",
        ),
        (KeepNewest(3), "KeepNewest(n=3)", "keeps each record's 3 newest runs and its newest success"),
        (
            KeepRecent(1),
            "KeepRecent(days=1)",
            "keeps each record's runs that ended in the last 1 day and its newest success",
        ),
        (
            KeepRecent(0.5),
            "KeepRecent(days=0.5)",
            "keeps each record's runs that ended in the last 0.5 days and its newest success",
        ),
        (
            KeepSinceLastSuccess(),
            "KeepSinceLastSuccess()",
            "keeps each record's newest success and every run after it; a record that never succeeded keeps all",
        ),
    ],
)
def test_each_policy_says_what_it_keeps(policy: RetentionPolicy, written: str, description: str) -> None:
    assert repr(policy) == written
    assert policy.describe() == description
    assert parse_policy(written) == policy  # what the dry run prints can be previewed again


def test_the_old_names_still_work_and_warn(finding_aid: Any) -> None:
    """Adopters' Jobs written with the first names keep working: same runs kept, a DeprecationWarning."""
    from airflow_client.retention import KeepDays, KeepLastN, KeepLatest

    runs = history(finding_aid)
    newest = newest_first(finding_aid)
    olds: list[tuple[type[RetentionPolicy], tuple[Any, ...], RetentionPolicy]] = [
        (KeepLatest, (), KeepNewestAndLastSuccess()),
        (KeepLastN, (2,), KeepNewest(2)),
        (KeepDays, (15,), KeepRecent(15)),
    ]
    for old, args, new in olds:
        with pytest.warns(
            DeprecationWarning, match=rf"{old.__name__}\(.*\) is deprecated; use {type(new).__name__}"
        ) as caught:
            policy = old(*args)
        assert caught[0].filename == __file__  # points at the line that built it
        assert isinstance(policy, type(new))
        assert repr(policy) == repr(new)
        assert policy.describe() == new.describe()
        assert policy.deletable(newest) == new.deletable(newest)
    with pytest.warns(DeprecationWarning, match="KeepLastN"), pytest.raises(ValueError, match="n >= 1"):
        KeepLastN(0)

    # A Job written with an old name prunes as before.
    with pytest.warns(DeprecationWarning, match="KeepLatest"):
        old_style = KeepLatest()
    with job_keeping(old_style, dag_id="index_latest"):
        call_command("airflow_prune", stdout=StringIO())
    assert kept(finding_aid) == names(runs, "running_old", "success_new", "failed_new")


@pytest.mark.parametrize(
    ("text", "policy"),
    [
        ("KeepNewest(3)", KeepNewest(3)),
        (" KeepNewest(n=3) ", KeepNewest(3)),
        ("KeepRecent(days=0.5)", KeepRecent(0.5)),
        ("KeepRecent(7)", KeepRecent(7)),
        ("KeepAll", KeepAll()),
        ("KeepSinceLastSuccess()", KeepSinceLastSuccess()),
    ],
)
def test_parse_policy_reads_a_policy_as_written_in_a_job(text: str, policy: RetentionPolicy) -> None:
    assert parse_policy(text) == policy


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("__import__('os').system('touch /tmp/pwned')", "Not a policy"),
        ("KeepNewest(n=__import__('os').getpid())", "only numbers"),
        ("KeepNewest(len('abc'))", "only numbers"),
        ("KeepNewest('3')", "only numbers"),
        ("KeepNewest(True)", "only numbers"),
        ("KeepNewest(*[3])", "only numbers"),
        ("KeepNewest(**{'n': 3})", r"\*\*arguments"),
        ("KeepNewest(3) or KeepAll()", "Not a policy"),
        ("retention.KeepAll()", "Not a policy"),
        ("RetentionPolicy()", "Unknown policy 'RetentionPolicy'"),
        ("print(1)", "Unknown policy 'print'"),
        ("KeepNewest(0)", "n >= 1"),
        ("KeepNewest(1, 2)", "Not a policy"),
        ("KeepNewest(count=2)", "unexpected keyword"),
        ("KeepLatest()", "KeepLatest is deprecated: use KeepNewestAndLastSuccess"),
        ("KeepNewest(3", "Not a policy"),
        ("", "Not a policy"),
    ],
)
def test_parse_policy_refuses_anything_else(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_policy(text)


# --- when a run finishes ----------------------------------------------------------------------


def test_cincos_rule_applies_when_a_run_finishes(
    finding_aid: Any,
    fake_airflow: fake.FakeAirflow,
    no_refresh_interval: None,
    keep_since_last_success: type[Job],
) -> None:
    from tests.testapp.models import FindingAid

    dag_id = keep_since_last_success.dag_id
    old_failure = make_run(finding_aid, dag_id=dag_id, state="failed", age=3 * DAY)
    success = make_run(finding_aid, dag_id=dag_id, state="success", age=2 * DAY)
    failure_after = make_run(finding_aid, dag_id=dag_id, state="failed", age=1 * DAY)
    other = FindingAid.objects.create(title="Other")
    others = {
        make_run(other, dag_id=dag_id, state=state, age=age * DAY)
        for state, age in [("failed", 5), ("success", 4)]
    }
    other_dag = make_run(finding_aid, dag_id="index_finding_aid", state="failed", age=4 * DAY)

    # A failure: the runs before the newest success go, the ones after it stay.
    job_run = trigger(keep_since_last_success, finding_aid)
    assert JobRun.objects.for_object(finding_aid).count() == 5  # unfinished: nothing pruned yet
    fake_airflow.finish(job_run.dag_run_id, "failed")
    refresh(job_run)
    assert set(JobRun.objects.for_object(finding_aid)) == {success, failure_after, job_run, other_dag}
    assert not JobRun.objects.filter(pk=old_failure.pk).exists()

    # A success: everything before it goes.
    newest = trigger(keep_since_last_success, finding_aid)
    fake_airflow.finish(newest.dag_run_id, "success")
    refresh(newest)
    assert set(JobRun.objects.for_object(finding_aid)) == {newest, other_dag}
    assert set(JobRun.objects.for_object(other)) == others  # another record's history is its own


# --- manage.py airflow_prune ------------------------------------------------------------------


def when(run: JobRun) -> str:
    assert run.end_date is not None
    return f"ended {timezone.localtime(run.end_date):%Y-%m-%d %H:%M}"


def block(output: str, first: str) -> list[str]:
    """The lines of one Job in the command's output: from ``first`` to the next unindented line."""
    lines = output.splitlines()
    start = lines.index(first)
    end = next((i for i in range(start + 1, len(lines)) if not lines[i].startswith(" ")), len(lines))
    return lines[start:end]


def test_prune_command_dry_run_lists_each_record_then_prunes(
    finding_aid: Any, keep_newest_and_last_success: type[Job]
) -> None:
    from tests.testapp.models import FindingAid

    runs = history(finding_aid)
    other = FindingAid.objects.create(title="Letters of\nCharles Babbage")
    other_runs = history(other)
    unrelated = make_run(finding_aid, dag_id="index_finding_aid", state="failed", age=50 * DAY)
    before = JobRun.objects.count()

    out = StringIO()
    call_command("airflow_prune", "--dry-run", stdout=out)
    output = out.getvalue()
    assert output.splitlines()[0] == "Dry run: nothing is deleted."
    assert block(output, "index_latest: would delete 4 run(s) of 2 record(s)") == [
        "index_latest: would delete 4 run(s) of 2 record(s)",
        "  policy KeepNewestAndLastSuccess(): keeps each record's newest run and its newest success",
        f'  FindingAid {finding_aid.pk} "Papers of Ada Lovelace": 2 run(s)',
        f"    {runs['failed_mid'].dag_run_id}  failed  {when(runs['failed_mid'])}",
        f"    {runs['success_old'].dag_run_id}  success  {when(runs['success_old'])}",
        f'  FindingAid {other.pk} "Letters of Charles Babbage": 2 run(s)',
        f"    {other_runs['failed_mid'].dag_run_id}  failed  {when(other_runs['failed_mid'])}",
        f"    {other_runs['success_old'].dag_run_id}  success  {when(other_runs['success_old'])}",
    ]
    assert block(output, "index_finding_aid: would delete 0 run(s)") == [
        "index_finding_aid: would delete 0 run(s)",
        "  policy KeepAll(): keeps every run",
    ]
    assert output.splitlines()[-1] == "Total: would delete 4 run(s)."
    assert JobRun.objects.count() == before

    out = StringIO()
    call_command("airflow_prune", stdout=out)
    assert "index_latest: deleted 4 run(s) of 2 record(s)" in out.getvalue()
    assert "policy" not in out.getvalue()  # the detail is for the dry run (or --verbosity 2)
    assert kept(finding_aid) == names(runs, "running_old", "success_new", "failed_new") | {
        unrelated.dag_run_id  # a DAG whose Job keeps everything
    }
    assert kept(other) == names(other_runs, "running_old", "success_new", "failed_new")


def test_prune_command_previews_another_policy_for_every_job(
    finding_aid: Any, keep_newest_and_last_success: type[Job]
) -> None:
    runs = history(finding_aid)
    mine = {
        "failed": make_run(finding_aid, dag_id="index_finding_aid", state="failed", age=5 * DAY),
        "success": make_run(finding_aid, dag_id="index_finding_aid", state="success", age=4 * DAY),
    }
    before = set(JobRun.objects.values_list("dag_run_id", flat=True))

    out = StringIO()
    call_command("airflow_prune", "--dry-run", "--policy", "KeepSinceLastSuccess()", stdout=out)
    output = out.getvalue()
    assert output.splitlines()[0] == (
        "Dry run, with KeepSinceLastSuccess() in place of each Job's own policy: nothing is deleted."
    )
    # The Job that keeps every run is previewed too.
    assert block(output, "index_finding_aid: would delete 1 run(s) of 1 record(s)")[1:] == [
        "  policy KeepSinceLastSuccess(): keeps each record's newest success and every run after it; "
        "a record that never succeeded keeps all",
        f'  FindingAid {finding_aid.pk} "Papers of Ada Lovelace": 1 run(s)',
        f"    {mine['failed'].dag_run_id}  failed  {when(mine['failed'])}",
    ]
    assert block(output, "index_latest: would delete 2 run(s) of 1 record(s)")[3:] == [
        f"    {runs['failed_mid'].dag_run_id}  failed  {when(runs['failed_mid'])}",
        f"    {runs['success_old'].dag_run_id}  success  {when(runs['success_old'])}",
    ]
    assert "Total: would delete 3 run(s)." in output
    assert set(JobRun.objects.values_list("dag_run_id", flat=True)) == before

    out = StringIO()
    call_command(
        "airflow_prune", "--dry-run", "--policy", "KeepNewest(1)", "--dag", "index_latest", stdout=out
    )
    output = out.getvalue()
    assert "index_latest: would delete 2 run(s) of 1 record(s)" in output
    assert "  policy KeepNewest(n=1): keeps each record's newest run and its newest success" in output
    assert "index_finding_aid" not in output
    assert set(JobRun.objects.values_list("dag_run_id", flat=True)) == before


def test_prune_command_refuses_a_policy_without_dry_run(
    finding_aid: Any, keep_newest_and_last_success: type[Job]
) -> None:
    history(finding_aid)
    before = JobRun.objects.count()
    with pytest.raises(CommandError, match=r"--policy only previews a policy: add --dry-run"):
        call_command("airflow_prune", "--policy", "KeepNewest(1)", stdout=StringIO())
    with pytest.raises(CommandError, match="Not a policy"):
        call_command("airflow_prune", "--dry-run", "--policy", "__import__('os').getpid()", stdout=StringIO())
    with pytest.raises(CommandError, match="KeepLatest is deprecated: use KeepNewestAndLastSuccess"):
        call_command("airflow_prune", "--dry-run", "--policy", "KeepLatest()", stdout=StringIO())
    with pytest.raises(CommandError, match="No registered Job runs the DAG 'nope'"):
        call_command("airflow_prune", "--dry-run", "--dag", "nope", stdout=StringIO())
    assert JobRun.objects.count() == before


def test_pruning_one_record_keeps_a_shared_run_another_record_needs(
    finding_aid: Any, keep_newest_and_last_success: type[Job]
) -> None:
    from tests.testapp.models import FindingAid

    other = FindingAid.objects.create(title="Other")
    # One run about both records: for finding_aid an old success, for other its only success.
    shared = make_run(finding_aid, state="success", age=10 * DAY, dag_id="index_latest")
    link = shared.job_records.get()
    link.pk = None
    link.object_id = str(other.pk)
    link.save()
    make_run(finding_aid, state="success", age=1 * DAY, dag_id="index_latest")
    unshared = make_run(finding_aid, state="failed", age=5 * DAY, dag_id="index_latest")

    call_command("airflow_prune", stdout=StringIO())
    assert not JobRun.objects.filter(pk=unshared.pk).exists()  # no other record keeps it
    # Gone from finding_aid's history, still in other's: the run itself stays.
    assert shared.dag_run_id not in kept(finding_aid)
    assert kept(other) == {shared.dag_run_id}
    assert JobRun.objects.last_success(other, "index_latest") == shared


def test_another_policy_is_only_ever_previewed(
    finding_aid: Any, keep_newest_and_last_success: type[Job]
) -> None:
    history(finding_aid)
    with pytest.raises(ValueError, match="only be previewed"):
        pruning.prune_jobs(policy=KeepNewest(1))
    assert len(newest_first(finding_aid)) == 5
