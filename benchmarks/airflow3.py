"""An in-memory Airflow 3 (``/api/v2``) over real HTTP on 127.0.0.1, for the benchmarks.

It answers what :class:`airflow_client.transports.rest.RestTransport` asks, in
the shapes Airflow 3.3 sends (``DAGRunResponse``, ``DAGRunCollectionResponse``,
``TaskInstanceResponse``): the token, the version, a DAG, runs one by one,
the GET run listing (``limit``/``offset``/``order_by``, date ranges incl.
``updated_at_gte``, ``state``), the batch listing
``POST /api/v2/dags/~/dagRuns/list`` (the body of ``DAGRunsBatchBody``: unknown
keys are a 422, as there), task instances and logs, and the writes (trigger,
state, clear). Every request sleeps ``latency`` first, as a network and a real
API server would make it wait, and is counted by route.

Every DAG exists. Runs live in one dict under a lock; the benches add and
change them through :class:`MockAirflow` while the client reads them over HTTP.
"""

from __future__ import annotations

import base64
import itertools
import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

VERSION = "3.3.2"
USERNAME = "bench"
PASSWORD = "bench-password"
#: [api] maximum_page_limit: the GET listings never answer more per page.
MAXIMUM_PAGE_LIMIT = 100
#: [api] fallback_page_limit: the page size when ``limit`` is not given.
FALLBACK_PAGE_LIMIT = 50
FINISHED = ("success", "failed")
#: What the GET run listing may sort on (``dag_run_id`` is an alias of run_id).
RUN_ORDER_FIELDS = (
    "id",
    "state",
    "dag_id",
    "run_id",
    "logical_date",
    "partition_date",
    "run_after",
    "start_date",
    "end_date",
    "updated_at",
    "conf",
    "duration",
)
#: What the batch listing may sort on (no duration, no partition_date there).
BATCH_ORDER_FIELDS = tuple(f for f in RUN_ORDER_FIELDS if f not in ("duration", "partition_date"))
_RANGED = ("run_after", "logical_date", "start_date", "end_date", "updated_at", "duration")
_RANGE_OPS = {
    "gte": lambda a, b: a >= b,
    "gt": lambda a, b: a > b,
    "lte": lambda a, b: a <= b,
    "lt": lambda a, b: a < b,
}
#: Every key DAGRunsBatchBody accepts; any other is a 422 (it is a strict model).
BATCH_KEYS = frozenset(
    {"order_by", "page_offset", "page_limit", "dag_ids", "states", "conf_contains"}
    | {f"{field}_{op}" for field in _RANGED if field != "updated_at" for op in _RANGE_OPS}
)
TRIGGER_KEYS = frozenset(
    {
        "dag_run_id",
        "data_interval_start",
        "data_interval_end",
        "logical_date",
        "run_after",
        "conf",
        "note",
        "partition_key",
    }
)


class ApiError(Exception):
    """An error answer: status and ``detail``, as FastAPI sends them."""

    def __init__(self, status: int, detail: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _iso(value: datetime | None) -> str | None:
    # Pydantic writes aware UTC datetimes with "Z".
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def _aware(value: Any, name: str) -> datetime:
    """A datetime from a query or body value; naive or unreadable is a 422, as AwareDatetime says."""
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(422, [{"loc": [name], "msg": "Input should be a valid datetime"}]) from None
    if parsed.tzinfo is None:
        raise ApiError(422, [{"loc": [name], "msg": "Input should have timezone info"}])
    return parsed


def _token() -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    claims = {"sub": USERNAME, "exp": int(time.time()) + 86_400, "jti": uuid.uuid4().hex}
    return f"{part({'alg': 'HS512', 'typ': 'JWT'})}.{part(claims)}.unsigned"


class MockAirflow:
    """The state behind the server: runs, credentials, request counts. Thread-safe."""

    def __init__(self, latency: float = 0.005) -> None:
        self.latency = latency
        self.base_url = ""
        self._lock = threading.Lock()
        self._runs: dict[tuple[str, str], dict[str, Any]] = {}
        self._ids = itertools.count(1)
        self._tokens: set[str] = set()
        self._counts: Counter[str] = Counter()
        self.paused: set[str] = set()
        #: the DAGs' task ids (every run of a DAG has one task instance each); default one task.
        self.tasks: dict[str, list[str]] = {}
        # Sorted listings, reused until the runs change (a sync reads hundreds of pages).
        self._generation = 0
        self._sorted: dict[tuple[str, ...], tuple[int, list[dict[str, Any]]]] = {}
        self._selected: dict[Any, tuple[int, list[dict[str, Any]]]] = {}

    # --- what the benches use -----------------------------------------------------------------

    def environment(self, **options: Any) -> dict[str, Any]:
        """An ``AIRFLOW_ENVIRONMENTS`` entry for the RestTransport against this server."""
        return {
            "TRANSPORT": "rest",
            "BASE_URL": self.base_url,
            "USERNAME": USERNAME,
            "PASSWORD": PASSWORD,
            **options,
        }

    @property
    def requests(self) -> int:
        """How many requests the server received (all routes)."""
        with self._lock:
            return sum(self._counts.values())

    def count(self, route: str | None = None) -> int:
        """Requests to one route ("token", "version", "dag", "run", "runs", "runs_list",
        "trigger", "patch", "clear", "task_instances", "log", "unknown"), or to all."""
        with self._lock:
            return sum(self._counts.values()) if route is None else self._counts[route]

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def reset_counts(self) -> None:
        with self._lock:
            self._counts.clear()

    def add_run(self, dag_id: str, run_id: str, state: str = "running", **fields: Any) -> dict[str, Any]:
        """Create (or replace) a run; ``fields`` override its DAGRunResponse fields. Its JSON."""
        with self._lock:
            run = self._new_run(dag_id, run_id, state, fields)
            return self._shown(run)

    def add_runs(
        self, dag_id: str, count: int, state: str = "running", prefix: str = "run", **fields: Any
    ) -> list[str]:
        """``count`` runs ``{prefix}_{i}`` of one DAG, in one go; their run ids."""
        run_ids = [f"{prefix}_{i}" for i in range(count)]
        with self._lock:
            for run_id in run_ids:
                self._new_run(dag_id, run_id, state, fields)
        return run_ids

    def update_run(self, dag_id: str, run_id: str, **fields: Any) -> dict[str, Any]:
        """Change a run (``state="success"`` finishes it: end date and duration are filled). Its JSON."""
        with self._lock:
            run = self._runs[(dag_id, run_id)]
            self._change(run, fields)
            return self._shown(run)

    def finish_runs(self, runs: Iterable[tuple[str, str]], state: str = "success") -> None:
        with self._lock:
            for key in runs:
                self._change(self._runs[key], {"state": state})

    def get_run(self, dag_id: str, run_id: str) -> dict[str, Any] | None:
        with self._lock:
            run = self._runs.get((dag_id, run_id))
            return None if run is None else self._shown(run)

    def run_keys(self) -> list[tuple[str, str]]:
        with self._lock:
            return list(self._runs)

    # --- state, under the lock ----------------------------------------------------------------

    def _new_run(self, dag_id: str, run_id: str, state: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        now = _now()
        run: dict[str, Any] = {
            "id": next(self._ids),
            "run_id": run_id,
            "dag_id": dag_id,
            "logical_date": None,
            "queued_at": now,
            "start_date": None if state == "queued" else now,
            "end_date": now if state in FINISHED else None,
            "data_interval_start": None,
            "data_interval_end": None,
            "run_after": now,
            "last_scheduling_decision": None,
            "run_type": "manual",
            "state": state,
            "triggered_by": "rest_api",
            "triggering_user_name": USERNAME,
            "conf": {},
            "note": None,
            "bundle_version": None,
            "partition_key": None,
            "partition_date": None,
            "updated_at": now,
        }
        run.update(fields)
        self._runs[(dag_id, run_id)] = run
        self._generation += 1
        return run

    def _change(self, run: dict[str, Any], fields: Mapping[str, Any]) -> None:
        now = _now()
        run.update(fields)
        state = run["state"]
        if state in FINISHED and run["end_date"] is None and "end_date" not in fields:
            run["end_date"] = now
        if state == "running" and run["start_date"] is None and "start_date" not in fields:
            run["start_date"] = now
        if state == "queued" and "end_date" not in fields:
            run["start_date"] = run["end_date"] = None
        run["updated_at"] = now
        self._generation += 1

    def _shown(self, run: Mapping[str, Any]) -> dict[str, Any]:
        """A run as DAGRunResponse serialises it."""
        start, end = run["start_date"], run["end_date"]
        return {
            "dag_run_id": run["run_id"],
            "dag_id": run["dag_id"],
            "logical_date": _iso(run["logical_date"]),
            "queued_at": _iso(run["queued_at"]),
            "start_date": _iso(start),
            "end_date": _iso(end),
            "duration": (end - start).total_seconds() if start and end else None,
            "data_interval_start": _iso(run["data_interval_start"]),
            "data_interval_end": _iso(run["data_interval_end"]),
            "run_after": _iso(run["run_after"]),
            "last_scheduling_decision": _iso(run["last_scheduling_decision"]),
            "run_type": run["run_type"],
            "state": run["state"],
            "triggered_by": run["triggered_by"],
            "triggering_user_name": run["triggering_user_name"],
            "conf": run["conf"],
            "note": run["note"],
            "dag_versions": [],
            "bundle_version": run["bundle_version"],
            "dag_display_name": run["dag_id"],
            "partition_key": run["partition_key"],
            "partition_date": _iso(run["partition_date"]),
        }

    def _ordered(self, order_by: list[str], allowed: tuple[str, ...]) -> list[dict[str, Any]]:
        """Every run in ``order_by``'s order, with the id last as Airflow's SortParam adds it."""
        keys: list[tuple[str, bool]] = []
        for value in order_by or ["id"]:
            name = value.lstrip("-")
            name = "run_id" if name == "dag_run_id" else name
            if name not in allowed:
                raise ApiError(
                    400, f"Ordering with '{name}' is disallowed or the attribute does not exist on the model"
                )
            keys.append((name, value.startswith("-")))
        if "id" not in (name for name, _ in keys):
            keys.append(("id", keys[0][1]))
        cache_key = (*(f"{'-' if desc else ''}{name}" for name, desc in keys), str(allowed))
        cached = self._sorted.get(cache_key)
        if cached is not None and cached[0] == self._generation:
            return cached[1]
        runs = list(self._runs.values())
        for name, desc in reversed(keys):  # stable sorts, the least significant key first
            runs.sort(key=_sort_key(name, desc), reverse=desc)
        self._sorted[cache_key] = (self._generation, runs)
        return runs

    def _select(
        self,
        order_by: list[str],
        allowed: tuple[str, ...],
        filters: Any,
        keep: Callable[[dict[str, Any]], bool],
    ) -> list[dict[str, Any]]:
        """The runs ``keep`` chooses, in order; reused for the next page while nothing changed."""
        key = (tuple(order_by), allowed, repr(filters))
        cached = self._selected.get(key)
        if cached is not None and cached[0] == self._generation:
            return cached[1]
        chosen = [run for run in self._ordered(order_by, allowed) if keep(run)]
        if len(self._selected) > 32:
            self._selected.clear()
        self._selected[key] = (self._generation, chosen)
        return chosen

    # --- the API --------------------------------------------------------------------------------

    def answer(self, method: str, path: str, query: dict[str, list[str]], body: bytes, auth: str) -> Any:
        """The JSON answer to one request, or an ApiError."""
        if path == "/api/v2/version":
            self._count("version")
            return 200, {"version": VERSION, "git_version": None}
        if path == "/auth/token" and method == "POST":
            self._count("token")
            creds = _json(body)
            if creds != {"username": USERNAME, "password": PASSWORD}:
                raise ApiError(401, "Invalid credentials")
            token = _token()
            with self._lock:
                self._tokens.add(token)
            return 201, {"access_token": token}
        if not path.startswith("/api/v2/dags/"):
            self._count("unknown")
            raise ApiError(404, "Not Found")
        parts = [unquote(p) for p in path[len("/api/v2/") :].split("/")]
        route, handler = self._route(method, parts)
        self._count(route)
        with self._lock:
            if not auth.startswith("Bearer ") or auth[7:] not in self._tokens:
                raise ApiError(401, "Not authenticated")
        return handler(parts, query, body)

    def _count(self, route: str) -> None:
        with self._lock:
            self._counts[route] += 1

    def _route(self, method: str, parts: list[str]) -> tuple[str, Callable[..., tuple[int, Any]]]:
        n = len(parts)
        shape = (method, n, parts[2] if n > 2 else None, parts[4] if n > 4 else None)
        routes: dict[tuple[str, int, str | None, str | None], tuple[str, Callable[..., tuple[int, Any]]]] = {
            ("GET", 2, None, None): ("dag", self._dag),
            ("GET", 3, "dagRuns", None): ("runs", self._runs_page),
            ("POST", 3, "dagRuns", None): ("trigger", self._trigger),
            ("GET", 4, "dagRuns", None): ("run", self._run),
            ("PATCH", 4, "dagRuns", None): ("patch", self._patch),
            ("POST", 5, "dagRuns", "clear"): ("clear", self._clear),
            ("GET", 5, "dagRuns", "taskInstances"): ("task_instances", self._task_instances),
            ("GET", 8, "dagRuns", "taskInstances"): ("log", self._log),
        }
        if method == "POST" and n == 4 and parts[2:] == ["dagRuns", "list"]:
            return "runs_list", self._runs_list
        if shape not in routes:
            return "unknown", _not_found
        return routes[shape]

    def _dag(self, parts: list[str], query: Any, body: bytes) -> tuple[int, Any]:
        dag_id = parts[1]
        return 200, {
            "dag_id": dag_id,
            "dag_display_name": dag_id,
            "is_paused": dag_id in self.paused,
            "is_stale": False,
            "last_parsed_time": _iso(_now()),
            "last_parse_duration": 0.1,
            "last_expired": None,
            "bundle_name": "dags-folder",
            "bundle_version": None,
            "relative_fileloc": f"{dag_id}.py",
            "fileloc": f"/dags/{dag_id}.py",
            "description": None,
            "timetable_summary": None,
            "timetable_description": "Never, external triggers only",
            "timetable_partitioned": False,
            "timetable_periodic": False,
            "tags": [],
            "max_active_tasks": 16,
            "max_active_runs": 16,
            "max_consecutive_failed_dag_runs": 0,
            "has_task_concurrency_limits": False,
            "has_import_errors": False,
            "next_dagrun_logical_date": None,
            "next_dagrun_data_interval_start": None,
            "next_dagrun_data_interval_end": None,
            "next_dagrun_run_after": None,
            "allowed_run_types": None,
            "owners": ["airflow"],
        }

    def _found(self, dag_id: str, run_id: str) -> dict[str, Any]:
        run = self._runs.get((dag_id, run_id))
        if run is None:
            raise ApiError(404, f"The DagRun with dag_id: `{dag_id}` and run_id: `{run_id}` was not found")
        return run

    def _run(self, parts: list[str], query: Any, body: bytes) -> tuple[int, Any]:
        with self._lock:
            return 200, self._shown(self._found(parts[1], parts[3]))

    def _runs_page(self, parts: list[str], query: dict[str, list[str]], body: bytes) -> tuple[int, Any]:
        dag_id = parts[1]
        limit = min(_int(query, "limit", FALLBACK_PAGE_LIMIT), MAXIMUM_PAGE_LIMIT)
        offset = _int(query, "offset", 0)
        ranges = [
            (field, op, _aware(query[key][0], key))
            for field in _RANGED
            if field != "duration"
            for op in _RANGE_OPS
            if (key := f"{field}_{op}") in query
        ]
        states = set(query.get("state", []))

        def keep(run: dict[str, Any]) -> bool:
            return (
                dag_id in ("~", run["dag_id"])
                and (not states or run["state"] in states)
                and _in_ranges(run, ranges)
            )

        with self._lock:
            filters = (dag_id, sorted(states), ranges)
            chosen = self._select(query.get("order_by", []), RUN_ORDER_FIELDS, filters, keep)
            page = [self._shown(run) for run in chosen[offset : offset + limit]]
        return 200, {"dag_runs": page, "total_entries": len(chosen)}

    def _runs_list(self, parts: list[str], query: Any, body: bytes) -> tuple[int, Any]:
        if parts[1] != "~":
            raise ApiError(422, [{"loc": ["path", "dag_id"], "msg": "Input should be '~'"}])
        data = _json(body)
        if not isinstance(data, dict):
            raise ApiError(422, [{"loc": ["body"], "msg": "Input should be a valid dictionary"}])
        extra = sorted(set(data) - BATCH_KEYS)
        if extra:
            raise ApiError(
                422, [{"loc": ["body", key], "msg": "Extra inputs are not permitted"} for key in extra]
            )
        offset, limit = data.get("page_offset", 0), data.get("page_limit", 100)
        if not all(isinstance(v, int) and v >= 0 for v in (offset, limit)):
            raise ApiError(422, [{"loc": ["body", "page_limit"], "msg": "Input should be >= 0"}])
        dag_ids = data.get("dag_ids")
        states = data.get("states")
        conf_contains = data.get("conf_contains")
        ranges = []
        for key in sorted(BATCH_KEYS & set(data)):
            field, _, op = key.rpartition("_")
            if field in _RANGED and data[key] is not None:
                bound = data[key] if field == "duration" else _aware(data[key], key)
                ranges.append((field, op, bound))
        order_by = [data["order_by"]] if data.get("order_by") else []

        def keep(run: dict[str, Any]) -> bool:
            return (
                (dag_ids is None or run["dag_id"] in dag_ids)
                and (states is None or run["state"] in states)
                and (conf_contains is None or conf_contains in json.dumps(run["conf"]))
                and _in_ranges(run, ranges)
            )

        with self._lock:
            filters = (dag_ids, states, conf_contains, ranges)
            chosen = self._select(order_by, BATCH_ORDER_FIELDS, filters, keep)
            page = [self._shown(run) for run in chosen[offset : offset + limit]]
        return 200, {"dag_runs": page, "total_entries": len(chosen)}

    def _trigger(self, parts: list[str], query: Any, body: bytes) -> tuple[int, Any]:
        data = _json(body)
        if not isinstance(data, dict) or "logical_date" not in data:
            raise ApiError(422, [{"loc": ["body", "logical_date"], "msg": "Field required"}])
        extra = sorted(set(data) - TRIGGER_KEYS)
        if extra:
            raise ApiError(
                422, [{"loc": ["body", key], "msg": "Extra inputs are not permitted"} for key in extra]
            )
        dag_id = parts[1]
        run_id = data.get("dag_run_id") or f"manual__{_iso(_now())}"
        with self._lock:
            if (dag_id, run_id) in self._runs:
                raise ApiError(
                    409,
                    {
                        "reason": "Unique constraint violation",
                        "message": "Serious error when handling your request. Check logs for more details",
                    },
                )
            run = self._new_run(
                dag_id, run_id, "queued", {"conf": data.get("conf") or {}, "note": data.get("note")}
            )
            return 200, self._shown(run)

    def _patch(self, parts: list[str], query: Any, body: bytes) -> tuple[int, Any]:
        data = _json(body)
        state = data.get("state") if isinstance(data, dict) else None
        if state not in (None, "queued", "success", "failed"):
            raise ApiError(
                422, [{"loc": ["body", "state"], "msg": "Input should be 'queued', 'success' or 'failed'"}]
            )
        with self._lock:
            run = self._found(parts[1], parts[3])
            self._change(run, {k: v for k, v in data.items() if k in ("state", "note")})
            return 200, self._shown(run)

    def _clear(self, parts: list[str], query: Any, body: bytes) -> tuple[int, Any]:
        data = _json(body)
        with self._lock:
            run = self._found(parts[1], parts[3])
            if isinstance(data, dict) and data.get("dry_run") is False:
                self._change(run, {"state": "queued"})
                return 200, self._shown(run)
            tasks = [self._task(run, task_id) for task_id in self.tasks.get(run["dag_id"], ["main"])]
        return 200, {"task_instances": tasks, "total_entries": len(tasks)}

    def _task(self, run: Mapping[str, Any], task_id: str) -> dict[str, Any]:
        """A run's task instance as TaskInstanceResponse has it; its state follows the run's."""
        state = {"queued": None, "running": "running"}.get(run["state"], run["state"])
        start, end = run["start_date"], run["end_date"]
        return {
            "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{run['dag_id']}/{run['run_id']}/{task_id}")),
            "task_id": task_id,
            "dag_id": run["dag_id"],
            "dag_run_id": run["run_id"],
            "map_index": -1,
            "logical_date": _iso(run["logical_date"]),
            "run_after": _iso(run["run_after"]),
            "start_date": _iso(start),
            "end_date": _iso(end),
            "duration": (end - start).total_seconds() if start and end else None,
            "state": state,
            "try_number": 0 if state is None else 1,
            "max_tries": 0,
            "task_display_name": task_id,
            "dag_display_name": run["dag_id"],
            "hostname": None if state is None else "worker-1",
            "unixname": "airflow",
            "pool": "default_pool",
            "pool_slots": 1,
            "queue": "default",
            "priority_weight": 1,
            "operator": "PythonOperator",
            "operator_name": "@task",
            "queued_when": _iso(run["queued_at"]),
            "scheduled_when": _iso(run["queued_at"]),
            "pid": None,
            "executor": None,
            "executor_config": "{}",
            "note": None,
            "rendered_map_index": None,
            "rendered_fields": {},
            "trigger": None,
            "triggerer_job": None,
            "dag_version": None,
        }

    def _task_instances(self, parts: list[str], query: dict[str, list[str]], body: bytes) -> tuple[int, Any]:
        limit = min(_int(query, "limit", FALLBACK_PAGE_LIMIT), MAXIMUM_PAGE_LIMIT)
        offset = _int(query, "offset", 0)
        with self._lock:
            run = self._found(parts[1], parts[3])
            tasks = [self._task(run, task_id) for task_id in self.tasks.get(run["dag_id"], ["main"])]
        return 200, {"task_instances": tasks[offset : offset + limit], "total_entries": len(tasks)}

    def _log(self, parts: list[str], query: Any, body: bytes) -> tuple[int, Any]:
        with self._lock:
            run = self._found(parts[1], parts[3])
            stamp = _iso(run["start_date"] or run["queued_at"])
        event = {"timestamp": stamp, "event": f"running {parts[5]}", "level": "info"}
        return 200, {"content": [event], "continuation_token": None}


def _sort_key(name: str, desc: bool) -> Callable[[dict[str, Any]], Any]:
    """Sort key for one field; NULLs last ascending and first descending, as PostgreSQL sorts."""

    def key(run: dict[str, Any]) -> Any:
        if name == "duration":
            start, end = run["start_date"], run["end_date"]
            value: Any = (end - start).total_seconds() if start and end else None
        elif name == "conf":
            value = json.dumps(run["conf"], sort_keys=True)
        else:
            value = run[name]
        return (True, 0) if value is None else (False, value)

    return key


def _in_ranges(run: Mapping[str, Any], ranges: list[tuple[str, str, Any]]) -> bool:
    for field, op, bound in ranges:
        if field == "duration":
            start, end = run["start_date"], run["end_date"]
            value = (end - start).total_seconds() if start and end else None
        else:
            value = run[field]
        if value is None or not _RANGE_OPS[op](value, bound):  # NULL matches no range, as in SQL
            return False
    return True


def _int(query: Mapping[str, list[str]], name: str, default: int) -> int:
    try:
        value = int(query[name][0]) if name in query else default
    except ValueError:
        value = -1
    if value < 0:
        raise ApiError(422, [{"loc": ["query", name], "msg": "Input should be greater than or equal to 0"}])
    return value


def _json(body: bytes) -> Any:
    try:
        return json.loads(body or b"null")
    except ValueError:
        raise ApiError(422, [{"loc": ["body"], "msg": "JSON decode error"}]) from None


def _not_found(parts: list[str], query: Any, body: bytes) -> tuple[int, Any]:
    raise ApiError(404, "Not Found")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128


def serve(airflow: MockAirflow) -> tuple[_Server, threading.Thread]:
    """Start the HTTP server for ``airflow`` on a free port of 127.0.0.1 (sets its base_url)."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the client's connection pool expects

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            time.sleep(airflow.latency)
            url = urlsplit(self.path)
            try:
                status, data = airflow.answer(
                    self.command,
                    url.path,
                    parse_qs(url.query),
                    body,
                    self.headers.get("Authorization", ""),
                )
            except ApiError as exc:
                status, data = exc.status, {"detail": exc.detail}
            payload = json.dumps(data).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PATCH = _handle

    server = _Server(("127.0.0.1", 0), Handler)
    airflow.base_url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    return server, thread


__all__ = ["MockAirflow", "serve"]
