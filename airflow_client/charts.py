"""The history page's chart: how long a DAG's (or a record's) recent runs took, and how they ended.

Shown only when the history is filtered to one record or one DAG, where a row of
runs is one harvest's story: bars getting taller (slower) or more of them failed.
The chart is drawn by ``airflow_client/history_chart.html`` from what is computed here.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import QuerySet
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.translation import gettext, ngettext

from airflow_client.display import format_duration
from airflow_client.models import JobRun
from airflow_client.states import FINISHED_STATES, RunState, state_label

__all__ = ["CHART_RUNS", "Bar", "ChartRun", "HistoryChart", "build_chart", "history_chart"]

#: How many of the newest finished runs the chart draws.
CHART_RUNS = 50

# The drawing, in SVG user units (the SVG scales to the page's width).
WIDTH = 640
HEIGHT = 190
PLOT_TOP = 22  # the dashed line at the longest duration
BASELINE = 150  # where bars stand
MARKER_Y = 161  # the row of crosses under failed runs
LABEL_Y = 185  # first and last date
MAX_BAR_WIDTH = 24.0
CROSS = 3.5  # half a cross's width


@dataclass(frozen=True)
class ChartRun:
    """One finished run, as much of it as the chart needs."""

    pk: int
    run_id: str
    state: str
    when: datetime  # started, or recorded when it never started
    duration: timedelta | None

    @property
    def failed(self) -> bool:
        return self.state == RunState.FAILED


@dataclass(frozen=True)
class Bar:
    """One run's place in the chart. Coordinates are strings so no locale puts a comma in them."""

    run: ChartRun
    url: str
    label: str  # its <title>: run id, state, duration, date
    state_text: str
    duration_text: str  # "" without a duration
    when_text: str
    x: str
    y: str
    width: str
    height: str
    cross: str  # path of the cross under a failed run, "" otherwise

    @property
    def drawn(self) -> bool:
        """A run without a duration has no bar (a failed one still has its cross)."""
        return self.run.duration is not None


@dataclass(frozen=True)
class HistoryChart:
    bars: tuple[Bar, ...]  # oldest first
    title: str
    summary: str  # the text alternative's sentence
    longest: str  # duration of the tallest bar
    first_date: str
    last_date: str
    succeeded: int
    failed: int
    without_duration: int
    width: int = WIDTH
    height: int = HEIGHT
    plot_top: int = PLOT_TOP
    baseline: int = BASELINE
    label_y: int = LABEL_Y


def history_chart(filterset: Any, limit: int = CHART_RUNS) -> HistoryChart | None:
    """The chart of a JobRunFilter's runs, or None unless it names a record or a DAG.

    One query whatever the history's size: the newest ``limit`` finished runs, only
    the columns drawn (``values()`` also leaves out the page's sorting annotations).
    "Newest" is the runs' recorded order (``created_at``, which JobRun's indexes keep, so
    the query stops after ``limit`` runs); they are drawn in the order they started.
    """
    if not filterset.is_valid():
        return None
    data = filterset.form.cleaned_data
    if not (data.get("dag_id") or (data.get("record_type") and data.get("object_id"))):
        return None
    runs: QuerySet[JobRun] = filterset.qs
    rows = (
        runs.filter(state__in=FINISHED_STATES)
        .annotate(chart_when=Coalesce("start_date", "created_at"))
        .order_by("-created_at", "-pk")
        .values("pk", "dag_run_id", "state", "start_date", "end_date", "chart_when")[:limit]
    )
    chart_runs = sorted(
        (
            ChartRun(
                pk=row["pk"],
                run_id=row["dag_run_id"],
                state=row["state"],
                when=row["chart_when"],
                duration=_duration(row["start_date"], row["end_date"]),
            )
            for row in rows
        ),
        key=lambda run: (run.when, run.pk),
    )
    return build_chart(chart_runs)


def _duration(start: datetime | None, end: datetime | None) -> timedelta | None:
    # Same rule as JobRun.duration; a clock skew that ends a run before it started counts as no time.
    if start is None or end is None:
        return None
    return max(end - start, timedelta(0))


def build_chart(runs: Sequence[ChartRun]) -> HistoryChart:
    """Lay ``runs`` (oldest first) out as bars: one slot each, heights scaled to the longest."""
    durations = [run.duration for run in runs if run.duration is not None]
    longest = max(durations, default=timedelta(0))
    slot = WIDTH / max(len(runs), 1)
    bar_width = min(slot * 0.7, MAX_BAR_WIDTH)
    bars = []
    for index, run in enumerate(runs):
        left = index * slot + (slot - bar_width) / 2
        height = 0.0
        if run.duration is not None:
            share = run.duration / longest if longest else 0.0
            # a run of no time still gets a sliver, to be seen and hovered
            height = max(share * (BASELINE - PLOT_TOP), 1.0)
        bars.append(_bar(run, left, bar_width, height))
    failed = sum(run.failed for run in runs)
    first_date, last_date = _dates(runs)
    return HistoryChart(
        bars=tuple(bars),
        title=gettext("Durations and outcomes of the newest finished runs"),
        summary=_summary(runs, durations, first_date, last_date),
        longest=format_duration(longest) if durations else "",
        first_date=first_date,
        last_date=last_date,
        succeeded=len(runs) - failed,
        failed=failed,
        without_duration=len(runs) - len(durations),
    )


def _bar(run: ChartRun, left: float, width: float, height: float) -> Bar:
    state_text = str(state_label(run.state))
    duration_text = format_duration(run.duration)
    when_text = formats.date_format(timezone.localtime(run.when), "SHORT_DATETIME_FORMAT")
    label = gettext("%(run)s: %(state)s, %(duration)s, %(when)s") % {
        "run": run.run_id,
        "state": state_text,
        "duration": duration_text or gettext("no duration recorded"),
        "when": when_text,
    }
    cross = ""
    if run.failed:
        x, y = left + width / 2, MARKER_Y
        cross = (
            f"M{x - CROSS:.2f} {y - CROSS:.2f}L{x + CROSS:.2f} {y + CROSS:.2f}"
            f"M{x + CROSS:.2f} {y - CROSS:.2f}L{x - CROSS:.2f} {y + CROSS:.2f}"
        )
    return Bar(
        run=run,
        url=reverse("airflow_client:run_detail", args=[run.pk]),
        label=label,
        state_text=state_text,
        duration_text=duration_text,
        when_text=when_text,
        x=f"{left:.2f}",
        y=f"{BASELINE - height:.2f}",
        width=f"{width:.2f}",
        height=f"{height:.2f}",
        cross=cross,
    )


def _dates(runs: Sequence[ChartRun]) -> tuple[str, str]:
    """The first and last run's day ("1 Mar"), with the year when it is not this one or they differ."""
    if not runs:
        return "", ""
    first, last = (timezone.localtime(run.when) for run in (runs[0], runs[-1]))
    with_year = first.year != last.year or last.year != timezone.localtime().year
    form = "j M Y" if with_year else "j M"
    return formats.date_format(first, form), formats.date_format(last, form)


def _median(durations: list[timedelta]) -> timedelta:
    return timedelta(seconds=statistics.median(d.total_seconds() for d in durations))


def _summary(runs: Sequence[ChartRun], durations: list[timedelta], first: str, last: str) -> str:
    """One sentence saying what the chart shows, for those who do not see it."""
    if not runs:
        return gettext("No finished runs yet.")
    if first == last:
        span = gettext("on %(date)s") % {"date": first}
    else:
        span = gettext("from %(first)s to %(last)s") % {"first": first, "last": last}
    runs_span = ngettext("%(count)d finished run %(span)s", "%(count)d finished runs %(span)s", len(runs)) % {
        "count": len(runs),
        "span": span,
    }
    failed = sum(run.failed for run in runs)
    outcomes = gettext("%(succeeded)d succeeded, %(failed)d failed") % {
        "succeeded": len(runs) - failed,
        "failed": failed,
    }
    parts = [f"{runs_span}: {outcomes}"]
    if durations:
        latest = next(run.duration for run in reversed(runs) if run.duration is not None)
        parts.append(
            gettext("median %(median)s, last %(last)s")
            % {"median": format_duration(_median(durations)), "last": format_duration(latest)}
        )
    missing = len(runs) - len(durations)
    if missing:
        parts.append(
            ngettext(
                "%(count)d without a recorded duration (no bar)",
                "%(count)d without a recorded duration (no bars)",
                missing,
            )
            % {"count": missing}
        )
    return "; ".join(parts) + "."
