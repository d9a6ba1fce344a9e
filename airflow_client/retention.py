"""Retention policies: which finished runs of one record (in one DAG) to delete.

A Job names its policy (``retention = KeepSinceLastSuccess()``). This module
only decides; :mod:`airflow_client.pruning` applies the decision when a run
finishes and on demand (``manage.py airflow_prune``). Whatever the policy, an
unfinished run and the newest successful run of a record are never deleted.

Each policy is named for what it keeps; ``describe()`` says it in words. The
first names (``KeepLatest``, ``KeepLastN``, ``KeepDays``) remain as deprecated
aliases that behave exactly like their replacements.
"""

from __future__ import annotations

import abc
import ast
import dataclasses
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from django.utils import timezone

from airflow_client.states import FINISHED_STATES, RunState

if TYPE_CHECKING:
    from airflow_client.models import JobRun

__all__ = [
    "DEPRECATED",
    "POLICIES",
    "KeepAll",
    "KeepDays",
    "KeepLastN",
    "KeepLatest",
    "KeepNewest",
    "KeepNewestAndLastSuccess",
    "KeepRecent",
    "KeepSinceLastSuccess",
    "RetentionPolicy",
    "parse_policy",
]


class RetentionPolicy(abc.ABC):
    """Base class: subclasses pick candidates; protection is applied here."""

    #: False: nothing is ever deleted, so the work of looking is skipped.
    deletes: ClassVar[bool] = True

    @abc.abstractmethod
    def candidates(self, runs: Sequence[JobRun], now: datetime) -> list[JobRun]:
        """Runs (given newest first) the policy would drop."""

    def deletable(self, runs: Sequence[JobRun], now: datetime | None = None) -> list[JobRun]:
        """``runs`` of one record in one DAG, newest first -> the ones to delete."""
        if not self.deletes:
            return []
        newest_success = _newest_success(runs)
        return [
            run
            for run in self.candidates(runs, now or timezone.now())
            if run.state in FINISHED_STATES and run is not newest_success
        ]

    def describe(self) -> str:
        """What the policy keeps, in one line (the dry run and the README show it)."""
        doc = (type(self).__doc__ or "").strip()
        return doc.splitlines()[0] if doc else repr(self)

    def __repr__(self) -> str:
        # As written in a Job; a deprecated alias shows the name that replaces it.
        name = type(self).__dict__.get("_use_instead", type(self).__name__)
        try:
            fields = dataclasses.fields(self)  # type: ignore[arg-type]  # a subclass of one's own may be no dataclass
        except TypeError:
            fields = ()
        values = ", ".join(f"{field.name}={getattr(self, field.name)!r}" for field in fields)
        return f"{name}({values})"


def _newest_success(runs: Sequence[JobRun]) -> JobRun | None:
    return next((run for run in runs if run.state == RunState.SUCCESS), None)


def _check_number(policy: str, name: str, value: object, minimum: float, *, whole: bool) -> None:
    # bool is an int to Python, never a count of runs or days to a reader.
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (whole and isinstance(value, float)):
        raise TypeError(
            f"{policy} needs {'a whole number' if whole else 'a number'} for {name}, not {value!r}."
        )
    if not math.isfinite(value) or value < minimum:
        raise ValueError(f"{policy} needs a finite {name} >= {minimum:g}.")


@dataclass(frozen=True, repr=False)
class KeepAll(RetentionPolicy):
    """Keeps every run (the default)."""

    deletes: ClassVar[bool] = False

    def candidates(self, runs: Sequence[JobRun], now: datetime) -> list[JobRun]:
        return []

    def describe(self) -> str:
        return "keeps every run"


@dataclass(frozen=True, repr=False)
class KeepNewestAndLastSuccess(RetentionPolicy):
    """Keeps each record's newest run and its newest success (the same as ``KeepNewest(n=1)``)."""

    def candidates(self, runs: Sequence[JobRun], now: datetime) -> list[JobRun]:
        return list(runs[1:])

    def describe(self) -> str:
        return "keeps each record's newest run and its newest success"


@dataclass(frozen=True, repr=False)
class KeepNewest(RetentionPolicy):
    """Keeps each record's ``n`` newest runs and its newest success."""

    n: int = 10

    def __post_init__(self) -> None:
        _check_number("KeepNewest", "n", self.n, 1, whole=True)

    def candidates(self, runs: Sequence[JobRun], now: datetime) -> list[JobRun]:
        return list(runs[self.n :])

    def describe(self) -> str:
        newest = "newest run" if self.n == 1 else f"{self.n} newest runs"
        return f"keeps each record's {newest} and its newest success"


@dataclass(frozen=True, repr=False)
class KeepRecent(RetentionPolicy):
    """Keeps each record's runs that ended within ``days`` and its newest success.

    A finished run without an end date counts from when it was recorded.
    """

    days: float = 30

    def __post_init__(self) -> None:
        _check_number("KeepRecent", "days", self.days, 0, whole=False)

    def candidates(self, runs: Sequence[JobRun], now: datetime) -> list[JobRun]:
        try:
            cutoff = now - timedelta(days=self.days)
        except OverflowError:  # before year 1: no run is that old
            return []
        return [run for run in runs if (run.end_date or run.created_at) < cutoff]

    def describe(self) -> str:
        unit = "day" if self.days == 1 else "days"
        return f"keeps each record's runs that ended in the last {self.days:g} {unit} and its newest success"


@dataclass(frozen=True, repr=False)
class KeepSinceLastSuccess(RetentionPolicy):
    """Keeps each record's newest success and every run after it; a record that never succeeded keeps all.

    "After" is in the order runs were recorded, the order every policy reads
    them in: a failure that followed the newest success stays, and only the
    finished runs before that success go.
    """

    def candidates(self, runs: Sequence[JobRun], now: datetime) -> list[JobRun]:
        newest_success = _newest_success(runs)
        if newest_success is None:
            return []
        position = next(index for index, run in enumerate(runs) if run is newest_success)
        return list(runs[position + 1 :])

    def describe(self) -> str:
        return "keeps each record's newest success and every run after it; a record that never succeeded keeps all"


# --- the first names, deprecated -------------------------------------------------------------


def _deprecated(old: str, new: str) -> None:
    # stacklevel 3: the warning points at the line that built the policy (a Job's body, usually).
    warnings.warn(
        f"airflow_client.retention.{old} is deprecated; use {new}, which keeps the same runs.",
        DeprecationWarning,
        stacklevel=3,
    )


class KeepLatest(KeepNewestAndLastSuccess):
    """Deprecated: use ``KeepNewestAndLastSuccess()``."""

    _use_instead: ClassVar[str] = "KeepNewestAndLastSuccess"

    def __init__(self) -> None:
        _deprecated("KeepLatest()", "KeepNewestAndLastSuccess()")
        super().__init__()


class KeepLastN(KeepNewest):
    """Deprecated: use ``KeepNewest(n)``."""

    _use_instead: ClassVar[str] = "KeepNewest"

    def __init__(self, n: int = 10) -> None:
        _deprecated("KeepLastN(n)", "KeepNewest(n)")
        super().__init__(n)


class KeepDays(KeepRecent):
    """Deprecated: use ``KeepRecent(days)``."""

    _use_instead: ClassVar[str] = "KeepRecent"

    def __init__(self, days: float = 30) -> None:
        _deprecated("KeepDays(days)", "KeepRecent(days)")
        super().__init__(days)


#: The policies by name: what a Job may name, and what ``airflow_prune --policy`` accepts.
POLICIES: dict[str, type[RetentionPolicy]] = {
    policy.__name__: policy
    for policy in (KeepAll, KeepNewestAndLastSuccess, KeepNewest, KeepRecent, KeepSinceLastSuccess)
}

#: Deprecated name -> the policy that replaces it.
DEPRECATED: dict[str, type[RetentionPolicy]] = {
    "KeepLatest": KeepNewestAndLastSuccess,
    "KeepLastN": KeepNewest,
    "KeepDays": KeepRecent,
}


# --- reading a policy from text (manage.py airflow_prune --policy) ---------------------------


def _literal_number(node: ast.expr) -> int | float:
    # literal_eval only ever builds literals; anything else (a name, a call) is refused.
    try:
        value = ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError) as exc:
        raise ValueError(f"only numbers may be given to a policy, not {ast.unparse(node)!r}") from exc
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"only numbers may be given to a policy, not {ast.unparse(node)!r}")
    return value


def parse_policy(text: str) -> RetentionPolicy:
    """``"KeepNewest(3)"`` -> ``KeepNewest(n=3)``: one of :data:`POLICIES`, with literal number arguments.

    Nothing in ``text`` is evaluated: it is parsed, and only a policy name called
    with numbers (by position or by keyword) is accepted. ``ValueError`` says why not.
    """
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, ValueError, MemoryError, RecursionError) as exc:
        raise ValueError(f'Not a policy: {text!r} (write it as in a Job, e.g. "KeepNewest(3)").') from exc
    node = tree.body
    call = node if isinstance(node, ast.Call) else None
    name_node = call.func if call is not None else node
    if not isinstance(name_node, ast.Name):
        raise ValueError(f'Not a policy: {text!r} (write it as in a Job, e.g. "KeepNewest(3)").')
    name = name_node.id
    if name in DEPRECATED:
        raise ValueError(f"{name} is deprecated: use {DEPRECATED[name].__name__}, which keeps the same runs.")
    policy = POLICIES.get(name)
    if policy is None:
        raise ValueError(f"Unknown policy {name!r}; the policies are: {', '.join(POLICIES)}.")
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    if call is not None:
        try:
            args = [_literal_number(arg) for arg in call.args]  # a *starred argument is no literal: refused
            for keyword in call.keywords:
                if keyword.arg is None:
                    raise ValueError("**arguments are not accepted")
                kwargs[keyword.arg] = _literal_number(keyword.value)
        except ValueError as exc:
            raise ValueError(f"Not a policy: {text!r}: {exc}.") from exc
    try:
        return policy(*args, **kwargs)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"Not a policy: {text!r}: {exc}") from exc
