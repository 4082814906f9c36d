"""All settings in one place: built from the environment and `.env` by `load_settings()`.

Standard library and python-dotenv only, so `tasks.py` can import it without paying for mlflow.
"""

from __future__ import annotations

import dataclasses
import getpass
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit, urlunsplit

from dotenv import dotenv_values

from registry.errors import BadInput, RegistryError, Unreachable

# tasks.py imports only this module: these are the errors it turns into exit codes.
__all__ = ["RegistryError", "Settings", "Unreachable", "load_settings", "local_server_address"]

RUNNERS = ("local", "compose")
DIRECTIONS = ("higher", "lower")
Num = TypeVar("Num", int, float)


@dataclasses.dataclass(frozen=True)
class Settings:
    """Every knob of the tool; defaults here are mirrored line for line in `.env.example`."""

    # Where tasks run the CLI: `local` (this machine) or `compose` (the trainer container).
    runner: str = "local"
    # Port of the MLflow server that `invoke up` starts (locally, or published by Compose).
    mlflow_port: int = 5000
    # The MLflow server the CLI talks to; default http://127.0.0.1:<MLFLOW_PORT>.
    tracking_uri: str = "http://127.0.0.1:5000"
    # The registered model the commands work on.
    model_name: str = "iris_clf"
    # The experiment training runs are logged to.
    experiment_name: str = "iris"
    # The alias that `rollback` (and the demo) keeps on the Production version.
    prod_alias: str = "prod"
    # Local data folder of the embedded server: SQLite file, artifacts, pid file and log.
    registry_home: Path = Path(".mlflow")
    # uvicorn workers of the local server; 1 avoids MLflow's ~45 ms keep-alive stall per request.
    server_workers: int = 1
    # MLflow client HTTP retries, backoff factor and per-request timeout (seconds): a down
    # server fails in seconds instead of MLflow's ~4 minutes.
    http_max_retries: int = 2
    http_backoff_factor: int = 1
    http_timeout: int = 10
    # Serialise stage, alias and rollback across all clients of the server (see README, "Safety").
    lock: bool = True
    # Seconds to wait for the registry lock before giving up (exit 5).
    lock_timeout: float = 30.0
    # Seconds after which a lock ticket of a crashed client no longer blocks others.
    lock_lease: float = 60.0
    # Who the ledger names as the actor; default MLFLOW_TRACKING_USERNAME, else the OS user.
    actor: str = ""
    # Run the gates (load, signature, metric) before a version becomes Production.
    gates: bool = True
    # Gate before Production: the version tag compared with the Production version's (higher or
    # lower is better) and how much worse it may be: 0 means never worse than the champion.
    gate_metric: str = "accuracy"
    gate_direction: str = "higher"
    gate_tolerance: float = 0.0
    # Keep PROD_ALIAS on the Production version and STAGING_ALIAS on the Staging version.
    mirror_stage_aliases: bool = False
    staging_alias: str = "staging"
    # Aliases that move only by gated promotion, rollback or --force --reason (comma-separated).
    protected_aliases: tuple[str, ...] = ("prod",)
    # Credentials for a server with authentication (also taken from a user:password@ URI).
    username: str = ""
    password: str = dataclasses.field(default="", repr=False)


def load_settings(environ: Mapping[str, str] | None = None, env_file: str | Path | None = ".env") -> Settings:
    """Settings from `environ` (default `os.environ`) over the `.env` file over the defaults."""
    values: dict[str, str] = {}
    if env_file is not None and Path(env_file).is_file():
        values.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
    values.update(os.environ if environ is None else environ)

    def text(key: str, default: str) -> str:
        return values.get(key, "").strip() or default

    runner = text("REGISTRY_RUNNER", "local").lower()
    if runner not in RUNNERS:
        raise BadInput(f"REGISTRY_RUNNER={runner!r} is unknown; use one of: {', '.join(RUNNERS)}")
    port = _number(values, "MLFLOW_PORT", 5000, minimum=1)
    if port > 65535:
        raise BadInput(f"MLFLOW_PORT={port} is not a port; use 1-65535")
    uri, user, password = split_credentials(text("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{port}"))
    username = text("MLFLOW_TRACKING_USERNAME", user)
    return Settings(
        runner=runner,
        mlflow_port=port,
        tracking_uri=uri,
        model_name=text("MODEL_NAME", "iris_clf"),
        experiment_name=text("EXPERIMENT_NAME", "iris"),
        prod_alias=text("PROD_ALIAS", "prod"),
        registry_home=Path(text("REGISTRY_HOME", ".mlflow")),
        server_workers=_number(values, "MLFLOW_SERVER_WORKERS", 1, minimum=1),
        http_max_retries=_number(values, "MLFLOW_HTTP_REQUEST_MAX_RETRIES", 2, minimum=0),
        http_backoff_factor=_number(values, "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", 1),
        http_timeout=_number(values, "MLFLOW_HTTP_REQUEST_TIMEOUT", 10, minimum=1),
        lock=_flag(values, "REGISTRY_LOCK", True),
        lock_timeout=_number(values, "LOCK_TIMEOUT", 30.0, minimum=0),
        lock_lease=_number(values, "LOCK_LEASE", 60.0, minimum=1),
        gates=_flag(values, "REGISTRY_GATES", True),
        gate_metric=text("GATE_METRIC", "accuracy"),
        gate_direction=_choice(values, "GATE_DIRECTION", DIRECTIONS),
        gate_tolerance=_number(values, "GATE_TOLERANCE", 0.0, minimum=0),
        mirror_stage_aliases=_flag(values, "MIRROR_STAGE_ALIASES", False),
        staging_alias=text("STAGING_ALIAS", "staging"),
        protected_aliases=tuple(a.strip() for a in text("PROTECTED_ALIASES", "prod").split(",") if a.strip()),
        actor=text("REGISTRY_ACTOR", username or _os_user()),
        username=username,
        password=text("MLFLOW_TRACKING_PASSWORD", password),
    )


def with_tracking_uri(settings: Settings, uri: str) -> Settings:
    """`settings` pointed at another server (credentials in `uri` are split off like in `.env`)."""
    clean, user, password = split_credentials(uri)
    return dataclasses.replace(
        settings,
        tracking_uri=clean,
        username=user or settings.username,
        password=password or settings.password,
    )


def split_credentials(uri: str) -> tuple[str, str, str]:
    """Split `http://user:pass@host:port/path` into the bare URI, user and password."""
    try:
        parts = urlsplit(uri.strip())
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        raise BadInput(f"tracking URI {redact_uri(uri)!r} is malformed; use http://host:port") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BadInput(
            f"tracking URI {redact_uri(uri)!r} is not an http(s) server address; use http://host:port"
        )
    host = parts.netloc.rpartition("@")[2]
    bare = urlunsplit((parts.scheme, host, parts.path.rstrip("/"), "", ""))
    return bare, parts.username or "", parts.password or ""


def redact_uri(uri: str) -> str:
    """`uri` with any `user:password@` part replaced by `***@`."""
    scheme, sep, rest = uri.partition("://")
    if not sep or "@" not in rest.split("/", 1)[0]:
        return uri
    return f"{scheme}://***@{rest.split('@', 1)[1]}"


def local_server_address(settings: Settings) -> tuple[str, int] | None:
    """(host, port) of the tracking server when it is on this machine, else None."""
    parts = urlsplit(settings.tracking_uri)
    if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        return None
    return parts.hostname, parts.port or settings.mlflow_port


def _number(values: Mapping[str, str], key: str, default: Num, minimum: float = 0) -> Num:
    """`values[key]` as the type of `default` (int or float), checked against `minimum`."""
    raw = values.get(key, "").strip()
    if not raw:
        return default
    try:
        number = type(default)(raw)
    except ValueError:
        raise BadInput(f"{key}={raw!r} is not a number; fix it in .env or the environment") from None
    if number < minimum:
        raise BadInput(f"{key}={raw!r} is below {minimum}; fix it in .env or the environment")
    return number


def _flag(values: Mapping[str, str], key: str, default: bool) -> bool:
    raw = values.get(key, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise BadInput(f"{key}={raw!r} is not true or false; fix it in .env or the environment")


def _choice(values: Mapping[str, str], key: str, choices: tuple[str, ...]) -> str:
    """`values[key]` lower-cased, one of `choices` (default: the first)."""
    raw = values.get(key, "").strip().lower() or choices[0]
    if raw not in choices:
        raise BadInput(f"{key}={raw!r} is unknown; use one of: {', '.join(choices)}")
    return raw


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    """`text` with URI credentials and the given secrets replaced by `***`."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return re.sub(r"://[^/@\s]+@", "://***@", text)
