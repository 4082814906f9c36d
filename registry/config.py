"""All settings in one place: each is declared once, as a field of `Settings` (environment key, type,
default, comment); `load_settings()` builds them from the environment and `.env`, and `.env.example`,
docs/settings.md and compose.yaml's trainer environment are generated from (and tested
against) the same declarations.

Standard library and python-dotenv only, so `tasks.py` can import it without paying for mlflow.
"""

from __future__ import annotations

import dataclasses
import getpass
import math
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from dotenv import dotenv_values

from registry import validate
from registry.errors import BadInput, RegistryError, Unreachable

# tasks.py imports only this module: these are the errors it turns into exit codes.
__all__ = ["RegistryError", "Settings", "Unreachable", "load_settings", "local_server_address"]

RUNNERS = ("local", "compose")
LIFECYCLES = ("stages", "aliases")
# LIFECYCLE=aliases: the defaults of the role aliases when their keys are not set (`load_settings`).
ALIASES_MODE_DEFAULTS = {
    "PROD_ALIAS": "champion",
    "STAGING_ALIAS": "challenger",
    "PROTECTED_ALIASES": "champion",
}
DIRECTIONS = ("higher", "lower")
FIX_IT = "fix it in .env or the environment"


def setting(
    key: str,
    default: Any,
    doc: str,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    choices: tuple[str, ...] = (),
    alias: bool = False,
    container: bool = True,
    secret: bool = False,
    empty_is_off: bool = False,
) -> Any:
    """A field of `Settings` read from the environment key `key`.

    `container`: Compose hands it to the trainer container (False: host side only, or derived there).
    `alias`: the value (each value, for a list) must be an alias name MLflow accepts.
    `empty_is_off`: a key set to nothing (`KEY=`) means "off"; only a missing key means the default.
    """
    meta = {
        "key": key,
        "doc": doc,
        "minimum": minimum,
        "maximum": maximum,
        "choices": choices,
        "alias": alias,
        "container": container,
        "secret": secret,
        "empty_is_off": empty_is_off,
    }
    return dataclasses.field(default=default, metadata=meta, repr=not secret)


@dataclasses.dataclass(frozen=True)
class Settings:
    """Every knob of the tool. An empty value in the environment or .env means the default."""

    runner: str = setting(
        "REGISTRY_RUNNER",
        "local",
        "Where tasks run the CLI: local (this machine) or compose (the trainer container).",
        choices=RUNNERS,
        container=False,
    )
    mlflow_port: int = setting(
        "MLFLOW_PORT",
        5000,
        "Port of the MLflow server that `invoke up` starts (locally, or published by Compose).",
        minimum=1,
        maximum=65535,
        container=False,
    )
    tracking_uri: str = setting(
        "MLFLOW_TRACKING_URI",
        "",
        "The MLflow server the CLI talks to; empty: http://127.0.0.1:<MLFLOW_PORT> "
        "(Compose: http://mlflow:5000).",
        container=False,
    )
    model_name: str = setting("MODEL_NAME", "iris_clf", "The registered model the commands work on.")
    experiment_name: str = setting("EXPERIMENT_NAME", "iris", "The experiment training runs are logged to.")
    lifecycle: str = setting(
        "LIFECYCLE",
        "stages",
        "How new models hold Production and Staging: stages (MLflow's stages) or aliases (PROD_ALIAS and "
        "STAGING_ALIAS alone, no stage calls); an existing model keeps its own until `migrate`.",
        choices=LIFECYCLES,
    )
    prod_alias: str = setting(
        "PROD_ALIAS",
        "prod",
        "The alias that always follows the Production version (promotion, rollback, doctor --fix); "
        "empty: no alias follows it; LIFECYCLE=aliases: it holds Production, default champion.",
        alias=True,
        empty_is_off=True,
    )
    registry_home: Path = setting(
        "REGISTRY_HOME",
        Path(".mlflow"),
        "Local data folder of the embedded server: SQLite file, artifacts, pid file and log.",
        container=False,
    )
    server_workers: int = setting(
        "MLFLOW_SERVER_WORKERS",
        1,
        "uvicorn workers of the local server; 1 avoids MLflow's ~45 ms keep-alive stall per request.",
        minimum=1,
        maximum=64,
        container=False,
    )
    http_max_retries: int = setting(
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES",
        2,
        "MLflow client retries of a failed request (MLflow's default, 7, "
        "takes ~4 minutes to give up on a down server).",
        minimum=0,
        maximum=20,
    )
    http_backoff_factor: int = setting(
        "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR",
        1,
        "Backoff factor between those retries (seconds).",
        minimum=0,
        maximum=60,
    )
    http_timeout: int = setting(
        "MLFLOW_HTTP_REQUEST_TIMEOUT",
        10,
        "Seconds one request to the MLflow server may take.",
        minimum=1,
        maximum=3600,
    )
    lock: bool = setting(
        "REGISTRY_LOCK", True, "Serialise stage, alias and rollback across all clients of the server."
    )
    lock_timeout: float = setting(
        "LOCK_TIMEOUT",
        30.0,
        "Seconds to wait for the registry lock before giving up (exit 5).",
        minimum=0,
        maximum=86400,
    )
    lock_lease: float = setting(
        "LOCK_LEASE",
        60.0,
        "Seconds after which the lock ticket of a crashed client no longer blocks others.",
        minimum=1,
        maximum=86400,
    )
    actor: str = setting(
        "REGISTRY_ACTOR",
        "",
        "Who the ledger names as the actor; empty: MLFLOW_TRACKING_USERNAME, else the OS user.",
        container=False,
    )
    gates: bool = setting(
        "REGISTRY_GATES", True, "Run the gates (load, signature, metric) before a version becomes Production."
    )
    gate_metric: str = setting(
        "GATE_METRIC", "accuracy", "The version tag the metric gate compares with the Production version's."
    )
    gate_direction: str = setting(
        "GATE_DIRECTION", "higher", "Which way GATE_METRIC is better: higher or lower.", choices=DIRECTIONS
    )
    gate_tolerance: float = setting(
        "GATE_TOLERANCE",
        0.0,
        "How much worse than Production a candidate may be; 0: never worse.",
        minimum=0,
        maximum=1e12,
    )
    mirror_stage_aliases: bool = setting(
        "MIRROR_STAGE_ALIASES",
        False,
        "Keep STAGING_ALIAS on the Staging version, as PROD_ALIAS always is on the Production version.",
    )
    staging_alias: str = setting(
        "STAGING_ALIAS",
        "staging",
        "The alias that follows the Staging version when MIRROR_STAGE_ALIASES is on; "
        "LIFECYCLE=aliases: it holds Staging, default challenger.",
        alias=True,
    )
    protected_aliases: tuple[str, ...] = setting(
        "PROTECTED_ALIASES",
        ("prod",),
        "Aliases that move only by gated promotion, rollback or --force --reason (comma-separated); "
        "LIFECYCLE=aliases: default champion.",
        alias=True,
    )
    username: str = setting(
        "MLFLOW_TRACKING_USERNAME",
        "",
        "User for a server with authentication (also taken from a user:password@ URI).",
        container=False,
    )
    password: str = setting(
        "MLFLOW_TRACKING_PASSWORD", "", "Its password; never printed.", container=False, secret=True
    )
    serve_port: int = setting(
        "SERVE_PORT",
        8080,
        "Port of `serve` (Compose: the port the serve service is published on, on 127.0.0.1).",
        minimum=1,
        maximum=65535,
        container=False,
    )
    serve_poll_seconds: float = setting(
        "SERVE_POLL_SECONDS",
        2.0,
        "Seconds between `serve`'s reads of its alias: how soon it follows a move without events.",
        minimum=0.1,
        maximum=3600,
        container=False,
    )
    serve_hook_url: str = setting(
        "SERVE_HOOK_URL",
        "",
        "Where the MLflow server reaches `serve`'s /hooks to announce alias moves at once "
        "(Compose: http://serve:8080/hooks); empty: polling only.",
        container=False,
    )
    serve_hook_secret: str = setting(
        "SERVE_HOOK_SECRET",
        "",
        "Secret of `serve`'s own webhook; empty: a new random one at every start; never printed.",
        container=False,
        secret=True,
    )
    # The scale-out Compose stack (compose.scale.yaml, docs/scaling.md): read by Compose from .env.
    mlflow_servers: int = setting(
        "MLFLOW_SERVERS",
        2,
        "Scale-out stack: tracking servers behind its load balancer (`invoke up` starts this many).",
        minimum=1,
        maximum=16,
        container=False,
    )
    postgres_password: str = setting(
        "POSTGRES_PASSWORD",
        "mlflow",
        "Scale-out stack: password of the bundled PostgreSQL, set when its volume is made; never printed.",
        container=False,
        secret=True,
    )
    backend_store_uri: str = setting(
        "BACKEND_STORE_URI",
        "",
        "Scale-out stack: your own database (postgresql+psycopg2://...); empty: the bundled PostgreSQL.",
        container=False,
        secret=True,
    )
    artifacts_destination: str = setting(
        "ARTIFACTS_DESTINATION",
        "",
        "Scale-out stack: your own S3 or MinIO location (s3://bucket/path); empty: the bundled store.",
        container=False,
    )
    s3_endpoint_url: str = setting(
        "MLFLOW_S3_ENDPOINT_URL",
        "",
        "Scale-out stack: the S3 endpoint of ARTIFACTS_DESTINATION (MinIO: http://host:9000); empty: AWS.",
        container=False,
    )
    aws_access_key_id: str = setting(
        "AWS_ACCESS_KEY_ID",
        "mlflow",
        "Scale-out stack: the S3 key id of the tracking servers (and of the bundled store).",
        container=False,
    )
    aws_secret_access_key: str = setting(
        "AWS_SECRET_ACCESS_KEY",
        "mlflow-local-secret",
        "Its secret key; never printed.",
        container=False,
        secret=True,
    )


def declared() -> tuple[dataclasses.Field[Any], ...]:
    """The declaration of every setting, in the order of `Settings`."""
    return dataclasses.fields(Settings)


def load_settings(
    environ: Mapping[str, str] | None = None,
    env_file: str | Path | None = ".env",
    lifecycle: str | None = None,
) -> Settings:
    """Settings from `environ` (default `os.environ`) over the `.env` file over the defaults; with
    `lifecycle`, as they are under that LIFECYCLE (`migrate` needs the alias names of both)."""
    values: dict[str, str] = {}
    if env_file is not None and Path(env_file).is_file():
        values.update({k: v for k, v in _read_env_file(Path(env_file)).items() if v is not None})
    values.update(os.environ if environ is None else environ)
    if lifecycle is not None:
        values["LIFECYCLE"] = lifecycle
    if values.get("LIFECYCLE", "").strip().lower() == "aliases":  # a role alias cannot be off here
        for key, default in ALIASES_MODE_DEFAULTS.items():
            values[key] = values[key] if values.get(key, "").strip() else default
    parsed = {field.name: _parse(field, values.get(field.metadata["key"])) for field in declared()}
    settings = Settings(**parsed)
    if settings.lifecycle == "aliases" and settings.prod_alias == settings.staging_alias:
        raise BadInput(
            f"PROD_ALIAS and STAGING_ALIAS are both {settings.prod_alias!r}: one alias cannot hold both "
            f"roles with LIFECYCLE=aliases; {FIX_IT}"
        )
    uri, user, password = split_credentials(
        settings.tracking_uri or f"http://127.0.0.1:{settings.mlflow_port}"
    )
    username = settings.username or user
    return dataclasses.replace(
        settings,
        tracking_uri=uri,
        username=username,
        password=settings.password or password,
        actor=settings.actor or username or _os_user(),
    )


def _read_env_file(path: Path) -> dict[str, str | None]:
    try:
        return dotenv_values(path, encoding="utf-8")
    except UnicodeDecodeError:
        raise BadInput(f"{path} is not UTF-8 text; save it as UTF-8") from None


def _parse(field: dataclasses.Field[Any], raw_value: str | None) -> Any:
    """The value of one setting from its text (None: not set), checked against its declaration."""
    meta, default = field.metadata, field.default
    key, raw = meta["key"], (raw_value or "").strip()
    if "\x00" in raw or (raw and not raw.isprintable()):
        raise BadInput(f"{key} holds control characters; {FIX_IT}")
    if not raw:
        return "" if meta["empty_is_off"] and raw_value is not None else default
    value: Any
    if isinstance(default, bool):
        value = _flag(key, raw)
    elif isinstance(default, (int, float)):
        value = _number(key, raw, type(default), meta["minimum"], meta["maximum"])
    elif isinstance(default, Path):
        value = Path(raw)
    elif isinstance(default, tuple):
        value = tuple(part.strip() for part in raw.split(",") if part.strip())
    else:
        value = raw.lower() if meta["choices"] else raw
    if meta["choices"] and value not in meta["choices"]:
        raise BadInput(f"{key}={raw!r} is unknown; use one of: {', '.join(meta['choices'])}")
    if meta["alias"]:
        for name in value if isinstance(value, tuple) else (value,):
            try:
                validate.alias(name)
            except BadInput as exc:
                raise BadInput(f"{key}: {exc}") from None
    return value


def _number(key: str, raw: str, kind: type, minimum: float | None, maximum: float | None) -> Any:
    try:
        number = kind(raw)
    except ValueError:
        raise BadInput(f"{key}={raw!r} is not a {'whole ' if kind is int else ''}number; {FIX_IT}") from None
    if not math.isfinite(number):
        raise BadInput(f"{key}={raw!r} is not a finite number; {FIX_IT}")
    if minimum is not None and number < minimum:
        raise BadInput(f"{key}={raw!r} is below {minimum:g}; {FIX_IT}")
    if maximum is not None and number > maximum:
        raise BadInput(f"{key}={raw!r} is above {maximum:g}; {FIX_IT}")
    return number


def _flag(key: str, raw: str) -> bool:
    lowered = raw.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise BadInput(f"{key}={raw!r} is not true or false; {FIX_IT}")


def env_text(value: Any) -> str:
    """A setting's value as it is written in `.env`."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ",".join(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def current_text(settings: Settings, field: dataclasses.Field[Any]) -> str:
    """A setting's value in `settings` as `.env` would write it; secrets masked."""
    value = getattr(settings, field.name)
    if field.metadata["secret"]:
        return "***" if value else ""
    return env_text(value)


def env_example() -> str:
    """The text of `.env.example`: every setting, its comment, and its default."""
    lines = [
        "# Settings of the registry tool. Copy to .env and change what you need; every key is optional and",
        "# the value shown is the default (empty: derived, see the comment). The environment overrides .env.",
        "# Generated by `python -m registry settings --env-example` from registry/config.py.",
    ]
    for field in declared():
        lines += ["", f"# {field.metadata['doc']}", f"{field.metadata['key']}={env_text(field.default)}"]
    return "\n".join(lines) + "\n"


def markdown_table() -> str:
    """The settings table of docs/settings.md: key, default, meaning."""
    rows = ["| key | default | meaning |", "| --- | --- | --- |"]
    for field in declared():
        default = env_text(field.default)
        meaning = field.metadata["doc"].replace("|", "\\|")
        rows.append(f"| `{field.metadata['key']}` | {f'`{default}`' if default else '(empty)'} | {meaning} |")
    return "\n".join(rows)


def compose_environment() -> dict[str, str | None]:
    """The trainer container's environment in compose.yaml: each shared setting from `.env`."""
    # ${KEY:-default}: empty or unset means the default; ${KEY-default} keeps an empty value ("off").
    # None (`KEY:` alone) passes the key only when .env or the shell sets it: the container then
    # takes the default of its LIFECYCLE (ALIASES_MODE_DEFAULTS), as the host does.
    environment: dict[str, str | None] = {}
    for field in declared():
        if field.metadata["container"]:
            key, default = field.metadata["key"], env_text(field.default)
            if key in ALIASES_MODE_DEFAULTS:
                environment[key] = None
            elif field.metadata["empty_is_off"]:
                environment[key] = f"${{{key}-{default}}}"
            else:
                environment[key] = f"${{{key}:-{default}}}"
    return environment


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
    """Split `http://user:pass@host:port/path` into the bare URI, user and password (percent-decoded)."""
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
    return bare, unquote(parts.username or ""), unquote(parts.password or "")


def redact_uri(uri: str) -> str:
    """`uri` with any `user:password@` part (with or without a scheme) replaced by `***@`."""
    scheme, sep, rest = uri.partition("://")
    if not sep:
        scheme, rest = "", uri
    authority, slash, path = rest.partition("/")
    if "@" not in authority:
        return uri
    return f"{scheme}{sep}***@{authority.rpartition('@')[2]}{slash}{path}"


def local_server_address(settings: Settings) -> tuple[str, int] | None:
    """(host, port) of the tracking server when it is on this machine, else None."""
    parts = urlsplit(settings.tracking_uri)
    if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        return None
    return parts.hostname, parts.port or settings.mlflow_port


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    """`text` with URI credentials and the given secrets (as typed and percent-encoded) replaced by `***`."""
    for secret in secrets:
        for spelling in {secret, quote(secret, safe="")} if secret else ():
            text = text.replace(spelling, "***")
    return re.sub(r"(^|[\s'\"(=]|://)[^/@\s'\"(=]+@(?=[\w.\[-])", r"\1***@", text)
