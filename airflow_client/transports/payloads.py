"""Airflow's JSON shapes (API v1 and v2) turned into the dataclasses of :mod:`.base`.

Pure functions shared by every transport that speaks Airflow's REST API
(directly or through MWAA): no I/O here, so each is tested on plain dicts.
``version`` is always ``"v1"`` (Airflow 2) or ``"v2"`` (Airflow 3).
"""

from __future__ import annotations

import ast
import base64
import binascii
import json
import math
import re
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

from django.utils.dateparse import parse_datetime as _django_parse_datetime

from airflow_client.exceptions import (
    AirflowError,
    AirflowUnavailable,
    AuthenticationFailed,
    BadRequest,
    BadResponse,
    Conflict,
    NotFound,
)
from airflow_client.transports.base import Dag, DagRun, LogChunk, LogLine, TaskInstance

__all__ = [
    "API_VERSIONS",
    "api_segment",
    "clear_run_body",
    "clear_task_instances_body",
    "error_detail",
    "error_for_status",
    "follow_pages",
    "link_segment",
    "log_url",
    "parse_dag",
    "parse_dag_run",
    "parse_datetime",
    "parse_log",
    "parse_log_prefix",
    "parse_run_list",
    "parse_run_page",
    "parse_task_instance",
    "parse_task_instances",
    "parse_xcom",
    "query_datetime",
    "run_state_body",
    "run_url",
    "scrub",
    "trigger_body",
    "version_from_string",
]

API_VERSIONS = ("v1", "v2")

#: The years a date from Airflow may fall in (in UTC); anything else is a BadResponse.
MIN_YEAR, MAX_YEAR = 1900, 2200

#: Longest readable detail kept from an error body (bodies can hold whole HTML pages).
_MAX_DETAIL = 500
#: Most pages read of one listing (items: MAX_PAGES x page size); an Airflow paging
#: forever is stopped there.
MAX_PAGES = 200
#: Longest log continuation token kept (real ones are a few hundred characters);
#: a longer one is a BadResponse, never a token cut short.
MAX_TOKEN_LENGTH = 32 * 1024

_Item = TypeVar("_Item")


# --- values ----------------------------------------------------------------------------------


def parse_datetime(value: Any) -> datetime | None:
    """An aware datetime from Airflow's ISO 8601 text (``Z`` or offset); None stays None.

    A naive value is read as UTC (Airflow stores UTC). Anything unreadable is a BadResponse.
    """
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        parsed: datetime | None = value
    elif isinstance(value, str):
        try:
            parsed = _django_parse_datetime(value)
        except ValueError:
            parsed = None
    else:
        parsed = None
    if parsed is None:
        raise BadResponse(f"Airflow sent an unreadable date: {value!r}.", body=value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    # A date a database or a page cannot hold (9999-12-31T23:59:59-05:00 overflows in UTC).
    try:
        in_utc = parsed.astimezone(timezone.utc)
    except (OverflowError, ValueError):
        in_utc = None
    if in_utc is None or not MIN_YEAR <= in_utc.year <= MAX_YEAR:
        raise BadResponse(
            f"Airflow sent a date out of range ({MIN_YEAR}-{MAX_YEAR}): {str(value)[:40]!r}.", body=str(value)
        )
    return parsed


class NonFinite:
    """What NaN/Infinity in Airflow's JSON decode to: no number, so no shape accepts it.

    json.loads would make them floats that overflow dates, sums and databases. A marker
    rather than an error at decode time: one run holding NaN in a listing is then refused
    on its own (see _finite) while the others on the page are read.
    """

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


def loads(text: str | bytes) -> Any:
    """Airflow's JSON text decoded; NaN/Infinity become NonFinite markers, never floats."""
    return json.loads(text, parse_constant=NonFinite)


def _finite(value: Any, what: str) -> Any:
    """``value`` (decoded JSON) when it holds no NaN/Infinity, else a BadResponse."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, NonFinite) or (isinstance(item, float) and not math.isfinite(item)):
            raise BadResponse(f"Airflow sent {what} holding {item!r}, which is not a JSON number.")
        if isinstance(item, Mapping):
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return value


def query_datetime(value: datetime) -> str:
    """``value`` as UTC ISO 8601 text with ``Z``, for a query parameter.

    A naive value is UTC (what Airflow and Django with USE_TZ mean), never local
    time. ``Z`` rather than ``+00:00``: a ``+`` in a query string can arrive as a space.
    """
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def version_from_string(airflow_version: str) -> str:
    """The API version ("v1"/"v2") for an Airflow release string such as "2.10.3" or "3.0.6"."""
    major = airflow_version.strip().split(".", 1)[0]
    if major == "2":
        return "v1"
    if major.isdigit() and int(major) >= 3:
        return "v2"
    raise BadResponse(f"Unsupported Airflow version {airflow_version!r}.", body=airflow_version)


def _mapping(data: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise BadResponse(f"Airflow sent {what} that is not a JSON object.", body=data)
    return data


def _required_str(data: Mapping[str, Any], key: str, what: str, limit: int = 250) -> str:
    # The limits are those of the columns the values are stored in: garbage must be a
    # BadResponse here, not a database error in the middle of a page.
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise BadResponse(f"Airflow sent {what} without {key!r}.", body=dict(data))
    if len(value) > limit:
        raise BadResponse(f"Airflow sent {what} whose {key!r} is longer than {limit} characters.")
    return value


def _optional_str(value: Any, limit: int = 250) -> str | None:
    return value[:limit] if isinstance(value, str) and value else None


def _continuation_token(value: Any) -> str | None:
    """A log continuation token, whole: cut short, Airflow could not read it back."""
    if not isinstance(value, str) or not value:
        return None
    if len(value) > MAX_TOKEN_LENGTH:
        raise BadResponse(f"Airflow sent a log continuation token longer than {MAX_TOKEN_LENGTH} characters.")
    return value


# --- DAGs and runs ---------------------------------------------------------------------------


def parse_dag(data: Any) -> Dag:
    dag = _mapping(data, "a DAG")
    return Dag(
        dag_id=_required_str(dag, "dag_id", "a DAG"),
        is_paused=bool(dag.get("is_paused")),
        # v2 dropped is_active for is_stale (3.0+); a missing flag means active.
        is_active=bool(dag.get("is_active", not dag.get("is_stale", False))),
    )


def parse_dag_run(data: Any, version: str) -> DagRun:
    """A DAG run object of either API version (unknown fields are ignored)."""
    run = _finite(_mapping(data, "a DAG run"), "a DAG run")
    conf = run.get("conf")
    logical_date = run.get("logical_date")
    if version == "v1" and logical_date is None:
        logical_date = run.get("execution_date")  # deprecated twin, still the one some 2.x fill
    return DagRun(
        dag_id=_required_str(run, "dag_id", "a DAG run"),
        run_id=_required_str(run, "dag_run_id", "a DAG run"),
        state=_required_str(run, "state", "a DAG run", limit=20),
        run_type=_optional_str(run.get("run_type"), limit=50) or "",
        # Airflow 2 does not say who started a run (external_trigger is not the same thing).
        triggered_by=_optional_str(run.get("triggered_by"), limit=50) if version == "v2" else None,
        triggering_user=_optional_str(run.get("triggering_user_name")),
        logical_date=parse_datetime(logical_date),
        run_after=parse_datetime(run.get("run_after")),
        queued_at=parse_datetime(run.get("queued_at")),
        start_date=parse_datetime(run.get("start_date")),
        end_date=parse_datetime(run.get("end_date")),
        conf=dict(conf) if isinstance(conf, Mapping) else {},
        note=_optional_str(run.get("note")),
    )


def _page(data: Any, key: str, what: str) -> tuple[list[Any], int]:
    """The raw items of one listing page under ``key``, and the ``total_entries`` Airflow reports."""
    page = _mapping(data, what)
    items = page.get(key)
    if not isinstance(items, list):
        raise BadResponse(f"Airflow sent {what} without {key!r}.", body=dict(page))
    total = page.get("total_entries")
    return items, total if isinstance(total, int) else len(items)


def parse_run_list(data: Any, version: str) -> tuple[list[DagRun], int]:
    """One page of a run listing and the ``total_entries`` Airflow reports."""
    runs, total = _page(data, "dag_runs", "a run list")
    return [parse_dag_run(run, version) for run in runs], total


def parse_run_page(
    data: Any, version: str, on_unreadable: Callable[[BadResponse], None] | None = None
) -> tuple[list[DagRun | None], int]:
    """Like parse_run_list, each run on its own: with ``on_unreadable``, a run that cannot be
    read is passed to it as a BadResponse (naming the run) and is None in the page, so the
    page keeps its length (offsets) and the other runs are kept."""
    items, total = _page(data, "dag_runs", "a run list")
    runs: list[DagRun | None] = []
    for item in items:
        try:
            runs.append(parse_dag_run(item, version))
        except BadResponse as exc:
            if on_unreadable is None:
                raise
            ids = [item.get(key) if isinstance(item, Mapping) else None for key in ("dag_id", "dag_run_id")]
            name = "/".join(str(part)[:250] for part in ids if isinstance(part, str)) or "a run"
            on_unreadable(BadResponse(f"Airflow listed {name}, which cannot be read: {exc.detail}"))
            runs.append(None)
    return runs, total


def trigger_body(
    run_id: str,
    conf: Mapping[str, Any],
    note: str | None,
    version: str,
    run_after: datetime | None = None,
) -> dict[str, Any]:
    """The JSON body that starts a run with our own run id (``run_after``: not before then).

    Airflow 3 keeps a queued run waiting until its ``run_after``. Airflow 2 has no such
    field, but its scheduler leaves a queued run alone until its logical date (unless
    ``[scheduler] allow_trigger_in_future`` is on), so a later run gets that logical
    date. Logical dates are unique per DAG there: the run id picks a microsecond within
    the second after ``run_after``, so runs deferred to the same moment do not clash.
    """
    body: dict[str, Any] = {"dag_run_id": run_id, "conf": dict(conf)}
    if version == "v2":
        # Airflow 3 requires the key (422 without it); null means "no logical date".
        body["logical_date"] = None
        if run_after is not None:
            body["run_after"] = query_datetime(run_after)
    elif run_after is not None:
        jitter = timedelta(microseconds=zlib.crc32(run_id.encode()) % 1_000_000)
        body["logical_date"] = query_datetime(run_after + jitter)
    if note is not None:
        body["note"] = note
    return body


def parse_xcom(data: Any) -> Any:
    """The value of an XCom entry answer (both API versions name it ``value``)."""
    entry = _finite(_mapping(data, "an XCom entry"), "an XCom entry")
    if "value" not in entry:
        raise BadResponse("Airflow sent an XCom entry without 'value'.", body=dict(entry))
    return entry["value"]


def run_state_body(state: str) -> dict[str, Any]:
    """The PATCH body that sets a run's state.

    The state alone: Airflow 3 changes only the fields a body names (the run's
    note stays), and Airflow 2 accepts nothing else here.
    """
    return {"state": state}


def clear_run_body(only_failed: bool, version: str) -> dict[str, Any]:
    """The body of ``.../dagRuns/{run_id}/clear``. Both APIs default to a dry run.

    v1 takes ``dry_run`` alone (any other key is a 400) and always clears every
    task: only_failed goes through clearTaskInstances there.
    """
    if version == "v1":
        if only_failed:
            raise ValueError("Airflow 2's run clear clears every task: use clear_task_instances_body.")
        return {"dry_run": False}
    return {"dry_run": False, "only_failed": only_failed}


def clear_task_instances_body(run_id: str, only_failed: bool, version: str) -> dict[str, Any]:
    """The body of ``/dags/{dag_id}/clearTaskInstances`` that clears one run's tasks.

    ``only_failed`` is always sent: it defaults to true on this endpoint.
    ``reset_dag_runs`` puts a finished run back in the queue, as the run clear does.
    """
    body: dict[str, Any] = {
        "dry_run": False,
        "dag_run_id": run_id,
        "only_failed": only_failed,
        "reset_dag_runs": True,
    }
    if version == "v1":
        # What Airflow 2's run clear includes on its own (subDAGs, and the tasks
        # ExternalTaskMarkers point to); Airflow 3 has neither key (422).
        body["include_subdags"] = True
        body["include_parentdag"] = True
    return body


def follow_pages(
    fetch: Callable[[int, int], tuple[Sequence[_Item], int]],
    limit: int | None,
    page_size: int,
    max_pages: int = MAX_PAGES,
) -> Iterator[_Item]:
    """The items of successive pages, lazily, until ``limit`` items, an empty page or the total.

    ``fetch(offset, size)`` returns one page and the ``total_entries`` Airflow
    reports; ``limit`` None reads every page. The total can grow while we page,
    so an empty page ends the listing too. Airflow is not trusted to page
    right: a page equal to the previous one (``offset`` ignored) ends the
    listing, and so does the ``max_pages``-th page.
    """
    offset = 0
    previous: Sequence[_Item] | None = None
    for _page_number in range(max_pages):
        if limit is not None and offset >= limit:
            return
        size = page_size if limit is None else min(page_size, limit - offset)
        items, total = fetch(offset, size)
        if previous is not None and list(items) == list(previous):
            return
        yield from items
        offset += len(items)
        if not items or offset >= total:
            return
        previous = items


# --- task instances and logs -----------------------------------------------------------------


def _number(value: Any) -> float | None:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def parse_task_instance(data: Any) -> TaskInstance:
    ti = _mapping(data, "a task instance")
    try_number = ti.get("try_number")
    map_index = ti.get("map_index")
    return TaskInstance(
        task_id=_required_str(ti, "task_id", "a task instance"),
        # v1 may say "none" (deprecated) where v2 says null: both mean no status yet.
        state=None if ti.get("state") in (None, "", "none") else str(ti["state"]),
        try_number=try_number if isinstance(try_number, int) else 0,
        map_index=map_index if isinstance(map_index, int) else -1,
        start_date=parse_datetime(ti.get("start_date")),
        end_date=parse_datetime(ti.get("end_date")),
        duration=_number(ti.get("duration")),
        operator=_optional_str(ti.get("operator")),
    )


def parse_task_instances(data: Any) -> tuple[list[TaskInstance], int]:
    """One page of task instances and the ``total_entries`` Airflow reports."""
    items, total = _page(data, "task_instances", "a task instance list")
    return [parse_task_instance(item) for item in items], total


# Airflow 2's default log format: "[2025-01-01T10:00:00.123+0000] {file.py:12} INFO - text".
_V1_LINE = re.compile(r"^\[(?P<ts>[^\]]+)\] \{[^}]*\} (?P<level>[A-Z]+) - ")


def _v1_line(text: str) -> LogLine:
    match = _V1_LINE.match(text)
    if not match:
        return LogLine(text=text)
    try:
        timestamp = parse_datetime(match["ts"].replace(",", "."))
    except BadResponse:
        timestamp = None
    return LogLine(text=text, timestamp=timestamp, level=match["level"])


def _v1_text(content: Any) -> str:
    """The text inside v1's JSON ``content``: the repr of a list of (host, text) pairs."""
    if not isinstance(content, str):
        return "" if content is None else str(content)
    try:
        # literal_eval only builds literals: safe on untrusted text.
        pairs = ast.literal_eval(content)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return content
    if isinstance(pairs, list) and all(isinstance(p, tuple) and len(p) == 2 for p in pairs):
        return "\n".join(str(text) for _host, text in pairs)
    return content


def _v1_token_finished(token: str) -> bool:
    """Whether a v1 continuation token says the log is complete.

    The token is itsdangerous' URL-safe serialisation of the log reader's metadata
    (``payload.signature``, payload base64 JSON, zlib-compressed when it starts with
    "."). We only read it, never trust it: Airflow verifies it when it comes back.
    """
    payload = token.rsplit(".", 1)[0]
    compressed = payload.startswith(".")
    payload = payload.lstrip(".")
    try:
        raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        if compressed:
            raw = zlib.decompress(raw)
        metadata = json.loads(raw)
    except (binascii.Error, zlib.error, ValueError):
        return False
    return isinstance(metadata, dict) and metadata.get("end_of_log") is True


def _v2_lines(content: Any) -> list[LogLine]:
    if isinstance(content, str):
        return [LogLine(text=line) for line in content.splitlines()]
    if content is None:
        return []
    if not isinstance(content, list):
        # Not "an empty log": Airflow answered something else than a log.
        raise BadResponse(f"Airflow's log answer holds {type(content).__name__} instead of lines.")
    lines: list[LogLine] = []
    for item in content:
        if isinstance(item, str):
            lines.append(LogLine(text=item))
            continue
        if not isinstance(item, Mapping):
            continue
        event = str(item.get("event", ""))
        if event.startswith("::endgroup::"):
            continue  # the UI's fold markers carry no text of their own
        event = event.removeprefix("::group::")
        try:
            timestamp = parse_datetime(item.get("timestamp"))
        except BadResponse:
            timestamp = None
        level = item.get("level")
        lines.append(
            LogLine(text=event, timestamp=timestamp, level=level.upper() if isinstance(level, str) else None)
        )
        for error in item.get("error_detail") or ():
            if isinstance(error, Mapping):  # an exception logged with the event
                text = f"{error.get('exc_type', 'Error')}: {error.get('exc_value', '')}"
                lines.append(LogLine(text=text, level="ERROR"))
    return lines


def parse_log(data: Any, version: str) -> LogChunk:
    """A JSON log answer (``{content, continuation_token}``) as lines plus the token for more.

    v1 lines are the text as Airflow wrote it, with timestamp and level read from
    the default line format when it matches; v2 lines are the structured events.
    The token is None once Airflow says the log is complete.
    """
    payload = _mapping(data, "a log")
    token = _continuation_token(payload.get("continuation_token"))
    if version == "v1":
        lines = [_v1_line(line) for line in _v1_text(payload.get("content")).splitlines()]
        # v1 always returns a token, even at the end of a finished log.
        if token is not None and (_v1_token_finished(token) or not lines):
            token = None
    else:
        lines = _v2_lines(payload.get("content"))
    return LogChunk(lines=tuple(lines), continuation_token=token)


_DECODER = json.JSONDecoder()
_SPACE = re.compile(r"[ \t\n\r]*")


def _skip(text: str, index: int) -> int:
    return _SPACE.match(text, index).end()  # type: ignore[union-attr]


def _partial_string(text: str, index: int) -> str:
    """The characters of the JSON string starting at ``text[index]`` (its quote) up to the cut."""
    rest = text[index + 1 :]
    # The cut may fall inside an escape ("\", "\u00"): drop characters until it decodes.
    for drop in range(min(len(rest), 7) + 1):
        try:
            value = json.loads('"' + rest[: len(rest) - drop] + '"')
        except ValueError:
            continue
        return value if isinstance(value, str) else ""
    return ""


def _partial_content(text: str, index: int) -> Any:
    """As much of the ``content`` value starting at ``text[index]`` as was read whole."""
    if text.startswith('"', index):
        return _partial_string(text, index)
    if not text.startswith("[", index):
        return None
    items: list[Any] = []
    index = _skip(text, index + 1)
    while index < len(text) and text[index] != "]":
        try:
            item, index = _DECODER.raw_decode(text, index)
        except ValueError:
            break  # the item the cut fell in
        items.append(item)
        index = _skip(text, index)
        if text.startswith(",", index):
            index = _skip(text, index + 1)
    return items


def _partial_v1_text(content: str) -> str:
    """The text of v1's ``[(host, text)]`` repr cut short: the first text, up to the cut."""
    match = re.match(r"\s*\[\s*\(\s*(?:'[^']*'|\"[^\"]*\")\s*,\s*(['\"])", content)
    if not match:
        return content
    quote_char, rest = match.group(1), content[match.end() :]
    end = re.search(r"(?<!\\)" + quote_char, rest)  # the text ended before the cut
    if end:
        rest = rest[: end.start()]
    for drop in range(min(len(rest), 10) + 1):
        try:
            value = ast.literal_eval(quote_char + rest[: len(rest) - drop] + quote_char)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            continue
        return str(value)
    return ""


def parse_log_prefix(text: str, version: str) -> LogChunk:
    """The lines of a JSON log answer cut at a size limit (``truncated``), read as far as they go.

    Airflow sends ``content`` before ``continuation_token``, so the token is lost
    with the rest; only the lines read whole are kept (the last one may be cut).
    """
    content: Any = None
    index = _skip(text, 0)
    if text.startswith("{", index):
        index = _skip(text, index + 1)
        try:
            while text.startswith('"', index):
                key, index = _DECODER.raw_decode(text, index)
                index = _skip(text, index)
                if not text.startswith(":", index):
                    break
                index = _skip(text, index + 1)
                if key == "content":
                    content = _partial_content(text, index)
                    break
                _value, index = _DECODER.raw_decode(text, index)
                index = _skip(text, index)
                if text.startswith(",", index):
                    index = _skip(text, index + 1)
        except (ValueError, RecursionError):
            pass
    if version == "v1":
        text = _partial_v1_text(content) if isinstance(content, str) else ""
        lines = [_v1_line(line) for line in text.splitlines()]
    else:
        try:
            lines = _v2_lines(content)
        except RecursionError:
            raise BadResponse("Airflow sent a log nested too deeply to read.") from None
    return LogChunk(lines=tuple(lines), truncated=True)


# --- errors ----------------------------------------------------------------------------------


def _shorten(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 1] + "…"


def _validation_item(item: Any) -> str:
    if not isinstance(item, Mapping):
        return str(item)
    loc = item.get("loc")
    where = ".".join(str(part) for part in loc if part != "body") if isinstance(loc, list) else ""
    msg = str(item.get("msg", ""))
    return f"{where}: {msg}" if where else msg


def error_detail(body: Any) -> str:
    """The readable reason inside an Airflow error body (v1 problem JSON or v2 ``detail``)."""
    if body is None:
        return ""
    if isinstance(body, (bytes, bytearray)):
        body = body.decode("utf-8", "replace")
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except (ValueError, RecursionError):
            return _shorten(body)
    try:
        return _detail(body)
    except RecursionError:
        return "(an answer nested too deeply to read)"


def _detail(body: Any) -> str:
    if not isinstance(body, Mapping):
        return _shorten(json.dumps(body, default=str))
    detail = body.get("detail")
    if isinstance(detail, str) and detail:
        return _shorten(detail)
    if isinstance(detail, list):  # v2 request validation (422)
        return _shorten("; ".join(_validation_item(item) for item in detail))
    if isinstance(detail, Mapping):  # v2 database errors: {"reason", "message", ...}
        for key in ("message", "reason"):
            if isinstance(detail.get(key), str):
                return _shorten(detail[key])
        return _shorten(json.dumps(detail, default=str))
    for key in ("title", "error", "message"):  # v1 problem JSON without detail, misc proxies
        if isinstance(body.get(key), str) and body[key]:
            return _shorten(body[key])
    return _shorten(json.dumps(body, default=str))


def scrub(value: Any, secrets: Sequence[str], _depth: int = 0) -> Any:
    """``value`` (text or decoded JSON) with every one of ``secrets`` replaced by stars.

    Containers are copied; what lies deeper than 50 levels is dropped (None).
    """
    if not secrets:
        return value
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).decode("utf-8", "replace")
    if isinstance(value, str):
        for secret in secrets:
            if secret:
                value = value.replace(secret, "********")
        return value
    if _depth > 50:
        return None
    if isinstance(value, Mapping):
        return {scrub(str(k), secrets): scrub(v, secrets, _depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [scrub(item, secrets, _depth + 1) for item in value]
    if isinstance(value, (int, float, bool)) or value is None:
        return value
    return scrub(str(value), secrets)


def error_for_status(status_code: int, body: Any, *, action: str = "") -> AirflowError:
    """The exception for an Airflow error answer (the caller raises it).

    ``action`` (e.g. "trigger dag_x") prefixes the message so logs say what failed.
    """
    detail = error_detail(body) or f"HTTP {status_code}"
    message = f"{action}: {detail}" if action else detail
    cls: type[AirflowError]
    if status_code in (401, 403):
        cls = AuthenticationFailed
    elif status_code == 404:
        cls = NotFound
    elif status_code == 409:
        cls = Conflict
    elif status_code in (400, 422):
        cls = BadRequest
    elif status_code == 429 or status_code >= 500:
        cls = AirflowUnavailable
    else:
        cls = BadResponse
    return cls(message, status_code=status_code, body=body)


# --- paths and links -------------------------------------------------------------------------


def _no_dot_segment(escaped: str) -> str:
    # "." and ".." would be removed from the path with what precedes them (RFC 3986,
    # done by httpx and browsers alike): escaped, they are ids like any other.
    return escaped.replace(".", "%2E") if escaped in (".", "..") else escaped


def api_segment(value: str) -> str:
    """``value`` escaped for one path segment of an API request (REST and MWAA alike).

    Everything but letters, digits and ``_.-~`` is escaped, ":" and "+" included:
    Airflow percent-decodes paths, and an escaped "+" cannot be taken for a space
    by a proxy on the way. ("~", Airflow's "every DAG", stays as it is.) A whole
    segment "." or ".." is escaped too, or it would collapse the path.
    """
    return _no_dot_segment(quote(value, safe=""))


def link_segment(value: str) -> str:
    """``value`` escaped for one path segment of a link to Airflow's UI.

    ":" and "+" stay readable: Airflow's run-id pattern allows them and its own
    ids use them (``manual__2025-01-01T00:00:00+00:00``); browsers and Airflow's
    UI routes take them as they are.
    """
    return _no_dot_segment(quote(value, safe=":+"))


def _base(ui_url: str) -> str:
    return ui_url.rstrip("/")


def run_url(ui_url: str, dag_id: str, run_id: str, version: str) -> str:
    """The DAG run in Airflow's UI (v1: the grid view with the run selected)."""
    dag = link_segment(dag_id)
    if version == "v1":
        return f"{_base(ui_url)}/dags/{dag}/grid?{urlencode({'dag_run_id': run_id})}"
    return f"{_base(ui_url)}/dags/{dag}/runs/{link_segment(run_id)}"


def log_url(
    ui_url: str,
    dag_id: str,
    run_id: str,
    task_id: str,
    version: str,
    try_number: int | None = None,
    map_index: int = -1,
) -> str:
    """A task try's log in Airflow's UI (the shapes Airflow's own ``log_url`` builds)."""
    dag = link_segment(dag_id)
    if version == "v1":
        params: dict[str, Any] = {"dag_run_id": run_id, "task_id": task_id}
        if map_index >= 0:
            params["map_index"] = map_index
        params["tab"] = "logs"  # the grid cannot pick a try; it shows the latest
        return f"{_base(ui_url)}/dags/{dag}/grid?{urlencode(params)}"
    url = f"{_base(ui_url)}/dags/{dag}/runs/{link_segment(run_id)}/tasks/{link_segment(task_id)}"
    if map_index >= 0:
        url += f"/mapped/{map_index}"
    if try_number is not None:
        url += f"?{urlencode({'try_number': try_number})}"
    return url
