"""The embedded MLflow server of the local runner: SQLite file + artifact folder under REGISTRY_HOME.

Standard library only: `up` and `down` must not pay for importing mlflow.
"""

from __future__ import annotations

import base64
import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from registry.config import Settings, local_server_address
from registry.errors import RegistryError, Unreachable

START_TIMEOUT = 90.0
STOP_TIMEOUT = 15.0
# The environment of the servers this project starts (docs/serving.md, "What the servers allow"), where
# the environment does not set it. MLflow's defaults deliver webhooks only to https URLs on public
# addresses and cache the list of webhooks for 60 s.
SERVER_ENV = {
    # plain http too: `serve` and receivers on this machine (or the Compose network) speak http
    "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https",
    # loopback and private addresses too, where `serve` runs. This also lets anyone allowed to create
    # webhooks here make the server POST to other services on this machine or network (and read their
    # answers through a test delivery): the server listens on 127.0.0.1 only, so that is this machine's users
    "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true",
    # a new or updated subscriber gets events within a second, not a minute; costs one query per second
    "MLFLOW_WEBHOOK_CACHE_TTL": "1",
    # no job runner: MLflow's jobs (GenAI evaluation, prompt optimisation) are not the registry's. On,
    # a server starts 8 more processes: /health 2x later, 3x the CPU, 4x the memory (bench/server_start.py)
    "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
}
KEY_VARIABLE = "MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY"
KEY_FILE = "webhook.key"  # beside the database: webhook secrets stay readable after a restart


def health_ok(url: str, timeout: float = 2.0) -> bool:
    """True when the server at `url` answers `/health` with 200."""
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=timeout) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


def server_command(
    home: Path, host: str, port: int, workers: int, backend_uri: str | None = None
) -> list[str]:
    """`mlflow server` with artifacts under `home` and SQLite there unless `backend_uri` is given."""
    home = home.resolve()
    return [
        sys.executable, "-m", "mlflow", "server",
        "--host", host,
        "--port", str(port),
        "--backend-store-uri", backend_uri or f"sqlite:///{home / 'mlflow.db'}",
        "--artifacts-destination", str(home / "artifacts"),
        "--workers", str(workers),
    ]  # fmt: skip


def start(settings: Settings, backend_uri: str | None = None) -> str:
    """Start the local server unless it already answers; returns what happened, for the user."""
    address = local_server_address(settings)
    url = settings.tracking_uri
    if address is None:
        return f"MLFLOW_TRACKING_URI points at {url}, not this machine: no local server started"
    if health_ok(url):
        return f"MLflow server already running at {url}"
    home = settings.registry_home
    home.mkdir(parents=True, exist_ok=True)
    log_path = home / "server.log"
    command = server_command(home, address[0], address[1], settings.server_workers, backend_uri)
    process = launch(command, log_path)
    (home / "server.pid").write_text(str(process.pid))
    try:
        wait_healthy(url, process, START_TIMEOUT, log_path)
    except Unreachable:
        stop(settings)
        raise
    return f"MLflow server started at {url} (data in {home}, log in {log_path})"


def launch(command: list[str], log_path: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start a server `command` in a process group of its own, its output appended to `log_path`."""
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env={**server_environment(log_path.parent), **os.environ, **(env or {}),
                 "MLFLOW_DISABLE_TELEMETRY": "true"},
        )  # fmt: skip


def server_environment(home: Path) -> dict[str, str]:
    """SERVER_ENV and the key that encrypts webhook secrets in the database: the environment's
    MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY, else one made once and kept in `home`/webhook.key (mode 600).
    Without a fixed key MLflow makes up one per process, and secrets stored before a restart (or by
    another worker) cannot be read."""
    key = os.environ.get(KEY_VARIABLE) or _webhook_key(home / KEY_FILE)
    return {**SERVER_ENV, KEY_VARIABLE: key}


def _webhook_key(path: Path) -> str:
    """The Fernet key in `path`, made (32 random bytes, url-safe base64) when there is none."""
    with contextlib.suppress(FileNotFoundError):
        key = path.read_text().strip()
        if key:
            return key
    path.parent.mkdir(parents=True, exist_ok=True)
    key = base64.urlsafe_b64encode(os.urandom(32)).decode()
    with contextlib.suppress(FileExistsError):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(key + "\n")
        return key
    return path.read_text().strip()  # another process made it first


def wait_healthy(url: str, process: subprocess.Popen[bytes], timeout: float, log_path: Path) -> None:
    """Return once `url` answers /health; Unreachable when `process` exits or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if health_ok(url, timeout=1.0):
            return
        if process.poll() is not None:
            raise Unreachable(f"the server exited at start (is its port taken?); see {log_path}")
        time.sleep(0.3)
    raise Unreachable(f"the server at {url} did not become healthy in {timeout:.0f} s; see {log_path}")


def stop(settings: Settings) -> str:
    """Stop the server `start` launched, with its worker processes."""
    pid_file = settings.registry_home / "server.pid"
    try:
        pid = int(pid_file.read_text())
    except (OSError, ValueError):
        return "no local MLflow server was started from here"
    pid_file.unlink(missing_ok=True)
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return "the local MLflow server had already stopped"
    except PermissionError as exc:
        raise RegistryError(f"cannot stop the server (pid {pid}): {exc}") from None
    deadline = time.monotonic() + STOP_TIMEOUT
    while time.monotonic() < deadline and _group_alive(pid):
        time.sleep(0.2)
    if _group_alive(pid):
        os.killpg(pid, signal.SIGKILL)
    return f"MLflow server stopped (pid {pid})"


def _group_alive(pgid: int) -> bool:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pgid, os.WNOHANG)  # reap the leader if it is our own child
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True
