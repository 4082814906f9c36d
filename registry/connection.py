"""How the tool connects to MLflow: the settings it exports, a fast check that the server listens,
and MLflow's errors turned into RegistryError subclasses."""

from __future__ import annotations

import os
import re
import socket
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

from registry.config import Settings
from registry.errors import (
    BadInput,
    NotFound,
    PermissionDenied,
    RegistryError,
    ServerFailed,
    Unreachable,
    first_line,
)


def configure_mlflow(settings: Settings) -> None:
    """Export the settings MLflow reads from the environment (retries, credentials, server)."""
    os.environ["MLFLOW_TRACKING_URI"] = settings.tracking_uri
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "ERROR")
    # No usage reports leave the machine, and no wait for them at exit.
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = str(settings.http_max_retries)
    os.environ["MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"] = str(settings.http_backoff_factor)
    os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = str(settings.http_timeout)
    if settings.username:
        os.environ["MLFLOW_TRACKING_USERNAME"] = settings.username
    if settings.password:
        os.environ["MLFLOW_TRACKING_PASSWORD"] = settings.password
    # Stage calls are deprecated since MLflow 2.9 and warn on every use; the tool decides that.
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module=r"mlflow\..*")


@contextmanager
def mlflow_errors(settings: Settings, subject: str) -> Iterator[None]:
    """Turn MLflow and HTTP failures raised inside into RegistryError subclasses."""
    from mlflow.exceptions import MlflowException
    from requests.exceptions import RequestException

    try:
        yield
    except MlflowException as exc:
        raise translate(settings, subject, exc.error_code, str(exc)) from None
    except RequestException as exc:
        raise translate(settings, subject, "", f"API request failed with exception {exc}") from None


def translate(settings: Settings, subject: str, code: str, message: str) -> RegistryError:
    """The RegistryError for an MLflow error `code` and `message` about `subject`."""
    server = settings.tracking_uri
    headline = first_line(message) or code
    if code == "RESOURCE_DOES_NOT_EXIST":
        return NotFound(f"{subject} does not exist on {server}")
    if code == "UNAUTHENTICATED":
        return PermissionDenied(
            f"{server} refused the credentials (401); "
            "set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD in .env"
        )
    if code == "PERMISSION_DENIED":
        return PermissionDenied(
            f"permission denied by {server} for {subject} (403); "
            f"ask an admin to grant user {settings.username or '(anonymous)'} access"
        )
    status = re.search(r"too many (5\d\d) error responses", message)
    if status:  # MLflow's client (its retries) names the status, not the server's words
        return ServerFailed(
            f"the MLflow server at {server} failed on {subject} (HTTP {status[1]}); it is up but broken: "
            "see its log (`invoke logs`), its database and artifact store"
        )
    if "API request to" in message and ("failed with exception" in message or "timeout exception" in message):
        return Unreachable(
            f"cannot reach the MLflow server at {server} ({network_reason(message, settings)}); "
            "start it with `invoke up` or fix MLFLOW_TRACKING_URI"
        )
    if code == "INVALID_PARAMETER_VALUE":
        return BadInput(f"MLflow rejected {subject}: {headline}")
    return RegistryError(f"the server failed on {subject}: {headline}")


def network_reason(message: str, settings: Settings) -> str:
    lowered = message.lower()
    if "refused" in lowered:
        return "connection refused"
    if "timeout" in lowered or "timed out" in lowered:
        return f"no answer within {settings.http_timeout} s"
    if "resolve" in lowered or "name or service" in lowered or "nodename" in lowered:
        return "unknown host"
    return "network error"


def probe(settings: Settings) -> None:
    """Fail at once when nothing listens at the server's address (MLflow would retry for seconds)."""
    parts = urlsplit(settings.tracking_uri)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname, port), timeout=settings.http_timeout).close()
    except OSError as exc:
        reason = "unknown host" if isinstance(exc, socket.gaierror) else network_reason(str(exc), settings)
        raise Unreachable(
            f"cannot reach the MLflow server at {settings.tracking_uri} ({reason}); "
            "start it with `invoke up` or fix MLFLOW_TRACKING_URI"
        ) from None
