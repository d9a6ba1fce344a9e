"""The fault matrix's pieces: the misbehaving Airflow, the faults, the entry points, the evidence.

Each fault is injected into :class:`~tests.faults.server.FaultyAirflow` (or into
the environment's BASE_URL: a closed port, a ``.invalid`` host); each entry
point is one way into the package (the transport itself, the widget's poll, the
trigger button, the run detail and log pages, ``sync()``). Running one against
the other gives an :class:`Outcome`: what the user saw, what was stored, what
was raised and logged, which the tests then judge.
"""

from __future__ import annotations

import base64
import logging
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.core.cache import cache
from django.db import transaction
from django.test import Client
from django.urls import reverse

from airflow_client.models import JobRun, JobTrigger
from airflow_client.syncing import sync
from airflow_client.transports import get_transport
from tests.factories import make_run, make_user
from tests.faults.server import PASSWORD, USERNAME, Answer, FaultyAirflow, closed_port, run_json

#: The client's TIMEOUT against the faulty Airflow (seconds): short, to keep the matrix fast.
TIMEOUT = 0.5
#: No entry point may take longer than this, whatever the fault (seconds).
MAX_SECONDS = 8 * TIMEOUT
#: A static bearer token, for the environment that uses TOKEN instead of USERNAME/PASSWORD.
STATIC_TOKEN = "static-tok-Lm93-never-shown"

DAG = "index_finding_aid"
KNOWN_RUN = "manual__known"

OK, ERROR, GONE = "ok", "error", "gone"
ENTRIES = (
    "transport_read",
    "transport_trigger",
    "status",
    "trigger",
    "trigger_post",
    "run_detail",
    "run_log",
    "sync",
)
#: Entry points whose fault is injected into the trigger POST only (the requests before it answer).
POST_ONLY = ("transport_trigger", "trigger_post")


# --- the faults ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fault:
    name: str
    inject: Callable[[FaultyAirflow, dict[str, Any], str, str | None], None]
    #: what each entry point should end in (default: ERROR).
    expect: dict[str, str] = field(default_factory=dict)
    #: Airflow acted on the trigger POST before the fault (the run exists there).
    acted: bool = False
    #: an authentication failure: must never be reported as "unreachable".
    auth: bool = False

    def expected(self, entry: str) -> str:
        return self.expect.get(entry, ERROR)


ALL_OK = dict.fromkeys(ENTRIES, OK)


def _scripted(*answers: Answer, repeat: bool = True) -> Callable[..., None]:
    def inject(server: FaultyAirflow, env: dict[str, Any], pattern: str, method: str | None) -> None:
        server.script(pattern, *answers, method=method, repeat=repeat)

    return inject


def _base_url(url: Callable[[], str]) -> Callable[..., None]:
    def inject(server: FaultyAirflow, env: dict[str, Any], pattern: str, method: str | None) -> None:
        env["BASE_URL"] = url()

    return inject


def _token_answer(answer: Answer) -> Callable[..., None]:
    def inject(server: FaultyAirflow, env: dict[str, Any], pattern: str, method: str | None) -> None:
        server.script(r"^/auth/token$", answer)
        # A static TOKEN is refused by the API instead, with the same answer.
        server.valid_tokens.discard(STATIC_TOKEN)
        server.unauthorized = (answer.status, answer.body)

    return inject


def _expire_tokens(server: FaultyAirflow, env: dict[str, Any], pattern: str, method: str | None) -> None:
    server.token_lifetime = None  # no exp claim: the client learns of the expiry from a 401
    server.token_uses = 1


def _delete_run(server: FaultyAirflow, env: dict[str, Any], pattern: str, method: str | None) -> None:
    del server.runs[(DAG, KNOWN_RUN)]


def _override_runs(**fields: Any) -> Callable[..., None]:
    def inject(server: FaultyAirflow, env: dict[str, Any], pattern: str, method: str | None) -> None:
        server.run_overrides.update(fields)

    return inject


READS_OK = {e: OK for e in ENTRIES if e not in POST_ONLY}
DEEP = "[" * 100_000 + "]" * 100_000
ECHO = (
    "Rejected request body: {'username': '" + USERNAME + "', 'password': '" + PASSWORD + "'} "
    "Authorization: Bearer " + STATIC_TOKEN
)

FAULTS = [
    Fault("connection_refused", _base_url(lambda: f"http://127.0.0.1:{closed_port()}")),
    Fault("dns_failure", _base_url(lambda: "http://airflow-fault.invalid")),
    Fault("read_timeout", _scripted(Answer(delay=3 * TIMEOUT)), acted=True),
    Fault("http_500", _scripted(Answer(500, {"detail": "Internal Server Error"}))),
    Fault(
        "http_502",
        _scripted(Answer(502, "<html><body>502 Bad Gateway</body></html>", {"Content-Type": "text/html"})),
    ),
    Fault("http_503", _scripted(Answer(503, "Service Unavailable", {"Content-Type": "text/plain"}))),
    Fault("http_429", _scripted(Answer(429, {"detail": "Too Many Requests"}, {"Retry-After": "1"}))),
    Fault(
        "http_429_once",
        _scripted(Answer(429, {"detail": "Too Many Requests"}, {"Retry-After": "0"}), repeat=False),
        expect=READS_OK,
    ),
    Fault("connection_closed", _scripted(Answer(close=True)), acted=True),
    Fault("body_cut", _scripted(Answer(cut=True)), acted=True),
    Fault("malformed_json", _scripted(Answer(body='{"dag_run_id": "x", "state": ')), acted=True),
    Fault("json_wrong_shape", _scripted(Answer(body=["not", "what", "was", "asked"])), acted=True),
    Fault(
        "json_wrong_types",
        _scripted(
            Answer(body={"dag_id": 7, "dag_run_id": ["x"], "state": {"a": 1}, "dag_runs": "x", "content": 3})
        ),
        acted=True,
    ),
    Fault("deep_json", _scripted(Answer(body=DEEP)), acted=True),
    Fault("huge_body", _scripted(Answer(pad=8_000_000)), expect=ALL_OK),
    Fault("slow_trickle", _scripted(Answer(trickle=0.05)), acted=True),  # slower than the read deadline
    Fault(
        "out_of_range_date",
        _override_runs(start_date="9999-12-31T23:59:59-05:00"),
        expect={"run_detail": OK, "run_log": OK},
        acted=True,
    ),
    Fault(
        "nan_in_conf",
        _override_runs(conf={"ratio": float("nan"), "limit": float("inf")}),
        expect={"run_detail": OK, "run_log": OK},
        acted=True,
    ),
    Fault(
        "unauthorized_then_new_token",
        _scripted(Answer(401, {"detail": "Token revoked"}), repeat=False),
        expect=ALL_OK,
    ),
    Fault("expired_token", _expire_tokens, expect=ALL_OK),
    Fault("wrong_password", _token_answer(Answer(401, {"detail": "Invalid credentials"})), auth=True),
    Fault("token_400_echoes_password", _token_answer(Answer(400, {"detail": ECHO})), auth=True),
    Fault(
        "run_deleted_404",
        _delete_run,
        expect={
            "transport_read": GONE,
            "status": GONE,
            "sync": GONE,
            "trigger": OK,
            "trigger_post": OK,
            "transport_trigger": OK,
        },
    ),
]
FAULT_IDS = [f.name for f in FAULTS]


# --- what one case leaves behind -----------------------------------------------------------------


@dataclass
class Outcome:
    fault: Fault
    entry: str
    seconds: float = 0.0
    status_code: int | None = None
    html: str = ""
    result: Any = None
    exception: BaseException | None = None
    #: texts a user, an admin or a log reader can see: pages, rows, exceptions, reports, log records.
    texts: list[str] = field(default_factory=list)

    def seen(self) -> str:
        return "\n".join(self.texts)


def exception_texts(exc: BaseException | None) -> list[str]:
    texts = []
    while exc is not None:
        texts += [str(exc), repr(exc), "".join(traceback.format_exception_only(type(exc), exc))]
        for name in ("detail", "body"):
            if getattr(exc, name, None) is not None:
                texts.append(repr(getattr(exc, name)))
        exc = exc.__cause__ or exc.__context__
    return texts


def stored_texts() -> list[str]:
    texts = []
    for row in JobTrigger.objects.values():
        texts.append(repr(row))
    for row in JobRun.objects.values():
        texts.append(repr(row))
    return texts


def log_texts(records: list[logging.LogRecord]) -> list[str]:
    formatter = logging.Formatter()
    texts = []
    for record in records:
        texts.append(record.getMessage())
        if record.exc_info:
            texts.append(formatter.formatException(record.exc_info))
    return texts


# --- the scene -----------------------------------------------------------------------------------


@dataclass
class Scene:
    server: FaultyAirflow
    environment: dict[str, Any]
    client: Client
    known: JobRun  # recorded running; Airflow has it as a success by now
    other: Any  # a second finding aid, whose last run finished: free to be triggered
    other_run: JobRun

    def secrets(self) -> list[str]:
        """The credentials this site holds (it can only hide what it knows) and every token it got."""
        configured = [self.environment.get("PASSWORD"), self.environment.get("TOKEN")]
        pair = base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()
        held = [secret for secret in configured if secret]
        if self.environment.get("PASSWORD"):
            held.append(pair)
        return [*held, *self.server.tokens_issued]


@pytest.fixture
def faulty_airflow() -> Iterator[FaultyAirflow]:
    with FaultyAirflow() as server:
        yield server


@pytest.fixture(params=["password", "token"])
def credentials(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def environment(server: FaultyAirflow, credentials: str = "password") -> dict[str, Any]:
    env: dict[str, Any] = {
        "TRANSPORT": "rest",
        "BASE_URL": server.base_url,
        "UI_URL": "https://airflow.example.org",
        "API_VERSION": "v2",
        "TIMEOUT": TIMEOUT,
        "RETRIES": 1,
    }
    if credentials == "token":
        env["TOKEN"] = STATIC_TOKEN
        server.valid_tokens.add(STATIC_TOKEN)
    else:
        env.update(USERNAME=USERNAME, PASSWORD=PASSWORD)
    return env


def build_scene(server: FaultyAirflow, settings: Any, credentials: str = "password") -> Scene:
    from tests.testapp.models import FindingAid

    cache.clear()
    finding_aid = FindingAid.objects.create(title="Papers of Ada Lovelace")
    other = FindingAid.objects.create(title="Letters of Mary Somerville")
    known = make_run(finding_aid, state="running", refreshed_at=None)
    JobRun.objects.filter(pk=known.pk).update(dag_run_id=KNOWN_RUN)
    known.refresh_from_db()
    other_run = make_run(other, state="success")
    server.runs[(DAG, KNOWN_RUN)] = run_json(
        DAG, KNOWN_RUN, "success", conf={"finding_aid_id": finding_aid.pk}
    )
    server.runs[(DAG, other_run.dag_run_id)] = run_json(
        DAG, other_run.dag_run_id, "success", conf={"finding_aid_id": other.pk}
    )
    env = environment(server, credentials)
    settings.AIRFLOW_REFRESH_INTERVAL = 0
    settings.AIRFLOW_ENVIRONMENTS = {"default": env}
    client = Client()
    client.force_login(make_user("operator", "airflow_client.view_jobrun", "airflow_client.trigger_job"))
    return Scene(server, env, client, known, other, other_run)


def inject(scene: Scene, fault: Fault, entry: str, settings: Any) -> None:
    if entry in POST_ONLY:
        pattern, method = r"^/api/v2/dags/[^/]+/dagRuns$", "POST"
    else:
        pattern, method = r"^/api/v2/dags/", None
    env = dict(scene.environment)
    fault.inject(scene.server, env, pattern, method)
    if fault.acted:
        scene.server.act_first = True
    if env != scene.environment:
        scene.environment = env
        settings.AIRFLOW_ENVIRONMENTS = {"default": env}
    get_transport("default").http.sleep = lambda seconds: None  # type: ignore[attr-defined]


def status_url(scene: Scene) -> str:
    known = scene.known
    url = reverse(
        "airflow_client:status",
        kwargs={"model": "testapp.findingaid", "dag_id": DAG, "object_id": str(known.records()[0].pk)},
    )
    return f"{url}?uid=1&run={known.pk}"


def trigger_url(scene: Scene) -> str:
    return reverse(
        "airflow_client:trigger",
        kwargs={"model": "testapp.findingaid", "dag_id": DAG, "object_id": str(scene.other.pk)},
    )


HTMX = {"HX-Request": "true"}


def run_entry(scene: Scene, fault: Fault, entry: str, caplog: pytest.LogCaptureFixture) -> Outcome:
    outcome = Outcome(fault, entry)
    transport = get_transport("default")
    started = time.monotonic()
    try:
        # A savepoint: an entry point that breaks the transaction must not hide the evidence.
        with transaction.atomic():
            if entry == "transport_read":
                outcome.result = transport.get_run(DAG, KNOWN_RUN)
            elif entry == "transport_trigger":
                outcome.result = transport.trigger(DAG, run_id="dj_fault_direct", conf={"finding_aid_id": 0})
            elif entry == "status":
                response = scene.client.get(status_url(scene), headers=HTMX)
                outcome.status_code, outcome.html = response.status_code, response.content.decode()
            elif entry in ("trigger", "trigger_post"):
                response = scene.client.post(trigger_url(scene), {"uid": "1"}, headers=HTMX)
                outcome.status_code, outcome.html = response.status_code, response.content.decode()
            elif entry == "run_detail":
                response = scene.client.get(reverse("airflow_client:run_detail", args=[scene.known.pk]))
                outcome.status_code, outcome.html = response.status_code, response.content.decode()
            elif entry == "run_log":
                url = reverse("airflow_client:run_log", args=[scene.known.pk, "extract", 1])
                response = scene.client.get(url)
                outcome.status_code, outcome.html = response.status_code, response.content.decode()
            elif entry == "sync":
                outcome.result = sync()
            else:  # pragma: no cover
                raise AssertionError(entry)
    except Exception as exc:  # judged by the test
        outcome.exception = exc
    outcome.seconds = time.monotonic() - started
    outcome.texts += [outcome.html, repr(outcome.result), str(outcome.result)]
    outcome.texts += exception_texts(outcome.exception)
    outcome.texts += stored_texts()
    outcome.texts += log_texts(caplog.records)
    return outcome
