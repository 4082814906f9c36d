"""How the tool connects to MLflow: the settings it exports, a fast check that the server listens,
and MLflow's errors turned into RegistryError subclasses."""

from __future__ import annotations

import html
import json
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
from registry.tables import clip


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
    if status:  # MLflow's client retried a 5xx, then dropped the answer: ask once more for its words
        failure = server_failure(settings, status[1], message)
        return ServerFailed(
            f"the MLflow server at {server} failed on {subject} ({failure}); it is up but broken: "
            "see its log (`invoke logs`), its database and artifact store"
        )
    answered = unretried_server_error(message)
    if answered:  # a 5xx MLflow's client does not retry (501, 505, ...): its words are in the message
        return ServerFailed(
            f"the MLflow server at {server} failed on {subject} ({answered}); it is up but broken: "
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


# A read through the server's registry store, for when the failed request cannot be asked again.
DIAGNOSTIC_READ = "/api/2.0/mlflow/registered-models/search?max_results=1"
# The failed request's path and query, as urllib3 names it in MLflow's "too many 5xx" message.
RETRIED_URL = re.compile(r"Max retries exceeded with url: (/\S*) \(Caused by ResponseError")
# How much of the diagnostic answer is read, and how many characters of its words are quoted.
BODY_LIMIT = 64 * 1024
WORDS_WIDTH = 200


def server_failure(settings: Settings, status: str, message: str) -> str:
    """`HTTP 500`, with the server's words when one un-retried request to it fails with a 5xx too."""
    answer = ask_once(settings, diagnostic_url(settings, message))
    if answer is None:
        return f"HTTP {status}"
    again, words = answer
    return f"HTTP {status}: {words}" if again == int(status) else f"HTTP {status}, then {again}: {words}"


def diagnostic_url(settings: Settings, message: str) -> str:
    """The failed request again when it was a read (MLflow's client sends a GET's parameters in the
    query, other methods' in the body), else a cheap read through the same store."""
    failed = RETRIED_URL.search(message)
    if failed and "?" in failed[1]:
        parts = urlsplit(settings.tracking_uri)
        return f"{parts.scheme}://{parts.netloc}{failed[1]}"  # always the tool's own server
    return settings.tracking_uri.rstrip("/") + DIAGNOSTIC_READ


def ask_once(settings: Settings, url: str) -> tuple[int, str] | None:
    """(status, first line of the answer) when a GET of `url`, not retried, answers 5xx with some text;
    None when it succeeds, fails otherwise or says nothing. Credentials and TLS as MLflow's client."""
    import requests

    basic = (settings.username, settings.password) if settings.username and settings.password else None
    token = os.environ.get("MLFLOW_TRACKING_TOKEN", "") if basic is None else ""
    insecure = os.environ.get("MLFLOW_TRACKING_INSECURE_TLS", "").strip().lower() in ("true", "1")
    verify: bool | str = not insecure and (os.environ.get("MLFLOW_TRACKING_SERVER_CERT_PATH") or True)
    try:
        with requests.get(
            url,
            auth=basic,
            headers={"Authorization": f"Bearer {token}"} if token else None,
            timeout=settings.http_timeout,
            verify=verify,
            allow_redirects=False,
            stream=True,
        ) as answer:
            if answer.status_code < 500:
                return None
            body = next(answer.iter_content(BODY_LIMIT), b"")  # requests' errors, not urllib3's
    except (requests.RequestException, OSError):
        return None
    words = clip(first_line(error_text(body.decode("utf-8", errors="replace"))), WORDS_WIDTH)
    return (answer.status_code, words) if words else None


def error_text(body: str) -> str:
    """The text of an error answer: MLflow's JSON `message`, else the body without HTML markup."""
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        return str(parsed.get("message") or parsed.get("error_code") or "")
    body = re.sub(r"(?is)<(script|style)\b.*?</\1\s*>|<!--.*?-->", "", body)
    return html.unescape(re.sub(r"<[^>]*>", "", body))


def unretried_server_error(message: str) -> str:
    """`HTTP 501: <the server's words>` for a 5xx answer without MLflow's JSON that MLflow's client did
    not retry; "" for anything else. (Not by error code: MLflow's own client-side errors say
    INTERNAL_ERROR too.)"""
    plain = re.search(r"failed with error code (5\d\d) != \d+\. Response body: '(.*)'$", message, re.S)
    if plain:
        words = clip(first_line(error_text(plain[2])), WORDS_WIDTH)
        return f"HTTP {plain[1]}: {words}" if words else f"HTTP {plain[1]}"
    return ""


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
    """Fail at once when nothing listens at the server's address (MLflow would retry for seconds).

    A temporary name-resolution failure (EAI_AGAIN: no DNS server answered, as a container engine's may
    not for seconds while containers stop and start) is retried with a short backoff for up to
    MLFLOW_HTTP_REQUEST_TIMEOUT; an unknown host (EAI_NONAME) fails at once."""
    import time

    parts = urlsplit(settings.tracking_uri)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    deadline = time.monotonic() + settings.http_timeout
    pause = 0.25
    while True:
        try:
            timeout = max(deadline - time.monotonic(), 1.0)
            socket.create_connection((parts.hostname, port), timeout=timeout).close()
            return
        except socket.gaierror as exc:
            temporary = exc.errno == socket.EAI_AGAIN
            if temporary and time.monotonic() + pause < deadline:
                time.sleep(pause)
                pause = min(pause * 2, 2.0)
                continue
            reason = "temporary failure in name resolution" if temporary else "unknown host"
        except OSError as exc:
            reason = network_reason(str(exc), settings)
        raise Unreachable(
            f"cannot reach the MLflow server at {settings.tracking_uri} ({reason}); "
            "start it with `invoke up` or fix MLFLOW_TRACKING_URI"
        ) from None
