"""HTTP plumbing of the REST transport: one httpx client, credentials, retries, errors.

:class:`ApiSession` knows *how* to talk to one Airflow (which API version, which
credentials, when to retry); :mod:`.api` knows *what* to ask. One session is
shared by the threads of a web server, so the lazily created client, the API
version and the access token are guarded by one lock. Network I/O that sets
that state (version detection, token fetch) runs under the lock on purpose:
threads arriving meanwhile wait and reuse the result instead of asking again.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import functools
import json
import os
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, quote_plus

import certifi
import httpx
from django.views.decorators.debug import sensitive_variables

from airflow_client.exceptions import (
    AirflowError,
    AirflowTimeout,
    AirflowUnavailable,
    AuthenticationFailed,
    BadRequest,
    BadResponse,
    ConfigurationError,
)
from airflow_client.transports.api import configured_version
from airflow_client.transports.base import option_retries, option_text, option_timeout
from airflow_client.transports.payloads import error_for_status, loads, scrub
from airflow_client.transports.retries import NotSent, with_retries

__all__ = ["ApiSession"]

#: First pause between two attempts of a GET; doubled each time (0.2 s, 0.4 s, ...).
BACKOFF_SECONDS = 0.2
#: A fetched token is replaced this long before its ``exp`` (clock skew, slow requests).
TOKEN_MARGIN_SECONDS = 60.0
#: The largest answer read for anything but a log (a page of 100 runs with large confs fits);
#: a larger one is a BadResponse, read no further. Logs have AIRFLOW_MAX_LOG_BYTES.
MAX_ANSWER_BYTES = 32 * 1024 * 1024
#: An answer must arrive whole within this many TIMEOUTs (a server trickling its body).
READ_DEADLINE_TIMEOUTS = 3
#: Shorter credentials are not hidden in error texts (see ApiSession._secrets).
MIN_SECRET_LENGTH = 4
#: The most of an error body's text kept on the exception (a proxy's HTML page, say).
MAX_ERROR_TEXT = 10_000


class _Hidden(dict):  # type: ignore[type-arg]
    """Headers or a body holding credentials: sent as they are, never shown in a report."""

    def __repr__(self) -> str:
        return "{...credentials hidden...}"


class _Secret(str):
    """A credential: a str to httpx, stars in a traceback's variables (even with DEBUG)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "'********************'"


@dataclass(frozen=True)
class Answer:
    """Airflow's answer, read (up to a size limit) and closed."""

    status_code: int
    content: bytes
    #: the body was larger than the limit and ``content`` is its beginning.
    truncated: bool = False

    @property
    def is_success(self) -> bool:
        return 200 <= self.status_code < 300

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        """The decoded body; ValueError for anything that is not JSON (nesting too deep included)."""
        try:
            return loads(self.content)
        except RecursionError:
            raise ValueError("JSON nested too deeply") from None


def _jwt_expiry(token: str) -> float | None:
    """The ``exp`` claim of a JWT (read, never verified: only Airflow can verify it)."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError, binascii.Error):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    if isinstance(exp, bool) or not isinstance(exp, (int, float)):
        return None
    return float(exp)


@functools.lru_cache(maxsize=8)
def _ssl_context(verify: bool | str) -> ssl.SSLContext | bool:
    """The TLS setting for VERIFY, built once per process.

    Loading a CA bundle takes tens of milliseconds and transports are rebuilt
    whenever settings change, so contexts are shared (they are thread-safe).
    A path is a CA bundle (file) or a certificate folder, as for ``requests``;
    httpx deprecates passing it as ``verify`` itself.
    """
    if verify is False:
        return False
    if verify is True:
        # What httpx does for verify=True: the environment's bundle, else certifi's.
        if os.environ.get("SSL_CERT_FILE"):
            return ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"])
        if os.environ.get("SSL_CERT_DIR"):
            return ssl.create_default_context(capath=os.environ["SSL_CERT_DIR"])
        return ssl.create_default_context(cafile=certifi.where())
    if os.path.isdir(verify):
        return ssl.create_default_context(capath=verify)
    return ssl.create_default_context(cafile=verify)


def _body(response: Answer) -> Any:
    """An error answer's body: its JSON when it has some, else (the beginning of) its text."""
    try:
        return response.json()
    except ValueError:
        return response.text[:MAX_ERROR_TEXT]


def _retryable(status_code: int) -> bool:
    return status_code == 429 or status_code >= 500


class ApiSession:
    """One Airflow's REST API as JSON in, JSON out (or an AirflowError)."""

    def __init__(self, alias: str, options: Mapping[str, Any]) -> None:
        self.alias = alias
        # Options of the wrong type fall back to their defaults (the system checks report them).
        self.base_url = option_text(options, "BASE_URL").rstrip("/")
        self.timeout = option_timeout(options)
        self.retries = option_retries(options)
        verify = options.get("VERIFY", True)
        self._verify: bool | str = verify if isinstance(verify, (bool, str)) and verify != "" else True
        self._username = option_text(options, "USERNAME")
        self._password = option_text(options, "PASSWORD")
        self._static_token = option_text(options, "TOKEN")
        self._options = options
        #: how to wait between attempts; tests replace it to run instantly.
        self.sleep: Callable[[float], None] = time.sleep
        self._lock = threading.RLock()
        self._client: httpx.Client | None = None
        self._version: str | None = None
        # A wrong API_VERSION is raised by version(), at the first request (see there).
        with contextlib.suppress(ConfigurationError):
            self._version = configured_version(alias, options)
        self._token: str | None = None
        #: when to fetch a new token (epoch seconds); None: keep it until Airflow refuses it.
        self._token_renew_at: float | None = None

    # --- client --------------------------------------------------------------------------------

    def _http(self) -> httpx.Client:
        client = self._client
        if client is None:
            with self._lock:
                if self._client is None:
                    if not self.base_url:
                        raise ConfigurationError(f"Airflow environment {self.alias!r} has no BASE_URL.")
                    # httpx sends no Referer; Airflow 3 would record a run started with one
                    # as triggered from its UI. Redirects are not followed: a redirect means
                    # a wrong BASE_URL, better reported than silently re-sent.
                    try:
                        context = _ssl_context(self._verify)
                    except (OSError, ssl.SSLError) as exc:
                        raise ConfigurationError(
                            f"Airflow environment {self.alias!r}: cannot load VERIFY's CA bundle: {exc}"
                        ) from exc
                    self._client = httpx.Client(
                        timeout=self.timeout,
                        verify=context,
                        follow_redirects=False,
                        headers={"Accept": "application/json", "User-Agent": "django-airflow-client"},
                    )
                client = self._client
        return client

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    @sensitive_variables("kwargs")
    def _send(
        self,
        method: str,
        url: str,
        *,
        retries: int | None = None,
        action: str = "",
        max_bytes: int = 0,
        read: bool | None = None,
        **kwargs: Any,
    ) -> Answer:
        """One request, retried (see :mod:`.retries`) where that cannot do harm.

        Reads (GETs, and the POSTs that only list, ``read=True``) are retried on
        connection errors, 429 and 5xx; other requests only when the connection
        could not even be opened (Airflow never saw them). A read's last 429/5xx
        is raised (``action`` prefixes its message); other answers are returned,
        whatever their status.

        The body is streamed and read up to ``max_bytes`` (default
        MAX_ANSWER_BYTES): a longer one comes back ``truncated``. The whole
        answer must arrive within READ_DEADLINE_TIMEOUTS x TIMEOUT.
        """
        limit = max_bytes or MAX_ANSWER_BYTES
        is_read = method == "GET" if read is None else read

        @sensitive_variables("kwargs", "request")
        def attempt() -> Answer:
            client = self._http()
            try:
                request = client.build_request(method, url, **kwargs)
            except (httpx.InvalidURL, ValueError, UnicodeError) as exc:
                # e.g. a URL longer than httpx builds (a 70,000-character token).
                raise BadRequest(f"Cannot send this request to Airflow ({self.alias}): {exc}"[:500]) from exc
            try:
                response = client.send(request, stream=True)
                try:
                    answer = self._read(response, limit)
                finally:
                    response.close()
            except httpx.TimeoutException as exc:
                raise AirflowTimeout(
                    f"Airflow ({self.alias}) did not answer within {self.timeout:g} s."
                ) from exc
            except httpx.ConnectError as exc:
                raise NotSent(f"Cannot reach Airflow ({self.alias}): {exc}") from exc
            except httpx.HTTPError as exc:
                raise AirflowUnavailable(f"Lost the connection to Airflow ({self.alias}): {exc}") from exc
            if is_read and _retryable(answer.status_code):
                raise error_for_status(answer.status_code, _body(answer), action=action)
            return answer

        return with_retries(
            attempt,
            read=is_read,
            retries=self.retries if retries is None else retries,
            pause=BACKOFF_SECONDS,
            sleep=self.sleep,
        )

    def _read(self, response: httpx.Response, limit: int) -> Answer:
        """``response``'s body, up to ``limit`` bytes, within the read deadline."""
        deadline = time.monotonic() + READ_DEADLINE_TIMEOUTS * self.timeout
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_bytes():
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                return Answer(response.status_code, b"".join(chunks)[:limit], truncated=True)
            if time.monotonic() > deadline:
                raise AirflowTimeout(
                    f"Airflow ({self.alias}) did not finish its answer within "
                    f"{READ_DEADLINE_TIMEOUTS * self.timeout:g} s."
                )
        return Answer(response.status_code, b"".join(chunks))

    # --- secrets -------------------------------------------------------------------------------

    def _secrets(self) -> list[str]:
        """Every configured or fetched credential, as an error body could spell it."""
        values = [self._password, self._static_token, self._token or ""]
        if self._username and self._password:
            values.append(base64.b64encode(f"{self._username}:{self._password}".encode()).decode("ascii"))
        spelled: set[str] = set()
        for value in values:
            # Stars for every "t" of a 1-character TOKEN would hide everything else and
            # protect nothing: so short a credential is no secret.
            if len(value) >= MIN_SECRET_LENGTH:
                spelled |= {value, json.dumps(value)[1:-1], quote(value, safe=""), quote_plus(value)}
        return sorted(spelled, key=len, reverse=True)

    @contextlib.contextmanager
    def _no_secrets(self) -> Iterator[None]:
        """Every AirflowError raised inside, with any credential in it replaced by stars.

        Airflow can echo a request in an error (``Rejected request body: {...}``);
        the detail and body then travel to pages, stored rows and logs.
        """
        try:
            yield
        except AirflowError as exc:
            secrets = self._secrets()
            exc.detail = scrub(exc.detail, secrets)
            exc.args = tuple(scrub(arg, secrets) for arg in exc.args)
            exc.body = scrub(exc.body, secrets)
            raise

    # --- API version ---------------------------------------------------------------------------

    @property
    def known_version(self) -> str | None:
        """The API version when configured or already detected; never asks Airflow."""
        return self._version

    def version(self, *, retries: int | None = None) -> str:
        """ "v1" or "v2": from API_VERSION, or asked once of Airflow and remembered."""
        if self._version is not None:
            return self._version
        with self._no_secrets(), self._lock:
            if self._version is None:
                self._version = configured_version(self.alias, self._options) or self._detect(retries)
            return self._version

    def _detect(self, retries: int | None) -> str:
        # Both version endpoints answer without credentials. A 5xx or an unreachable
        # server tells nothing: raise (and ask again next time) rather than guess.
        statuses = []
        for version in ("v2", "v1"):
            response = self._send(
                "GET",
                f"{self.base_url}/api/{version}/version",
                retries=retries,
                action="Asking Airflow for its version",
            )
            if response.status_code == 200 and self._release(response) is not None:
                return version
            statuses.append(f"/api/{version}/version: HTTP {response.status_code}")
        raise BadResponse(
            f"No Airflow REST API answers at BASE_URL of environment {self.alias!r} "
            f"({', '.join(statuses)}). Check BASE_URL, or set API_VERSION.",
        )

    @staticmethod
    def _release(response: Answer) -> str | None:
        # A front end answering 200 with HTML for any path is not Airflow.
        try:
            data = response.json()
        except ValueError:
            return None
        release = data.get("version") if isinstance(data, dict) else None
        return release if isinstance(release, str) else None

    # --- credentials ---------------------------------------------------------------------------

    @property
    def _fetches_tokens(self) -> bool:
        return not self._static_token and bool(self._username) and self.version() == "v2"

    @sensitive_variables()
    def _credentials(self) -> tuple[dict[str, str], str | None]:
        """The Authorization header to send, and the fetched token it holds (if any)."""
        if self._static_token:
            return _Hidden(Authorization=f"Bearer {self._static_token}"), None
        if not self._username:
            return {}, None
        if self.version() == "v1":
            return _Hidden(
                Authorization="Basic "
                + base64.b64encode(f"{self._username}:{self._password}".encode()).decode("ascii")
            ), None
        token = self._current_token()
        return _Hidden(Authorization=f"Bearer {token}"), token

    def _current_token(self) -> str:
        with self._lock:
            renew_at = self._token_renew_at
            if self._token is None or (renew_at is not None and time.time() >= renew_at):
                self._token = self._fetch_token()
                expiry = _jwt_expiry(self._token)
                self._token_renew_at = None if expiry is None else expiry - TOKEN_MARGIN_SECONDS
            return self._token

    def _forget_token(self, token: str) -> None:
        with self._lock:
            # Another thread may have replaced it already: keep that one.
            if self._token == token:
                self._token = None

    @sensitive_variables()
    def _fetch_token(self) -> str:
        response = self._send(
            "POST",
            f"{self.base_url}/auth/token",
            json=_Hidden(username=self._username, password=self._password),
        )
        if not response.is_success:
            error = error_for_status(
                response.status_code, _body(response), action="Airflow refused to issue an API token"
            )
            if not isinstance(error, AirflowUnavailable):
                # Any refusal of the token request (401, 403, or a 400 "invalid credentials")
                # is about the credentials, whatever the status says.
                error = AuthenticationFailed(error.detail, status_code=error.status_code)
            error.body = None  # an echo of the request could hold the password
            raise error
        try:
            token = response.json().get("access_token")
        except (ValueError, AttributeError):
            token = None
        if not isinstance(token, str) or not token:
            raise BadResponse(
                "Airflow's /auth/token answer holds no access_token.", status_code=response.status_code
            )
        return _Secret(token)

    # --- requests ------------------------------------------------------------------------------

    @sensitive_variables("headers", "token", "_token", "kwargs")
    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        read: bool | None = None,
    ) -> Any:
        """Call ``/api/{version}{path}`` and return the decoded JSON answer.

        ``read``: whether the request only reads (retried like a GET); None: only a GET does.
        """
        with self._no_secrets():
            answer = self._answer(method, path, params=params, json=json, read=read)
            if answer.truncated:
                raise BadResponse(
                    f"Airflow's answer is larger than {MAX_ANSWER_BYTES} bytes: not read further.",
                    status_code=answer.status_code,
                )
            return self._decode(answer)

    def request_prefix(
        self, method: str, path: str, *, params: Mapping[str, Any] | None = None, max_bytes: int
    ) -> tuple[Any, bool]:
        """The decoded JSON answer and False, or, when it is larger than ``max_bytes``, the text
        of its first ``max_bytes`` (for the caller to read what it can) and True."""
        with self._no_secrets():
            answer = self._answer(method, path, params=params, max_bytes=max_bytes)
            if answer.truncated and answer.is_success:
                return answer.text, True
            return self._decode(answer), False

    @sensitive_variables("headers", "token", "_token", "kwargs")
    def _answer(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        max_bytes: int = 0,
        read: bool | None = None,
    ) -> Answer:
        url = f"{self.base_url}/api/{self.version()}{path}"
        kwargs: dict[str, Any] = {"params": params, "max_bytes": max_bytes, "read": read}
        if json is not None:
            kwargs["json"] = json
        headers, token = self._credentials()
        response = self._send(method, url, headers=headers, **kwargs)
        if response.status_code in (401, 403) and token is not None and self._fetches_tokens:
            # Expired or revoked before its exp: get a new token once and ask again.
            self._forget_token(token)
            headers, _token = self._credentials()
            response = self._send(method, url, headers=headers, **kwargs)
        return response

    @staticmethod
    def _decode(response: Answer) -> Any:
        if not response.is_success:
            raise error_for_status(response.status_code, _body(response))
        try:
            return response.json()
        except ValueError:
            raise BadResponse(
                "Airflow answered with something that is not JSON.",
                status_code=response.status_code,
                body=response.text[:1000],
            ) from None
