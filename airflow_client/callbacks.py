"""Airflow callbacks that tell the Django site how a DAG run goes (the DAG side of the event wire).

This module runs inside Airflow (3.x and 2.x), where Django is absent: it uses the
standard library only, imports Airflow inside functions (Django's side imports the
wire constants and :func:`signature` from here) and has no relative imports, so the
file also works copied alone into a DAG folder under any name.

Use the callbacks as they are::

    DAG(..., on_success_callback=on_dag_success, on_failure_callback=on_dag_failure,
        default_args={"on_execute_callback": on_task_start, "on_success_callback": on_task_success,
                      "on_failure_callback": on_task_failure, "on_retry_callback": on_task_retry})

and :func:`send_event` for a message of your own from a task. Where events go is read
at each call: the Airflow connection ``django_airflow_client`` (also from the
``AIRFLOW_CONN_DJANGO_AIRFLOW_CLIENT`` environment variable), else the
``AIRFLOW_CLIENT_EVENTS_*`` environment variables. Nothing here ever raises into a
task: a problem is one warning in the task's (or the callback's) log.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import http.client
import importlib
import json
import logging
import os
import re
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any, Literal

__all__ = [
    "CONNECTION_ENV",
    "CONNECTION_ID",
    "KIND_PATTERN",
    "SIGNATURE_HEADER",
    "SIGNATURE_PREFIX",
    "TIMESTAMP_HEADER",
    "WIRE_VERSION",
    "build_event",
    "envelope",
    "on_dag_failure",
    "on_dag_success",
    "on_task_failure",
    "on_task_retry",
    "on_task_start",
    "on_task_success",
    "send_event",
    "signature",
]

log = logging.getLogger(__name__)

# --- the wire (version 1: what the Django side's events view accepts) ---------------------

WIRE_VERSION = 1
TIMESTAMP_HEADER = "X-Airflow-Client-Timestamp"
SIGNATURE_HEADER = "X-Airflow-Client-Signature"
SIGNATURE_PREFIX = "sha256="

DAG_KINDS = frozenset({"dag_success", "dag_failure"})
TASK_KINDS = frozenset({"task_start", "task_success", "task_failure", "task_retry"})
#: A custom kind from send_event (the built-in kinds match it too).
KIND_PATTERN = re.compile(r"[a-z0-9_.-]{1,50}")
#: The task error is cut to this many characters.
ERROR_LIMIT = 1000

# --- where events go -------------------------------------------------------------------------

CONNECTION_ID = "django_airflow_client"
CONNECTION_ENV = "AIRFLOW_CONN_DJANGO_AIRFLOW_CLIENT"
URL_ENV = "AIRFLOW_CLIENT_EVENTS_URL"
SECRET_ENV = "AIRFLOW_CLIENT_EVENTS_SECRET"
ENVIRONMENT_ENV = "AIRFLOW_CLIENT_ENVIRONMENT"
TIMEOUT_ENV = "AIRFLOW_CLIENT_EVENTS_TIMEOUT"
SQS_ENV = "AIRFLOW_CLIENT_EVENTS_SQS_QUEUE_URL"
SNS_ENV = "AIRFLOW_CLIENT_EVENTS_SNS_TOPIC_ARN"
REGION_ENV = "AIRFLOW_CLIENT_EVENTS_REGION"

DEFAULT_TIMEOUT = 5.0
#: Seconds to wait before the 2nd and the 3rd attempt of an HTTP delivery.
BACKOFF = (1.0, 2.0)
#: Tests replace it to skip the waits.
sleep: Callable[[float], None] = time.sleep


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """The signature header's value: ``sha256=`` + hex HMAC-SHA256 of ``timestamp.body`` with ``secret``."""
    message = timestamp.encode("ascii") + b"." + body
    digest = hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()
    return SIGNATURE_PREFIX + digest


# --- the event body --------------------------------------------------------------------------


def build_event(
    context: Mapping[str, Any],
    kind: str,
    payload: Mapping[str, Any] | None = None,
    *,
    environment: str | None = None,
) -> dict[str, Any]:
    """The event body for ``kind`` from an Airflow callback's (or a task's) ``context``.

    Raises ValueError or TypeError when the context names no DAG run (or no task for a
    task_* kind), the kind is malformed or the payload is not a mapping.
    """
    if not isinstance(kind, str) or not KIND_PATTERN.fullmatch(kind):
        raise ValueError(f"kind must be 1-50 characters of a-z 0-9 _ . - (got {kind!r})")
    if payload is not None and not isinstance(payload, Mapping):
        raise TypeError(f"payload must be a mapping or None (got {type(payload).__name__})")
    if not isinstance(context, Mapping):
        raise TypeError(f"context must be the callback's context mapping (got {type(context).__name__})")
    task = None if kind in DAG_KINDS else _task(context, kind)
    if task is None and kind in TASK_KINDS:
        raise ValueError(f"the context of a {kind} event has no task instance")
    return {
        "version": WIRE_VERSION,
        "id": uuid.uuid4().hex,
        "kind": kind,
        "sent_at": datetime.now(timezone.utc).isoformat(),
        "environment": environment,
        "host": socket.gethostname(),
        "run": _run(context, kind),
        "task": task,
        "payload": dict(payload) if payload is not None else None,
    }


def _attr(obj: Any, name: str) -> Any:
    """``obj.name`` or None; a detached ORM object (Airflow 2) raises on lazy attributes like ``note``."""
    if obj is None:
        return None
    try:
        return getattr(obj, name, None)
    except Exception:
        return None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, enum.Enum):  # DagRunType, TaskInstanceState, ...
        value = value.value
    return str(value)


def _iso(value: Any) -> str | None:
    if isinstance(value, datetime):  # pendulum's DateTime too
        moment: datetime = value if value.tzinfo else value.replace(tzinfo=timezone.utc)  # Airflow keeps UTC
        return moment.isoformat()
    if isinstance(value, str):
        return value
    return None


def _task_instance(context: Mapping[str, Any]) -> Any:
    return context.get("ti") or context.get("task_instance")


def _run(context: Mapping[str, Any], kind: str) -> dict[str, Any]:
    # A DAG callback of Airflow 3 without a task instance gets only dag, run_id and reason.
    dag_run = context.get("dag_run")
    dag = context.get("dag")
    ti = _task_instance(context)
    dag_id = _attr(dag_run, "dag_id") or _attr(dag, "dag_id") or _attr(ti, "dag_id")
    run_id = _attr(dag_run, "run_id") or context.get("run_id") or _attr(ti, "run_id")
    if not dag_id or not run_id:
        raise ValueError("the context names no DAG run (no dag_run, dag or run_id)")
    conf = _attr(dag_run, "conf")
    task_ids = _attr(dag, "task_ids")
    logical_date = _attr(dag_run, "logical_date") or _attr(dag_run, "execution_date")  # Airflow 2 has both
    return {
        "dag_id": str(dag_id),
        "run_id": str(run_id),
        "state": {"dag_success": "success", "dag_failure": "failed"}.get(kind, "running"),
        "run_type": _text(_attr(dag_run, "run_type")),
        "logical_date": _iso(logical_date),
        "run_after": _iso(_attr(dag_run, "run_after")),
        "queued_at": _iso(_attr(dag_run, "queued_at")),
        "start_date": _iso(_attr(dag_run, "start_date")),
        "end_date": _iso(_attr(dag_run, "end_date")),
        "conf": dict(conf) if isinstance(conf, Mapping) else {},
        "note": _text(_attr(dag_run, "note")),
        "task_count": len(task_ids) if task_ids is not None else None,
    }


#: The task's state when its task instance does not carry one (Airflow 3 before it runs).
_KIND_STATES = {
    "task_start": "running",
    "task_success": "success",
    "task_failure": "failed",
    "task_retry": "up_for_retry",
}


def _task(context: Mapping[str, Any], kind: str) -> dict[str, Any] | None:
    ti = _task_instance(context)
    task_id = _attr(ti, "task_id")
    if not task_id:
        return None
    map_index = _attr(ti, "map_index")
    try_number = _attr(ti, "try_number")
    error = None
    if kind in ("task_failure", "task_retry"):
        exception = context.get("exception")
        if exception is not None:
            # An exception raised without a message still says what it was.
            error = (str(exception) or type(exception).__name__)[:ERROR_LIMIT]
    return {
        "task_id": str(task_id),
        "map_index": map_index if isinstance(map_index, int) else -1,
        "try_number": try_number if isinstance(try_number, int) else 0,
        "state": _text(_attr(ti, "state")) or _KIND_STATES.get(kind),
        "start_date": _iso(_attr(ti, "start_date")),
        "end_date": _iso(_attr(ti, "end_date")),
        "error": error,
    }


def _json_default(value: Any) -> Any:
    """Values JSON lacks (in a conf pickled by Airflow 2, or a payload) as their plain form."""
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)


def encode(body: Mapping[str, Any]) -> bytes:
    """The exact bytes sent (and signed) for an event body."""
    return json.dumps(body, default=_json_default, separators=(",", ":")).encode("utf-8")


# --- configuration ---------------------------------------------------------------------------


class ConfigurationError(Exception):
    """The destination is configured but unusable (the message never holds the secret)."""


@dataclass(frozen=True)
class Destination:
    """Where and how events go: an HTTP URL, or an SQS queue / SNS topic for the envelope."""

    source: str  # named in warnings
    secret: str = field(repr=False)
    url: str | None = None
    environment: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    sqs_queue_url: str | None = None
    sns_topic_arn: str | None = None
    region_name: str | None = None


@dataclass(frozen=True)
class _Connection:
    """The fields of an Airflow connection this module reads."""

    conn_type: str | None = None
    host: str | None = None
    schema: str | None = None
    port: int | None = None
    password: str | None = field(default=None, repr=False)
    extra: Mapping[str, Any] = field(default_factory=dict)


def resolve_destination() -> Destination | None:
    """The configured destination, or None when nothing is configured (ConfigurationError if broken)."""
    connection = _airflow_connection() or _env_connection()
    if connection is not None:
        return _from_connection(connection)
    return _from_environment()


@contextmanager
def _quiet(*names: str) -> Iterator[None]:
    """Drop the records below WARNING of these loggers meanwhile (Airflow 2 logs every look-up)."""

    def below_warning(record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING

    loggers = [logging.getLogger(name) for name in names]
    for logger in loggers:
        logger.addFilter(below_warning)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeFilter(below_warning)


def _base_hook() -> Any:
    """Airflow's BaseHook (3: the task SDK's, 2: airflow.hooks.base), or None outside Airflow."""
    for module in ("airflow.sdk", "airflow.hooks.base"):
        try:
            return importlib.import_module(module).BaseHook
        except (ImportError, AttributeError):
            pass
    return None


def _airflow_connection() -> _Connection | None:
    """The connection as Airflow's own API finds it (any secrets backend), or None.

    None also where the look-up fails, e.g. a DAG-level callback whose process cannot
    reach the API server: the environment variable is read directly then.
    """
    hook = _base_hook()
    if hook is None:
        return None
    with _quiet("airflow.hooks.base", "airflow.models.connection", "airflow.sdk.bases.hook"):
        try:
            conn = hook.get_connection(CONNECTION_ID)
        except Exception as exc:  # not defined (or unreachable): the fallbacks decide
            log.debug("Airflow has no connection %r for events (%s)", CONNECTION_ID, type(exc).__name__)
            return None
        extra = _attr(conn, "extra_dejson")
    return _Connection(
        conn_type=_attr(conn, "conn_type"),
        host=_attr(conn, "host"),
        schema=_attr(conn, "schema"),
        port=_attr(conn, "port"),
        password=_attr(conn, "password"),
        extra=extra if isinstance(extra, Mapping) else {},
    )


def _env_connection() -> _Connection | None:
    """``AIRFLOW_CONN_DJANGO_AIRFLOW_CLIENT`` parsed as Airflow would (JSON or URI), or None if unset."""
    value = os.environ.get(CONNECTION_ENV, "").strip()
    if not value:
        return None
    if value.startswith("{"):
        return _json_connection(value)
    return _uri_connection(value)


def _extra(value: Any) -> Mapping[str, Any]:
    if value in (None, ""):
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise ConfigurationError(f"{CONNECTION_ENV}: the extra is not JSON") from None
    if not isinstance(value, Mapping):
        raise ConfigurationError(f"{CONNECTION_ENV}: the extra is not a JSON object")
    return value


def _json_connection(value: str) -> _Connection:
    try:
        fields = json.loads(value)
    except ValueError:
        raise ConfigurationError(f"{CONNECTION_ENV} starts with '{{' but is not JSON") from None
    if not isinstance(fields, dict):
        raise ConfigurationError(f"{CONNECTION_ENV} is not a JSON object")
    port = fields.get("port")
    try:
        port = int(port) if port not in (None, "") else None
    except (TypeError, ValueError):
        raise ConfigurationError(f"{CONNECTION_ENV}: the port is not a number") from None
    return _Connection(
        conn_type=fields.get("conn_type"),
        host=fields.get("host"),
        schema=fields.get("schema"),
        port=port,
        password=fields.get("password"),
        extra=_extra(fields.get("extra")),
    )


def _uri_connection(value: str) -> _Connection:
    # Airflow's URI form: conn-type://login:password@host:port/schema?extra, where host may
    # carry its own protocol (conn-type://https://host...).
    conn_type, separator, rest = value.partition("://")
    if not separator:
        raise ConfigurationError(f"{CONNECTION_ENV} is neither JSON nor a URI")
    try:
        if "://" in rest:
            parts = urllib.parse.urlsplit(rest)
            protocol: str | None = parts.scheme
        else:
            parts = urllib.parse.urlsplit("//" + rest)
            protocol = None
        port = parts.port
    except ValueError:
        raise ConfigurationError(f"{CONNECTION_ENV} is not a valid URI") from None
    host = parts.hostname
    if host and protocol:
        host = f"{protocol}://{host}"
    query = dict(urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
    extra = _extra(query["__extra__"]) if "__extra__" in query else query
    return _Connection(
        conn_type=conn_type.replace("-", "_"),
        host=host,
        schema=urllib.parse.unquote(parts.path[1:]) or None,
        port=port,
        password=urllib.parse.unquote(parts.password) if parts.password else None,
        extra=extra,
    )


def _endpoint(connection: _Connection) -> str | None:
    """The URL events are posted to: the host when it is a URL, else built from the connection's parts."""
    host = (connection.host or "").strip()
    if not host:
        return None
    if "://" in host:
        # A full URL; the port and schema fields still fill in what it leaves out.
        parts = urllib.parse.urlsplit(host)
        netloc, path = parts.netloc, parts.path
        if connection.port and parts.port is None:
            netloc = f"{netloc}:{connection.port}"
        if connection.schema and path in ("", "/"):
            path = "/" + connection.schema.lstrip("/")
        return urllib.parse.urlunsplit((parts.scheme, netloc, path or "/", parts.query, ""))
    scheme = connection.conn_type if connection.conn_type in ("http", "https") else "https"
    netloc = f"{host}:{connection.port}" if connection.port else host
    return f"{scheme}://{netloc}/{(connection.schema or '').lstrip('/')}"


def _timeout(value: Any, where: str) -> float:
    if value in (None, ""):
        return DEFAULT_TIMEOUT
    try:
        timeout = float(value)
    except (TypeError, ValueError):
        raise ConfigurationError(f"{where}: timeout {value!r} is not a number of seconds") from None
    if not 0 < timeout <= 300:
        raise ConfigurationError(f"{where}: timeout must be between 0 and 300 seconds (got {value!r})")
    return timeout


def _optional(value: Any) -> str | None:
    """A setting's text, None when unset or blank."""
    if value is None:
        return None
    return str(value).strip() or None


def _destination(
    source: str,
    *,
    url: str | None,
    secret: str | None,
    environment: Any,
    timeout: float,
    sqs_queue_url: Any,
    sns_topic_arn: Any,
    region_name: Any,
) -> Destination:
    if not secret:
        raise ConfigurationError(f"{source} has no shared secret")
    sqs, sns = _optional(sqs_queue_url), _optional(sns_topic_arn)
    if sqs and sns:
        raise ConfigurationError(f"{source} sets both an SQS queue and an SNS topic; set one")
    if not (sqs or sns):
        if not url:
            raise ConfigurationError(f"{source} has no URL to post events to")
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigurationError(f"{source}: the events URL must be http(s)://host/path")
    return Destination(
        source=source,
        secret=secret,
        url=url,
        environment=_optional(environment),
        timeout=timeout,
        sqs_queue_url=sqs,
        sns_topic_arn=sns,
        region_name=_optional(region_name),
    )


def _from_connection(connection: _Connection) -> Destination:
    source = f"the Airflow connection {CONNECTION_ID!r}"
    extra = connection.extra
    return _destination(
        source,
        url=_endpoint(connection),
        secret=connection.password,
        environment=extra.get("environment"),
        timeout=_timeout(extra.get("timeout"), source),
        sqs_queue_url=extra.get("sqs_queue_url"),
        sns_topic_arn=extra.get("sns_topic_arn"),
        region_name=extra.get("region_name"),
    )


def _from_environment() -> Destination | None:
    env = os.environ
    url = env.get(URL_ENV, "").strip()
    sqs, sns = env.get(SQS_ENV, "").strip(), env.get(SNS_ENV, "").strip()
    secret = env.get(SECRET_ENV, "")
    if not (url or sqs or sns or secret):
        return None
    return _destination(
        "the AIRFLOW_CLIENT_EVENTS_* environment variables",
        url=url or None,
        secret=secret,
        environment=env.get(ENVIRONMENT_ENV),
        timeout=_timeout(env.get(TIMEOUT_ENV), TIMEOUT_ENV),
        sqs_queue_url=sqs,
        sns_topic_arn=sns,
        region_name=env.get(REGION_ENV),
    )


# --- delivery --------------------------------------------------------------------------------


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is an error: urllib would repeat a POST as a GET without its body."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirect)


def _redacted(text: str, secret: str) -> str:
    return text.replace(secret, "***") if secret else text


def _problem(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code}"
    if isinstance(exc, urllib.error.URLError):
        return f"cannot connect ({exc.reason})"
    return f"{type(exc).__name__}: {exc}"


def _post(destination: Destination, body: bytes, describe: str) -> bool:
    assert destination.url is not None
    problem = ""
    for attempt, delay in enumerate((0.0, *BACKOFF), start=1):
        if delay:
            sleep(delay)
        timestamp = str(int(time.time()))
        request = urllib.request.Request(  # noqa: S310 (the URL was checked to be http(s))
            destination.url,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "User-Agent": "django-airflow-client-callbacks",
                TIMESTAMP_HEADER: timestamp,
                SIGNATURE_HEADER: signature(destination.secret, timestamp, body),
            },
        )
        try:
            with _opener.open(request, timeout=destination.timeout) as response:
                response.read(65536)  # a reply is not needed, but reading lets the server finish cleanly
            return True
        except urllib.error.HTTPError as exc:
            exc.close()
            problem = _problem(exc)
            if exc.code != 429 and exc.code < 500:  # the server said no: asking again changes nothing
                log.warning(
                    "%s not sent: %s answered %s (not retried)",
                    describe,
                    destination.url,
                    _redacted(problem, destination.secret),
                )
                return False
        except (OSError, ValueError, http.client.HTTPException) as exc:  # refused, reset, timed out, garbled
            problem = _problem(exc)
        log.debug("%s: attempt %d failed: %s", describe, attempt, _redacted(problem, destination.secret))
    log.warning(
        "%s not sent to %s after %d attempts: %s",
        describe,
        destination.url,
        len(BACKOFF) + 1,
        _redacted(problem, destination.secret),
    )
    return False


def _boto3_client(service: Literal["sqs", "sns"], destination: Destination) -> Any:
    import boto3  # only where events go through AWS
    from botocore.config import Config

    # The same short deadline as HTTP; botocore retries by itself.
    config = Config(
        connect_timeout=destination.timeout,
        read_timeout=destination.timeout,
        retries={"total_max_attempts": 3, "mode": "standard"},
    )
    return boto3.client(service, region_name=destination.region_name, config=config)


def envelope(secret: str, body: bytes, timestamp: str | None = None) -> str:
    """The SQS/SNS message: the signed body as a JSON string beside its timestamp and signature."""
    timestamp = timestamp or str(int(time.time()))
    return json.dumps(
        {
            "timestamp": timestamp,
            "signature": signature(secret, timestamp, body),
            "body": body.decode("utf-8"),
        }
    )


def _publish(destination: Destination, body: bytes, describe: str) -> bool:
    message = envelope(destination.secret, body)
    try:
        if destination.sqs_queue_url:
            _boto3_client("sqs", destination).send_message(
                QueueUrl=destination.sqs_queue_url, MessageBody=message
            )
        else:
            _boto3_client("sns", destination).publish(TopicArn=destination.sns_topic_arn, Message=message)
    except ImportError:
        log.warning("%s not sent: boto3 is not installed in this Airflow (needed for SQS/SNS)", describe)
        return False
    except Exception as exc:  # credentials, permissions, network: the task goes on
        target = destination.sqs_queue_url or destination.sns_topic_arn
        log.warning("%s not sent to %s: %s", describe, target, _redacted(_problem(exc), destination.secret))
        return False
    return True


def send_event(context: Mapping[str, Any], kind: str, payload: Mapping[str, Any] | None = None) -> bool:
    """Send an event of ``kind`` (a JSON object ``payload`` optional) for the run in ``context``.

    From a task: ``send_event(context, "pages.fetched", {"count": 500})`` with the task's
    context (``get_current_context()``, or ``**context`` of a ``@task``). True when the
    event was delivered; never raises: a problem is logged as one warning.
    """
    describe = f"event {kind!r}"
    secret = ""
    try:
        destination = resolve_destination()
        if destination is None:
            log.warning(
                "events not sent: not configured (set the Airflow connection %r, or %s and %s)",
                CONNECTION_ID,
                URL_ENV,
                SECRET_ENV,
            )
            return False
        secret = destination.secret
        event = build_event(context, kind, payload, environment=destination.environment)
        describe = f"event {kind!r} of {event['run']['dag_id']} {event['run']['run_id']}"
        body = encode(event)
        if destination.sqs_queue_url or destination.sns_topic_arn:
            return _publish(destination, body, describe)
        return _post(destination, body, describe)
    except Exception as exc:  # a callback must never fail the task or Airflow's callback loop
        log.warning("%s not sent: %s", describe, _redacted(f"{exc}", secret) or type(exc).__name__)
        return False


# --- the callbacks ---------------------------------------------------------------------------


def on_dag_success(context: Mapping[str, Any]) -> None:
    """DAG ``on_success_callback``: the run succeeded."""
    send_event(context, "dag_success")


def on_dag_failure(context: Mapping[str, Any]) -> None:
    """DAG ``on_failure_callback``: the run failed."""
    send_event(context, "dag_failure")


def on_task_start(context: Mapping[str, Any]) -> None:
    """Task ``on_execute_callback``: a task (try) starts."""
    send_event(context, "task_start")


def on_task_success(context: Mapping[str, Any]) -> None:
    """Task ``on_success_callback``."""
    send_event(context, "task_success")


def on_task_failure(context: Mapping[str, Any]) -> None:
    """Task ``on_failure_callback``: the task failed for good (its error is sent)."""
    send_event(context, "task_failure")


def on_task_retry(context: Mapping[str, Any]) -> None:
    """Task ``on_retry_callback``: the try failed and the task will be tried again."""
    send_event(context, "task_retry")
