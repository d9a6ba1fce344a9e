"""Amazon MWAA: Airflow's REST API through boto3's ``mwaa.invoke_rest_api`` (IAM auth).

Options of the environment entry: ``ENV_NAME`` (required), ``REGION`` (else the
session's default), ``SESSION_FACTORY`` (dotted path to a callable returning a
``boto3.Session``; else ``boto3.Session()``), ``UI_URL`` (the webserver URL that
links point to), ``API_VERSION`` ("auto", "v1" for Airflow 2, "v2" for Airflow 3),
``TIMEOUT`` (seconds per call) and ``RETRIES`` (extra attempts for reads).

boto3 is imported on first use, so the package works without the ``mwaa`` extra
until an environment actually uses this transport.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from django.utils.module_loading import import_string

from airflow_client.exceptions import (
    AirflowError,
    AirflowTimeout,
    AirflowUnavailable,
    AuthenticationFailed,
    BadRequest,
    BadResponse,
    ConfigurationError,
    DagPaused,
    NotFound,
)
from airflow_client.transports import payloads
from airflow_client.transports.base import (
    Capabilities,
    Dag,
    DagRun,
    Health,
    LogChunk,
    RunQuery,
    TaskInstance,
    Transport,
)
from airflow_client.transports.payloads import path_segment as seg

if TYPE_CHECKING:
    from mypy_boto3_mwaa import MWAAClient

__all__ = ["MAX_PATH_LENGTH", "MwaaTransport"]

Method = Literal["GET", "POST", "PATCH"]

#: InvokeRestApi rejects a ``Path`` longer than this (botocore's MWAA model).
MAX_PATH_LENGTH = 64
#: Airflow caps pages at 100 by default; asking for more is silently cut.
PAGE_SIZE = 100

# AWS error codes (other than the two RestApi* ones) and what they mean to a caller.
_AUTH_CODES = frozenset(
    {
        "AccessDeniedException",
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "ExpiredTokenException",
        "ExpiredToken",
    }
)
_UNAVAILABLE_CODES = frozenset({"InternalServerException", "ThrottlingException", "ServiceUnavailable"})


class MwaaTransport(Transport):
    # The 64-character Path cap makes run ids the scarce resource. The longest
    # path holding one that we send is "/dags/{dag_id}/dagRuns/{run_id}/clear"
    # (21 fixed characters): a 24-character run id leaves 19 for the dag id
    # there and 25 for get_run. Task instances go through the batch endpoint,
    # whose path is fixed; log paths also hold the task id and only fit short ids.
    max_run_id_length: ClassVar[int] = 24

    #: Seconds before the first retry of a read (doubled each time); tests set 0.
    retry_delay: ClassVar[float] = 0.5

    def __init__(self, alias: str, options: Mapping[str, Any]) -> None:
        super().__init__(alias, options)
        self.env_name = str(options.get("ENV_NAME") or "")
        if not self.env_name:
            raise ConfigurationError(f"Airflow environment {alias!r} uses MWAA but sets no ENV_NAME.")
        configured = str(options.get("API_VERSION") or "auto")
        if configured not in (*payloads.API_VERSIONS, "auto"):
            raise ConfigurationError(
                f"API_VERSION of Airflow environment {alias!r} must be 'auto', 'v1' or 'v2', not {configured!r}."
            )
        self.ui_url = str(options.get("UI_URL") or "")
        self._configured_version = None if configured == "auto" else configured
        self._version: str | None = self._configured_version
        self._airflow_version: str | None = None
        self._lock = threading.Lock()
        self._client_instance: MWAAClient | None = None
        self._botocore: Any = None  # botocore.exceptions, imported with boto3

    # --- the boto3 client ------------------------------------------------------------------

    def _client(self) -> MWAAClient:
        """The MWAA client, created on first use (boto3 sessions are not thread-safe; clients are)."""
        with self._lock:
            if self._client_instance is None:
                try:
                    import boto3
                    import botocore.config
                    import botocore.exceptions
                except ImportError as exc:
                    raise ConfigurationError(
                        f"Airflow environment {self.alias!r} uses MWAA, which needs boto3: "
                        "pip install 'django-airflow-client[mwaa]'."
                    ) from exc
                factory_path = str(self.options.get("SESSION_FACTORY") or "")
                if factory_path:
                    try:
                        factory = import_string(factory_path)
                    except ImportError as exc:
                        raise ConfigurationError(
                            f"Cannot import SESSION_FACTORY {factory_path!r}: {exc}"
                        ) from exc
                    session = factory()
                else:
                    session = boto3.Session()
                timeout = float(self.options.get("TIMEOUT") or 10.0)
                # boto3 must not retry on its own: a retried trigger could start a run twice.
                # Reads are retried by _call, which knows which calls are safe to repeat.
                config = botocore.config.Config(
                    connect_timeout=timeout, read_timeout=timeout, retries={"total_max_attempts": 1}
                )
                try:
                    self._client_instance = session.client(
                        "mwaa", region_name=str(self.options.get("REGION") or "") or None, config=config
                    )
                except botocore.exceptions.NoRegionError as exc:
                    raise ConfigurationError(
                        f"Airflow environment {self.alias!r}: set REGION or an AWS default region."
                    ) from exc
                self._botocore = botocore.exceptions
            return self._client_instance

    def close(self) -> None:
        with self._lock:
            if self._client_instance is not None:
                self._client_instance.close()
                self._client_instance = None

    # --- calling Airflow -------------------------------------------------------------------

    def _check_path(self, path: str) -> None:
        if len(path) > MAX_PATH_LENGTH:
            raise BadRequest(
                f"MWAA cannot call {path!r}: the path is {len(path)} characters long and MWAA "
                f"accepts at most {MAX_PATH_LENGTH}. Use shorter DAG, task or run ids."
            )

    def _call(
        self,
        method: Method,
        path: str,
        *,
        query: Mapping[str, Any] | None = None,
        body: Mapping[str, Any] | None = None,
        action: str,
    ) -> Any:
        """Airflow's JSON answer to one request, or the matching AirflowError."""
        self._check_path(path)
        client = self._client()
        request: dict[str, Any] = {"Name": self.env_name, "Path": path, "Method": method}
        if query:
            request["QueryParameters"] = dict(query)
        if body is not None:
            request["Body"] = dict(body)
        retries = int(self.options.get("RETRIES") or 0) if method == "GET" else 0
        for attempt in range(retries + 1):
            try:
                response = client.invoke_rest_api(**request)
            except Exception as exc:
                error = self._translate(exc, action)
                if error is None:
                    raise
                # Only reads are repeated, and only when Airflow may answer next time.
                if attempt < retries and type(error) is AirflowUnavailable:
                    time.sleep(self.retry_delay * 2**attempt)
                    continue
                raise error from exc
            status = response.get("RestApiStatusCode", 200)
            if status >= 400:  # InvokeRestApi raises for these; be safe if it ever does not
                raise payloads.error_for_status(status, response.get("RestApiResponse"), action=action)
            return response.get("RestApiResponse")
        raise AssertionError("unreachable")  # pragma: no cover

    def _translate(self, exc: Exception, action: str) -> AirflowError | None:
        """The AirflowError for a boto3/botocore exception (None: not ours to translate)."""
        bce = self._botocore
        if isinstance(exc, bce.ClientError):
            response = exc.response
            code = response.get("Error", {}).get("Code", "")
            message = response.get("Error", {}).get("Message", "") or code
            if code in ("RestApiClientException", "RestApiServerException"):
                status = response.get("RestApiStatusCode")
                body = response.get("RestApiResponse")
                if not isinstance(status, int):
                    status = 500 if code == "RestApiServerException" else 400
                return payloads.error_for_status(status, body, action=action)
            if code in _AUTH_CODES:
                return AuthenticationFailed(
                    f"{action}: AWS refused the call to MWAA environment {self.env_name!r}: {message}",
                    body=message,
                )
            if code == "ResourceNotFoundException":
                return NotFound(
                    f"{action}: MWAA environment {self.env_name!r} not found in this account/region: {message}",
                    body=message,
                )
            if code == "ValidationException":
                return BadRequest(f"{action}: MWAA rejected the request: {message}", body=message)
            cls = AirflowUnavailable if code in _UNAVAILABLE_CODES else BadResponse
            return cls(f"{action}: MWAA answered {code}: {message}", body=message)
        credentials_errors = (
            bce.NoCredentialsError,
            bce.PartialCredentialsError,
            bce.CredentialRetrievalError,
            bce.TokenRetrievalError,
            bce.SSOError,
        )
        if isinstance(exc, credentials_errors):
            return AuthenticationFailed(
                f"{action}: no usable AWS credentials for MWAA environment {self.env_name!r} ({exc}). "
                "Configure them for boto3 (environment, profile or role) or set SESSION_FACTORY."
            )
        if isinstance(exc, (bce.ConnectTimeoutError, bce.ReadTimeoutError)):
            return AirflowTimeout(f"{action}: MWAA did not answer in time ({exc}).")
        if isinstance(exc, bce.ParamValidationError):
            return BadRequest(f"{action}: {exc}")
        if isinstance(exc, bce.BotoCoreError):  # connection errors and the like
            return AirflowUnavailable(f"{action}: cannot reach MWAA ({exc}).")
        return None

    # --- the Airflow version ---------------------------------------------------------------

    def _detect(self) -> str:
        """Ask Airflow its version.

        MWAA maps the relative path onto /api/v1 or /api/v2 itself, so "/version"
        works on both. (mwaa.get_environment also tells the version but needs
        an IAM permission beyond airflow:InvokeRestApi.)
        """
        data = self._call("GET", "/version", action="read the Airflow version")
        text = data.get("version") if isinstance(data, Mapping) else None
        if not isinstance(text, str):
            raise BadResponse("Airflow sent a version answer without 'version'.", body=data)
        return text

    def api_version(self) -> str:
        """ "v1" or "v2": the configured API_VERSION, else detected once (one request)."""
        if self._version is None:
            airflow_version = self._detect()
            with self._lock:
                self._airflow_version = airflow_version
                self._version = payloads.version_from_string(airflow_version)
        return self._version

    def _link_version(self) -> str:
        # Links must not fail a page: when the version cannot be learnt now, use
        # Airflow 3's shapes (MWAA's newer line) and try again next time.
        try:
            return self.api_version()
        except AirflowError:
            return "v2"

    @property
    def capabilities(self) -> Capabilities:
        if self.api_version() == "v1":
            return Capabilities(batch_listing=True, updated_since_filter=True)
        return Capabilities(
            # conf_contains arrived in 3.2; only a detected version can prove it.
            conf_filter=_at_least(self._airflow_version, (3, 2)),
            batch_listing=True,
            updated_since_filter=True,
            structured_logs=True,
            run_after=True,
        )

    # --- DAGs and runs ---------------------------------------------------------------------

    def get_dag(self, dag_id: str) -> Dag:
        return payloads.parse_dag(self._call("GET", f"/dags/{seg(dag_id)}", action=f"read DAG {dag_id}"))

    def trigger(
        self,
        dag_id: str,
        *,
        run_id: str,
        conf: Mapping[str, Any],
        note: str | None = None,
        check_paused: bool = True,
    ) -> DagRun:
        version = self.api_version()
        # Airflow accepts runs of a paused DAG and leaves them queued: refuse instead.
        if check_paused and self.get_dag(dag_id).is_paused:
            raise DagPaused(f"DAG {dag_id!r} is paused in Airflow: unpause it before starting a run.")
        data = self._call(
            "POST",
            f"/dags/{seg(dag_id)}/dagRuns",
            body=payloads.trigger_body(run_id, conf, note, version),
            action=f"trigger {dag_id}",
        )
        return payloads.parse_dag_run(data, version)

    def get_run(self, dag_id: str, run_id: str) -> DagRun:
        version = self.api_version()
        data = self._call(
            "GET", f"/dags/{seg(dag_id)}/dagRuns/{seg(run_id)}", action=f"read run {dag_id}/{run_id}"
        )
        return payloads.parse_dag_run(data, version)

    def list_runs(self, query: RunQuery) -> Iterator[DagRun]:
        version = self.api_version()
        order_by = "-execution_date" if version == "v1" else "-run_after"
        conf_contains = query.conf_contains if self.capabilities.conf_filter else None
        if query.updated_since is None:
            # The batch endpoint takes lists in a JSON body: several DAGs and states at once.
            def fetch(offset: int, limit: int) -> Any:
                body: dict[str, Any] = {"page_offset": offset, "page_limit": limit, "order_by": order_by}
                if query.dag_ids:
                    body["dag_ids"] = list(query.dag_ids)
                if query.states:
                    body["states"] = list(query.states)
                if conf_contains:
                    body["conf_contains"] = conf_contains
                return self._call("POST", "/dags/~/dagRuns/list", body=body, action="list runs")

            yield from self._pages(fetch, query.limit, version)
            return

        # Only the GET listing filters on updated_at. Its lists would travel as query
        # parameters, whose encoding through MWAA is not documented: filter DAGs and
        # states here instead (an "updated since" window is small).
        dag_path = seg(query.dag_ids[0]) if len(query.dag_ids) == 1 else "~"
        params: dict[str, Any] = {"order_by": order_by, "updated_at_gte": _utc_text(query.updated_since)}
        if conf_contains:
            params["conf_contains"] = conf_contains

        def fetch_updated(offset: int, limit: int) -> Any:
            return self._call(
                "GET",
                f"/dags/{dag_path}/dagRuns",
                query={**params, "offset": offset, "limit": limit},
                action="list runs",
            )

        wanted_dags, wanted_states = set(query.dag_ids), set(query.states)
        count = 0
        for run in self._pages(fetch_updated, None, version):
            if (wanted_dags and run.dag_id not in wanted_dags) or (
                wanted_states and run.state not in wanted_states
            ):
                continue
            yield run
            count += 1
            if count >= query.limit:
                return

    def _pages(self, fetch: Callable[[int, int], Any], limit: int | None, version: str) -> Iterator[DagRun]:
        """Runs from successive pages until ``limit`` runs, an empty page or the total."""
        offset = 0
        while limit is None or offset < limit:
            size = PAGE_SIZE if limit is None else min(PAGE_SIZE, limit - offset)
            runs, total = payloads.parse_run_list(fetch(offset, size), version)
            yield from runs
            offset += len(runs)
            if not runs or offset >= total:
                return

    def clear_run(self, dag_id: str, run_id: str, *, only_failed: bool = False) -> DagRun:
        version = self.api_version()
        action = f"clear run {dag_id}/{run_id}"
        if version == "v1" and only_failed:
            # Airflow 2's run clear has no only_failed: clear the run's failed task instances.
            self._call(
                "POST",
                f"/dags/{seg(dag_id)}/clearTaskInstances",
                body={"dry_run": False, "only_failed": True, "dag_run_id": run_id, "reset_dag_runs": True},
                action=action,
            )
            return self.get_run(dag_id, run_id)
        body: dict[str, Any] = {"dry_run": False}  # both APIs default to a dry run
        if version == "v2":
            body["only_failed"] = only_failed
        data = self._call(
            "POST", f"/dags/{seg(dag_id)}/dagRuns/{seg(run_id)}/clear", body=body, action=action
        )
        return payloads.parse_dag_run(data, version)

    # --- task instances and logs -----------------------------------------------------------

    def task_instances(self, dag_id: str, run_id: str) -> list[TaskInstance]:
        # The batch endpoint keeps the path short whatever the ids (see max_run_id_length).
        found: list[TaskInstance] = []
        while True:
            data = self._call(
                "POST",
                "/dags/~/dagRuns/~/taskInstances/list",
                body={
                    "dag_ids": [dag_id],
                    "dag_run_ids": [run_id],
                    "page_offset": len(found),
                    "page_limit": PAGE_SIZE,
                },
                action=f"list task instances of {dag_id}/{run_id}",
            )
            page, total = payloads.parse_task_instances(data)
            found.extend(page)
            if not page or len(found) >= total:
                return found

    def task_log(
        self,
        dag_id: str,
        run_id: str,
        task_id: str,
        try_number: int,
        *,
        map_index: int = -1,
        continuation_token: str | None = None,
    ) -> LogChunk:
        version = self.api_version()
        query: dict[str, Any] = {"map_index": map_index}
        if continuation_token:
            query["token"] = continuation_token
        # MWAA only returns JSON: v1 content is a repr string, v2 structured events.
        data = self._call(
            "GET",
            f"/dags/{seg(dag_id)}/dagRuns/{seg(run_id)}/taskInstances/{seg(task_id)}/logs/{try_number}",
            query=query,
            action=f"read the log of {dag_id}/{run_id}/{task_id}",
        )
        return payloads.parse_log(data, version)

    # --- health and links ------------------------------------------------------------------

    def health(self) -> Health:
        """Never raises for Airflow errors: an unreachable Airflow is reported unhealthy."""
        try:
            version = self.api_version()
            airflow_version = self._airflow_version or self._detect()
            data = self._call(
                "GET", "/health" if version == "v1" else "/monitor/health", action="read Airflow's health"
            )
        except AirflowError as exc:
            return Health(healthy=False, version=self._airflow_version, detail={"error": str(exc)})
        return payloads.parse_health(data, airflow_version)

    def run_url(self, dag_id: str, run_id: str) -> str:
        return payloads.run_url(self.ui_url, dag_id, run_id, self._link_version())

    def log_url(
        self, dag_id: str, run_id: str, task_id: str, try_number: int | None = None, map_index: int = -1
    ) -> str:
        return payloads.log_url(
            self.ui_url,
            dag_id,
            run_id,
            task_id,
            self._link_version(),
            try_number=try_number,
            map_index=map_index,
        )


def _at_least(airflow_version: str | None, minimum: tuple[int, ...]) -> bool:
    if not airflow_version:
        return False
    parts: list[int] = []
    for piece in airflow_version.split(".")[: len(minimum)]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts) >= minimum


def _utc_text(value: datetime) -> str:
    """An aware datetime as UTC ISO text with "Z" (no "+" to be mangled in a query string)."""
    return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
