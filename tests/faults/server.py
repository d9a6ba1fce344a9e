"""A small Airflow 3 (``/api/v2``) that misbehaves on purpose, over real HTTP on 127.0.0.1.

:class:`FaultyAirflow` answers like a healthy Airflow 3 (version, ``/auth/token``,
DAGs, runs, task instances, logs) from a little in-memory state, unless a
*script* says otherwise for the request: a list of :class:`Answer` per route,
consumed one per request (the last one repeats when ``repeat`` is set). An
Answer can give any status, body and headers, sleep before answering (a read
timeout), trickle its body byte by byte, close the connection without a word,
or send a huge body.

Every request is recorded (method, path, headers, body) so that tests can see
what the client sent.
"""

from __future__ import annotations

import base64
import json
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

USERNAME = "fault-admin"
PASSWORD = "pw-Zq81-never-shown"


def jwt(serial: int, exp: float | None) -> str:
    """An unsigned JWT-looking token, unique per ``serial``, holding ``exp`` when given."""

    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    claims: dict[str, Any] = {"sub": USERNAME, "jti": f"tok-{serial}-Xk2v"}
    if exp is not None:
        claims["exp"] = int(exp)
    return f"{part({'alg': 'HS512', 'typ': 'JWT'})}.{part(claims)}.sig{serial}"


@dataclass
class Answer:
    """One scripted answer."""

    status: int = 200
    #: dict/list: sent as JSON; str/bytes: sent as is; None: the healthy answer's body.
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    #: seconds to wait before answering (longer than the client's TIMEOUT: a read timeout).
    delay: float = 0.0
    #: seconds between two bytes of the body (a slow trickle).
    trickle: float = 0.0
    #: close the connection without answering.
    close: bool = False
    #: answer the status line and headers, then close mid-body.
    cut: bool = False
    #: the healthy answer with a "padding" field of this many bytes (a huge body).
    pad: int = 0


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


@dataclass
class _Script:
    method: str | None
    pattern: re.Pattern[str]
    answers: list[Answer]
    repeat: bool


class FaultyAirflow:
    """The server and its state; use as a context manager (or start()/stop())."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.runs: dict[tuple[str, str], dict[str, Any]] = {}
        self.paused: set[str] = set()
        self.tokens_issued: list[str] = []
        #: tokens the API accepts (a new one is valid unless ``expire_tokens`` says otherwise).
        self.valid_tokens: set[str] = set()
        #: how long a new token lives (None: no exp claim; negative: already expired).
        self.token_lifetime: float | None = 3600.0
        #: how many API requests a token is good for (None: any number): expiry without an exp claim.
        self.token_uses: int | None = None
        self._uses: dict[str, int] = {}
        #: the answer to an API request without a valid token (None: 401 "Not authenticated").
        self.unauthorized: tuple[int, Any] | None = None
        #: fields that every DAG run answered carries (out-of-range dates, NaN...).
        self.run_overrides: dict[str, Any] = {}
        #: a scripted answer comes after Airflow did what was asked (the POST created its run).
        self.act_first = False
        self._scripts: list[_Script] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    # --- lifecycle -----------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FaultyAirflow:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FaultyAirflow:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- scripting -----------------------------------------------------------------------------

    def script(self, pattern: str, *answers: Answer, method: str | None = None, repeat: bool = True) -> None:
        """Answer requests whose path matches ``pattern`` (a regex, searched) with ``answers``."""
        with self._lock:
            self._scripts.append(_Script(method, re.compile(pattern), list(answers), repeat))

    def clear_scripts(self) -> None:
        with self._lock:
            self._scripts.clear()

    def add_run(self, dag_id: str, run_id: str, state: str = "running", **fields: Any) -> dict[str, Any]:
        run = run_json(dag_id, run_id, state, **fields)
        self.runs[(dag_id, run_id)] = run
        return run

    def requests_to(self, fragment: str, method: str | None = None) -> list[Request]:
        return [r for r in self.requests if fragment in r.path and (method is None or r.method == method)]

    def _scripted(self, method: str, path: str) -> Answer | None:
        with self._lock:
            for script in self._scripts:
                if script.method not in (None, method) or not script.pattern.search(path):
                    continue
                if not script.answers:
                    continue
                if len(script.answers) == 1 and script.repeat:
                    return script.answers[0]
                return script.answers.pop(0)
        return None

    # --- the healthy Airflow 3 -----------------------------------------------------------------

    def healthy(self, request: Request) -> tuple[int, Any]:
        path = request.path
        if path == "/api/v2/version":
            return 200, {"version": "3.1.0", "git_version": None}
        if path == "/api/v1/version":
            return 404, {"detail": "Not Found"}
        if path == "/auth/token" and request.method == "POST":
            try:
                creds = json.loads(request.body)
            except ValueError:
                return 400, {"detail": "bad body"}
            if creds != {"username": USERNAME, "password": PASSWORD}:
                return 401, {"detail": "Invalid credentials"}
            with self._lock:
                serial = len(self.tokens_issued) + 1
                lifetime = self.token_lifetime
                token = jwt(serial, None if lifetime is None else time.time() + lifetime)
                self.tokens_issued.append(token)
                self.valid_tokens.add(token)
            return 201, {"access_token": token}
        if not path.startswith("/api/v2/"):
            return 404, {"detail": "Not Found"}
        auth = request.headers.get("authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else ""
        with self._lock:
            if token in self.valid_tokens and self.token_uses is not None:
                self._uses[token] = self._uses.get(token, 0) + 1
                if self._uses[token] > self.token_uses:
                    self.valid_tokens.discard(token)
            valid = token in self.valid_tokens
        if not valid:
            if self.unauthorized is not None:
                return self.unauthorized
            return 401, {"detail": "Not authenticated"}
        parts = [unquote(p) for p in path[len("/api/v2/") :].split("/")]
        if parts[0] != "dags" or len(parts) < 2:
            return 404, {"detail": "Not Found"}
        dag_id = parts[1]
        if len(parts) == 2:
            return 200, {"dag_id": dag_id, "is_paused": dag_id in self.paused, "is_active": True}
        if parts[2] != "dagRuns":
            return 404, {"detail": "Not Found"}
        if parts[1:] == ["~", "dagRuns", "list"] and request.method == "POST":
            return 200, self._batch_listing(json.loads(request.body))
        if len(parts) == 3 and request.method == "POST":
            body = json.loads(request.body)
            run_id = body["dag_run_id"]
            if (dag_id, run_id) in self.runs:
                return 409, {"detail": "Unique constraint violation"}
            run = self.add_run(dag_id, run_id, "queued", conf=body.get("conf") or {}, note=body.get("note"))
            return 200, self._shown(run)
        if len(parts) == 3:
            runs = [r for (d, _), r in self.runs.items() if dag_id in ("~", d)]
            offset = int(request.query.get("offset", ["0"])[0])
            limit = int(request.query.get("limit", ["100"])[0])
            page = [self._shown(r) for r in runs[offset : offset + limit]]
            return 200, {"dag_runs": page, "total_entries": len(runs)}
        run_id = parts[3]
        run = self.runs.get((dag_id, run_id))
        if run is None:
            return 404, {"detail": f"The DagRun with dag_id: `{dag_id}` and run_id: `{run_id}` was not found"}
        if len(parts) == 4:
            return 200, self._shown(run)
        if parts[4] == "taskInstances" and len(parts) == 5:
            return 200, {"task_instances": [task_json(dag_id, run_id, "extract")], "total_entries": 1}
        if parts[4] == "taskInstances" and len(parts) >= 7 and parts[6] == "logs":
            return 200, {
                "content": [{"event": "extracting", "timestamp": "2026-11-25T19:42:05Z", "level": "info"}],
                "continuation_token": None,
            }
        return 404, {"detail": "Not Found"}

    def _batch_listing(self, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /dags/~/dagRuns/list``: the filters sync sends (DAGs, states, end date), one page."""
        runs = [
            run
            for (dag_id, _run_id), run in self.runs.items()
            if dag_id in body.get("dag_ids", [dag_id])
            and run["state"] in body.get("states", [run["state"]])
            and (
                "end_date_gte" not in body
                or (run["end_date"] is not None and _when(run["end_date"]) >= _when(body["end_date_gte"]))
            )
        ]
        offset, limit = body.get("page_offset", 0), body.get("page_limit", 100)
        return {
            "dag_runs": [self._shown(run) for run in runs[offset : offset + limit]],
            "total_entries": len(runs),
        }

    def _shown(self, run: dict[str, Any]) -> dict[str, Any]:
        return {**run, **self.run_overrides}

    # --- HTTP ----------------------------------------------------------------------------------

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        airflow = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def _handle(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                request = Request(
                    self.command,
                    parts.path,
                    parse_qs(parts.query),
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                )
                airflow.requests.append(request)
                answer = airflow._scripted(self.command, parts.path)
                done: tuple[int, Any] | None = None
                if answer is None or airflow.act_first or answer.body is None:
                    # What a healthy Airflow does; a scripted answer then replaces its answer.
                    done = airflow.healthy(request)
                if answer is None:
                    assert done is not None
                    answer = Answer(status=done[0], body=done[1])
                self._answer(answer, done)

            def _answer(self, answer: Answer, done: tuple[int, Any] | None) -> None:
                if answer.delay:
                    time.sleep(answer.delay)
                if answer.close:
                    self.close_connection = True
                    with _quiet():
                        self.connection.shutdown(socket.SHUT_RDWR)
                    return
                data = answer.body
                if data is None:
                    data = done[1] if done is not None else {}
                    if answer.pad and isinstance(data, dict):
                        data = {**data, "padding": "x" * answer.pad}
                if isinstance(data, (dict, list)):
                    data = json.dumps(data).encode()
                elif isinstance(data, str):
                    data = data.encode()
                self.send_response(answer.status)
                headers = {"Content-Type": "application/json", **answer.headers}
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                with _quiet():
                    if answer.cut:
                        self.wfile.write(data[: len(data) // 2])
                        self.wfile.flush()
                        self.close_connection = True
                        self.connection.shutdown(socket.SHUT_RDWR)
                    elif answer.trickle:
                        for i in range(len(data)):
                            self.wfile.write(data[i : i + 1])
                            self.wfile.flush()
                            time.sleep(answer.trickle)
                    else:
                        self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_DELETE = _handle

        return Handler


class _quiet:
    """Suppress the errors of writing to a client that went away."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, *rest: object) -> bool:
        return kind is not None and issubclass(kind, (OSError, ValueError))


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def run_json(dag_id: str, run_id: str, state: str = "running", **fields: Any) -> dict[str, Any]:
    """A DAG run as Airflow 3 sends it."""
    run: dict[str, Any] = {
        "dag_run_id": run_id,
        "dag_id": dag_id,
        "logical_date": None,
        "queued_at": "2026-11-25T19:42:03.607564Z",
        "start_date": "2026-11-25T19:42:04.000000Z" if state != "queued" else None,
        "end_date": "2026-11-25T19:43:04.000000Z" if state in ("success", "failed") else None,
        "run_after": "2026-11-25T19:42:03.607564Z",
        "state": state,
        "run_type": "manual",
        "triggered_by": "rest_api",
        "triggering_user_name": USERNAME,
        "conf": {},
        "note": None,
    }
    run.update(fields)
    return run


def task_json(dag_id: str, run_id: str, task_id: str) -> dict[str, Any]:
    return {
        "task_id": task_id,
        "dag_id": dag_id,
        "dag_run_id": run_id,
        "map_index": -1,
        "state": "success",
        "try_number": 1,
        "start_date": "2026-11-25T19:42:04Z",
        "end_date": "2026-11-25T19:42:09Z",
        "duration": 5.0,
        "operator": "PythonOperator",
    }


def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


Injector = Callable[[FaultyAirflow], None]
