"""One family of exceptions: everything this package raises derives from AirflowClientError."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_client.models import JobRun, JobTrigger


class AirflowClientError(Exception):
    """Base of every error raised by airflow_client."""


class ConfigurationError(AirflowClientError):
    """A setting or an environment alias is wrong (system checks say which)."""


class AirflowDisabled(AirflowClientError):
    """Airflow is turned off on this site (``AIRFLOW_ENABLED = False``): nothing is sent to it."""

    def __init__(self, message: str = "") -> None:
        super().__init__(message or "Airflow is turned off on this site (AIRFLOW_ENABLED = False).")


class UnknownJob(AirflowClientError):
    """A dag_id or Job class that is not registered."""


class InvalidConf(AirflowClientError):
    """A run conf that is not a JSON object, cannot be serialised or is too large."""


class AirflowError(AirflowClientError):
    """Airflow answered with an error, or could not be asked.

    ``status_code`` and ``body`` hold Airflow's answer when there was one;
    ``detail`` is the readable reason extracted from it.
    """

    def __init__(
        self,
        detail: str,
        *,
        status_code: int | None = None,
        body: Any = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.status_code = status_code
        self.body = body


class AirflowUnavailable(AirflowError):
    """Airflow could not be reached, or failed on its side (5xx)."""


class AirflowTimeout(AirflowUnavailable):
    """Airflow did not answer within the configured timeout."""


class AuthenticationFailed(AirflowError):
    """Airflow refused the credentials (401) or the permission (403)."""


class NotFound(AirflowError):
    """The DAG, run or task instance does not exist in Airflow."""


class Conflict(AirflowError):
    """Airflow refused because the object exists already (409)."""


class BadRequest(AirflowError):
    """Airflow rejected the request as invalid (400 / 422)."""


class DagPaused(AirflowError):
    """The DAG is paused: a run triggered now would stay queued until unpaused."""


class BadResponse(AirflowError):
    """Airflow answered something this client cannot read."""


class TriggerFailed(AirflowClientError):
    """Airflow refused the trigger or could not be reached.

    ``job_trigger`` is the saved JobTrigger holding the request, the status code
    and Airflow's response; ``error`` the underlying AirflowError when there is one.
    """

    def __init__(self, message: str, *, job_trigger: JobTrigger, error: AirflowError | None = None):
        super().__init__(message)
        self.job_trigger = job_trigger
        self.error = error


class AlreadyRunning(AirflowClientError):
    """The Job does not allow concurrent runs and one is active for the record."""

    def __init__(self, message: str, *, job_run: JobRun):
        super().__init__(message)
        self.job_run = job_run


class TaskRunFailed(AirflowClientError):
    """A Django task's run on Airflow failed without an exception from the task itself.

    The class a task result's error names when the try was killed (a timeout, a
    lost worker), the site's python could not run the task, the run was marked
    failed in Airflow, or Airflow never received it; its traceback says which.
    """
