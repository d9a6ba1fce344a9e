"""Amazon MWAA: Airflow's REST API through boto3's ``mwaa.invoke_rest_api`` (IAM auth).

Options of the environment entry: ``ENV_NAME`` (required), ``REGION`` (else the
session's default), ``SESSION_FACTORY`` (dotted path to a callable returning a
``boto3.Session``; else ``boto3.Session()``), ``UI_URL`` (the webserver URL that
links point to), ``API_VERSION`` ("auto", "v1" for Airflow 2, "v2" for Airflow 3),
``TIMEOUT`` (seconds per call) and ``RETRIES`` (extra attempts for reads).

The endpoints are those of :class:`.api.ApiTransport`, shared with the REST
transport. Where the 64-character path cap of ``invoke_rest_api`` forbids them,
this transport uses Airflow's batch endpoints, whose paths are fixed, and
clears a run's tasks through ``/dags/{dag_id}/clearTaskInstances``.

boto3 is imported on first use, so the package works without the ``mwaa`` extra
until an environment actually uses this transport.
"""

from __future__ import annotations

import importlib.util
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from django.core import checks
from django.utils.module_loading import import_string

from airflow_client.exceptions import (
    AirflowError,
    AirflowTimeout,
    AirflowUnavailable,
    AuthenticationFailed,
    BadRequest,
    BadResponse,
    ConfigurationError,
    NotFound,
)
from airflow_client.transports import payloads
from airflow_client.transports.api import ApiTransport, configured_version
from airflow_client.transports.base import (
    check_error,
    option_retries,
    option_text,
    option_timeout,
)
from airflow_client.transports.retries import with_retries

if TYPE_CHECKING:
    from mypy_boto3_mwaa import MWAAClient

__all__ = ["MAX_PATH_LENGTH", "MwaaTransport"]

#: InvokeRestApi rejects a ``Path`` longer than this (botocore's MWAA model).
MAX_PATH_LENGTH = 64

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


class MwaaTransport(ApiTransport):
    # The 64-character Path cap makes run ids the scarce resource. get_run's
    # "/dags/{dag_id}/dagRuns/{run_id}" has 15 fixed characters: a 24-character
    # run id leaves 25 for the dag id. (Our run ids need no escaping; an escaped
    # ":" or "+" takes three characters.) Task instances go through the batch
    # endpoint, whose path is fixed; log paths also hold the task id and only
    # fit short ids. clear_run goes through clearTaskInstances, whose path holds
    # no run id (DAG ids up to 39 characters fit), then reads the run back.
    max_run_id_length: ClassVar[int] = 24
    clears_through_task_instances: ClassVar[bool] = True
    # MWAA log requests have always named map_index; -1 means "not mapped" to
    # Airflow, so this is the same request as REST's without it.
    sends_default_map_index: ClassVar[bool] = True

    #: Seconds before the first retry of a read (doubled each time); tests set 0.
    retry_delay: ClassVar[float] = 0.5

    @classmethod
    def check(cls, alias: str, options: Mapping[str, Any]) -> list[checks.CheckMessage]:
        where = f"AIRFLOW_ENVIRONMENTS[{alias!r}]"
        errors = super().check(alias, options)
        if importlib.util.find_spec("boto3") is None:
            errors.append(
                check_error(
                    8,
                    f"{where} uses the 'mwaa' transport but boto3 is not installed.",
                    "pip install 'django-airflow-client[mwaa]'",
                )
            )
        if not options.get("ENV_NAME"):
            errors.append(
                check_error(
                    9,
                    f"{where}['ENV_NAME'] is required for the 'mwaa' transport.",
                    "The MWAA environment's name.",
                )
            )
        return errors

    def __init__(self, alias: str, options: Mapping[str, Any]) -> None:
        super().__init__(alias, options)
        self.env_name = option_text(options, "ENV_NAME")
        if not self.env_name:
            raise ConfigurationError(f"Airflow environment {alias!r} uses MWAA but sets no ENV_NAME.")
        self._version: str | None = configured_version(alias, options)
        #: how to wait between attempts of a read.
        self.sleep: Callable[[float], None] = time.sleep
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
                factory_path = option_text(self.options, "SESSION_FACTORY")
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
                timeout = option_timeout(self.options)
                # boto3 must not retry on its own: a retried trigger could start a run twice.
                # Reads are retried by _call, which knows which calls are safe to repeat.
                config = botocore.config.Config(
                    connect_timeout=timeout, read_timeout=timeout, retries={"total_max_attempts": 1}
                )
                try:
                    self._client_instance = session.client(
                        "mwaa", region_name=option_text(self.options, "REGION") or None, config=config
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
        method: str,
        path: str,
        query: Mapping[str, Any] | None = None,
        body: Mapping[str, Any] | None = None,
        *,
        read: bool | None = None,
        retries: int | None = None,
    ) -> Any:
        """Airflow's JSON answer to one request, or the matching AirflowError.

        Reads (GETs, and POSTs with ``read=True``) are tried ``retries`` more
        times (default: RETRIES) while MWAA or Airflow is unavailable; writes never are.
        """
        self._check_path(path)
        client = self._client()
        request: dict[str, Any] = {"Name": self.env_name, "Path": path, "Method": method}
        if query:
            request["QueryParameters"] = dict(query)
        if body is not None:
            request["Body"] = dict(body)
        if retries is None:
            retries = option_retries(self.options)

        def attempt() -> Any:
            try:
                response = client.invoke_rest_api(**request)
            except RecursionError as exc:  # botocore decoding an answer nested too deeply
                raise BadResponse("Airflow answered with JSON nested too deeply to read.") from exc
            except Exception as exc:
                error = self._translate(exc)
                if error is None:
                    raise
                raise error from exc
            status = response.get("RestApiStatusCode", 200)
            if not isinstance(status, int):
                raise BadResponse(f"MWAA answered with a status that is not a number: {status!r}"[:300])
            if status >= 400:  # InvokeRestApi raises for these; be safe if it ever does not
                raise payloads.error_for_status(status, response.get("RestApiResponse"))
            return response.get("RestApiResponse")

        return with_retries(
            attempt,
            read=method == "GET" if read is None else read,
            retries=retries,
            pause=self.retry_delay,
            sleep=self.sleep,
        )

    def _translate(self, exc: Exception) -> AirflowError | None:
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
                return payloads.error_for_status(status, body)
            if code in _AUTH_CODES:
                return AuthenticationFailed(
                    f"AWS refused the call to MWAA environment {self.env_name!r}: {message}",
                    body=message,
                )
            if code == "ResourceNotFoundException":
                return NotFound(
                    f"MWAA environment {self.env_name!r} not found in this account/region: {message}",
                    body=message,
                )
            if code == "ValidationException":
                return BadRequest(f"MWAA rejected the request: {message}", body=message)
            cls = AirflowUnavailable if code in _UNAVAILABLE_CODES else BadResponse
            return cls(f"MWAA answered {code}: {message}", body=message)
        credentials_errors = (
            bce.NoCredentialsError,
            bce.PartialCredentialsError,
            bce.CredentialRetrievalError,
            bce.TokenRetrievalError,
            bce.SSOError,
        )
        if isinstance(exc, credentials_errors):
            return AuthenticationFailed(
                f"There are no usable AWS credentials for MWAA environment {self.env_name!r} ({exc}). "
                "Configure them for boto3 (environment, profile or role) or set SESSION_FACTORY."
            )
        if isinstance(exc, (bce.ConnectTimeoutError, bce.ReadTimeoutError)):
            return AirflowTimeout(f"MWAA did not answer in time ({exc}).")
        if isinstance(exc, bce.ParamValidationError):
            return BadRequest(f"MWAA rejected the request: {exc}")
        if isinstance(exc, bce.BotoCoreError):  # connection errors and the like
            return AirflowUnavailable(f"Cannot reach MWAA ({exc}).")
        return None

    # --- the Airflow version ---------------------------------------------------------------

    def _detect(self, retries: int | None = None) -> str:
        """Ask Airflow its version.

        MWAA maps the relative path onto /api/v1 or /api/v2 itself, so "/version"
        works on both. (mwaa.get_environment also tells the version but needs
        an IAM permission beyond airflow:InvokeRestApi.)
        """
        data = self._call("GET", "/version", retries=retries)
        text = data.get("version") if isinstance(data, Mapping) else None
        if not isinstance(text, str):
            raise BadResponse("Airflow sent a version answer without 'version'.", body=data)
        return text

    def api_version(self, *, retries: int | None = None) -> str:
        """ "v1" or "v2": the configured API_VERSION, else detected once (one request)."""
        if self._version is None:
            airflow_version = self._detect(retries)
            with self._lock:
                self._version = payloads.version_from_string(airflow_version)
        return self._version

    @property
    def known_api_version(self) -> str | None:
        return self._version

    # --- task instances ---------------------------------------------------------------------

    def _task_instance_page(self, dag_id: str, run_id: str, offset: int, size: int) -> Any:
        # The batch endpoint keeps the path short whatever the ids (see max_run_id_length).
        body = {"dag_ids": [dag_id], "dag_run_ids": [run_id], "page_offset": offset, "page_limit": size}
        return self._call("POST", "/dags/~/dagRuns/~/taskInstances/list", body=body)
