"""The history's chart of durations and outcomes, shown when filtered to a record or a DAG."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone as dt_timezone
from typing import Any

import pytest
from django.db import connection
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from airflow_client import charts
from airflow_client.charts import CHART_RUNS, ChartRun, build_chart
from airflow_client.models import JobRun
from tests.factories import make_run
from tests.testapp.models import FindingAid

pytestmark = pytest.mark.django_db

LIST = reverse("airflow_client:run_list")
DAG = "index_finding_aid"
#: A fixed, past spring, so the chart's dates (with their year) are known.
MARCH = datetime(2024, 3, 1, 9, 15, tzinfo=dt_timezone.utc)
PLOT_HEIGHT = charts.BASELINE - charts.PLOT_TOP


def took(obj: Any, seconds: int | None, day: int, state: str = "success", **fields: Any) -> JobRun:
    """A finished run started on ``day`` of March 2024 (``seconds=None``: no end date recorded)."""
    start = MARCH + timedelta(days=day - 1)
    end = None if seconds is None else start + timedelta(seconds=seconds)
    return make_run(obj, state=state, start_date=start, end_date=end, **fields)


def svg(html: str) -> ET.Element:
    """The chart's SVG, parsed (it is written as well-formed XML)."""
    found = re.search(r'<svg class="ac-chart-svg".*?</svg>', html, flags=re.DOTALL)
    assert found, "no chart"
    return ET.fromstring(found.group(0))


def bars(chart: ET.Element) -> list[ET.Element]:
    return chart.findall("a")


def record_url(obj: Any) -> str:
    return f"{LIST}?record_type=testapp.findingaid&object_id={obj.pk}"


@pytest.fixture
def page(client_for, operator) -> Any:
    client: Client = client_for(operator)

    def get(url: str, **headers: str) -> str:
        response = client.get(url, headers=headers)
        assert response.status_code == 200
        return response.content.decode()

    return get


@pytest.mark.parametrize(
    ("query", "charted"),
    [
        ("", False),
        ("?state=failed", False),
        ("?record_type=testapp.findingaid", False),
        ("?object_id={pk}", False),
        ("?environment=default&run_type=manual", False),
        (f"?dag_id={DAG}", True),
        ("?record_type=testapp.findingaid&object_id={pk}", True),
        ("?record_type=nope.model&object_id={pk}", False),  # an invalid filter shows nothing to chart
    ],
)
def test_the_chart_appears_only_when_filtered_to_a_record_or_a_dag(page, finding_aid, query, charted):
    took(finding_aid, 60, day=1)
    html = page(LIST + query.format(pk=finding_aid.pk))
    assert ('class="ac-chart"' in html) is charted
    assert ("<svg" in html) is charted


def test_bars_are_the_runs_oldest_first_with_heights_in_proportion(page, finding_aid):
    other = FindingAid.objects.create(title="Letters of Babbage")
    runs = [
        took(finding_aid, 120, day=3),
        took(finding_aid, 60, day=1),
        took(finding_aid, 240, day=4, state="failed"),
        took(finding_aid, 30, day=2),
    ]
    took(other, 999, day=5)  # another record's run
    chart = svg(page(record_url(finding_aid)))

    drawn = bars(chart)
    expected = sorted(runs, key=lambda run: run.start_date)
    assert [int(bar.get("data-run")) for bar in drawn] == [run.pk for run in expected]
    xs = [float(bar.find("rect").get("x")) for bar in drawn]
    assert xs == sorted(xs)
    heights = {int(bar.get("data-run")): float(bar.find("rect").get("height")) for bar in drawn}
    for run in runs:
        assert heights[run.pk] == pytest.approx(PLOT_HEIGHT * run.duration.total_seconds() / 240, abs=0.01)
    # every bar stands on the baseline
    for bar in drawn:
        rect = bar.find("rect")
        assert float(rect.get("y")) + float(rect.get("height")) == pytest.approx(charts.BASELINE, abs=0.01)
    assert chart.find("text").text == "longest 4 min 0 s"  # at the top of the scale


def test_failed_runs_differ_by_shape_and_text_not_colour_alone(page, finding_aid):
    ok = took(finding_aid, 60, day=1, dag_run_id="manual__ok")
    failed = took(finding_aid, 90, day=2, state="failed", dag_run_id="manual__broken")
    html = page(f"{LIST}?dag_id={DAG}")
    drawn = {int(bar.get("data-run")): bar for bar in bars(svg(html))}

    assert drawn[failed.pk].find("rect").get("fill") == "url(#ac-chart-hatch)"
    assert drawn[failed.pk].find("path") is not None  # the cross under the bar
    assert drawn[ok.pk].find("rect").get("fill") is None
    assert drawn[ok.pk].find("path") is None
    assert drawn[failed.pk].findtext("title") == "manual__broken: Failed, 1 min 30 s, 03/02/2024 9:15 a.m."
    assert drawn[ok.pk].findtext("title") == "manual__ok: Succeeded, 1 min 0 s, 03/01/2024 9:15 a.m."
    assert drawn[failed.pk].get("href") == reverse("airflow_client:run_detail", args=[failed.pk])
    assert "Failed" in html.split('class="ac-chart-legend"')[1].split("</span>\n    </span>")[0]


def test_the_text_alternative_says_the_numbers(page, finding_aid):
    for day, seconds in enumerate((60, 300, 180, 120, 250), start=1):
        took(finding_aid, seconds, day=day, state="failed" if day == 2 else "success")
    html = page(record_url(finding_aid))
    chart = svg(html)

    summary = "5 finished runs from 1 Mar 2024 to 5 Mar 2024: 4 succeeded, 1 failed; median 3 min 0 s, last 4 min 10 s."
    assert chart.get("role") == "img"
    assert chart.get("aria-labelledby") == "ac-chart-title ac-chart-desc"
    assert chart.find("title").get("id") == "ac-chart-title"
    assert chart.find("desc").get("id") == "ac-chart-desc"
    assert chart.findtext("desc") == summary
    assert [t.text for t in chart.findall("text")][1:] == ["1 Mar 2024", "5 Mar 2024"]
    # the same runs as a table, with links, for whoever cannot see the bars or use a mouse
    table = html.split('<details class="ac-chart-data">')[1].split("</details>")[0]
    assert "<caption>Runs in the chart, oldest first</caption>" in table
    assert table.count("<tr>") == 6
    assert table.count('href="/airflow/runs/') == 5
    assert table.index("03/01/2024") < table.index("03/05/2024")
    assert "5 min 0 s" in table


def test_unfinished_runs_are_left_out_and_runs_without_a_duration_are_said(page, finding_aid):
    took(finding_aid, 60, day=1)
    never_started = make_run(finding_aid, state="failed", start_date=None, dag_run_id="manual__no_start")
    no_end = took(finding_aid, None, day=3, dag_run_id="manual__no_end")
    running = make_run(finding_aid, state="running", dag_run_id="manual__running")
    queued = make_run(finding_aid, state="queued", dag_run_id="manual__queued")
    html = page(record_url(finding_aid))
    chart = svg(html)

    drawn = {int(bar.get("data-run")): bar for bar in bars(chart)}
    assert running.pk not in drawn
    assert queued.pk not in drawn
    assert no_end.pk not in drawn  # succeeded, no duration: nothing to draw
    # failed before it started: no bar, but still a cross in its place (the newest: it has no start date)
    assert drawn[never_started.pk].find("rect") is None
    assert drawn[never_started.pk].find("path") is not None
    assert "no duration recorded" in drawn[never_started.pk].findtext("title")
    assert list(drawn)[-1] == never_started.pk
    assert chart.findtext("desc").endswith(
        "2 succeeded, 1 failed; median 1 min 0 s, last 1 min 0 s; 2 without a recorded duration (no bars)."
    )
    table = html.split('<details class="ac-chart-data">')[1].split("</details>")[0]
    assert "manual__no_end" in table
    assert "manual__running" not in table
    assert "manual__queued" not in table
    assert table.count("no duration recorded") == 2


def test_only_unfinished_runs_says_so_without_a_drawing(page, finding_aid):
    make_run(finding_aid, state="running")
    html = page(record_url(finding_aid))
    assert 'class="ac-chart"' in html
    assert "No finished runs yet." in html
    assert "<svg" not in html


def test_odd_run_ids_are_escaped(page, finding_aid):
    odd = "<script>alert(\"x\")</script> & 'y'"
    run = took(finding_aid, 60, day=1, state="failed", dag_run_id=odd)
    html = page(record_url(finding_aid))
    assert "<script>" not in html
    chart = svg(html)  # still well-formed
    assert chart.find("a").findtext("title").startswith(f"{odd}: Failed")
    assert f'<td><a href="/airflow/runs/{run.pk}/">&lt;script&gt;' in html


def test_the_newest_runs_only_and_a_constant_number_of_queries(client_for, operator, finding_aid):
    client = client_for(operator)
    url = f"{LIST}?dag_id={DAG}"

    def get() -> tuple[str, int, int]:
        with CaptureQueriesContext(connection) as queries:
            html = client.get(url).content.decode()
        charting = [q["sql"] for q in queries.captured_queries if "COALESCE" in q["sql"].upper()]
        return html, len(queries), len(charting)

    for day in range(1, 4):
        took(finding_aid, 60, day=day)
    _html, few, charting = get()
    assert charting == 1
    newest = [took(FindingAid.objects.create(title=f"Aid {n}"), 60 + n, day=10 + n) for n in range(70)]
    html, many, charting = get()
    assert (many, charting) == (few, 1)
    drawn = [int(bar.get("data-run")) for bar in bars(svg(html))]
    assert drawn == [run.pk for run in newest[-CHART_RUNS:]]


def test_the_htmx_partial_carries_the_chart_of_the_new_filters(page, finding_aid, collection):
    took(finding_aid, 60, day=1)
    postcards = took(collection, 30, day=2, dag_id="harvest_collection")
    html = page(f"{LIST}?dag_id=harvest_collection", **{"HX-Request": "true"})
    assert html.lstrip().startswith('<div id="ac-runs"')
    assert "<form" not in html
    assert [int(bar.get("data-run")) for bar in bars(svg(html))] == [postcards.pk]
    # the swapped part is where the chart lives: clearing the filters takes it away
    cleared = page(LIST, **{"HX-Request": "true"})
    assert cleared.lstrip().startswith('<div id="ac-runs"')
    assert "ac-chart" not in cleared
    # its links open the run's page, not a swap of the table
    assert 'class="ac-chart" hx-boost="false"' in html


@override_settings(LANGUAGE_CODE="de", USE_THOUSAND_SEPARATOR=True)
def test_coordinates_stay_numbers_in_a_decimal_comma_locale(page, finding_aid):
    took(finding_aid, 61, day=1)
    took(finding_aid, 7, day=2, state="failed")
    html = page(f"{LIST}?dag_id={DAG}")
    assert "01.03.2024" in html  # German dates: the locale is in force
    chart = svg(html)
    for rect in chart.iter("rect"):
        for name in ("x", "y", "width", "height"):
            value = rect.get(name)
            if value is not None:
                float(value)  # "12,5" would raise
    assert chart.get("viewBox") == f"0 0 {charts.WIDTH} {charts.HEIGHT}"


def test_durations_of_no_time_and_clock_skew_still_show_a_sliver() -> None:
    start = MARCH
    chart = build_chart(
        [
            ChartRun(pk=1, run_id="a", state="success", when=start, duration=timedelta(0)),
            ChartRun(pk=2, run_id="b", state="failed", when=start, duration=timedelta(0)),
        ]
    )
    assert [bar.height for bar in chart.bars] == ["1.00", "1.00"]
    assert chart.longest == "0 seconds"
    assert (
        chart.summary
        == "2 finished runs on 1 Mar 2024: 1 succeeded, 1 failed; median 0 seconds, last 0 seconds."
    )
    assert charts._duration(start, start - timedelta(seconds=5)) == timedelta(0)


def test_an_empty_chart_says_so() -> None:
    chart = build_chart([])
    assert chart.bars == ()
    assert chart.summary == "No finished runs yet."
