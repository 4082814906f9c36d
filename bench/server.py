"""Start and stop a real local `mlflow server` for the benchmark (SQLite file or PostgreSQL database).

The command line is the one `invoke up` uses (registry.localserver.server_command) with the backend
store swapped when PostgreSQL is asked for. Only 127.0.0.1; every wait is bounded.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

START_TIMEOUT = 180.0
STOP_TIMEOUT = 15.0
# Nothing leaves this machine: MLflow's usage telemetry is switched off for every process we start.
QUIET_ENV = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class MlflowServer:
    """One `mlflow server` process group on 127.0.0.1; `backend` is a store URI (default SQLite)."""

    def __init__(self, home: Path, workers: int, backend: str | None = None, port: int | None = None):
        from registry.localserver import server_command

        self.home = home
        self.workers = workers
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        home.mkdir(parents=True, exist_ok=True)
        command = server_command(home, "127.0.0.1", self.port, workers)
        if backend is not None:
            command[command.index("--backend-store-uri") + 1] = backend
        self.backend = command[command.index("--backend-store-uri") + 1]
        self.command = command
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = home / f"server-{self.port}.log"

    def start(self) -> MlflowServer:
        from registry.localserver import launch, wait_healthy

        self.process = launch(self.command, self.log_path, QUIET_ENV)
        try:
            wait_healthy(self.url, self.process, START_TIMEOUT, self.log_path)
        except Exception:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        pid = self.process.pid
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            self.process.wait(timeout=STOP_TIMEOUT)
        # uvicorn workers are in the same process group; make sure none outlives the leader
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)

    def __enter__(self) -> MlflowServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class PostgresDatabase:
    """A fresh database on the PostgreSQL server of `admin_uri` (on 127.0.0.1), dropped at exit."""

    def __init__(self, admin_uri: str) -> None:
        parts = urlsplit(admin_uri)
        if parts.hostname not in ("127.0.0.1", "localhost"):
            raise ValueError("the benchmark only uses a PostgreSQL server on 127.0.0.1")
        self.admin_uri = admin_uri
        self.name = f"registry_bench_{uuid.uuid4().hex[:8]}"
        scheme = "postgresql+psycopg2"  # SQLAlchemy 2.1 takes psycopg 3 for plain postgresql://
        self.uri = urlunsplit((scheme, parts.netloc, f"/{self.name}", "", ""))

    def analyze(self) -> None:
        """Refresh the planner's statistics of this database. Right after thousands of rows are
        created at once, before autovacuum has analyzed them, PostgreSQL may plan MLflow's model
        search badly (1.8 s instead of 25 ms at 3,000 versions); a real registry grows slowly."""
        self._execute("ANALYZE", self.uri)

    def _execute(self, statement: str, uri: str | None = None) -> None:
        import psycopg2

        target = uri or self.admin_uri
        conn = psycopg2.connect(target.replace("postgresql+psycopg2://", "postgresql://"))
        try:
            conn.autocommit = True
            with conn.cursor() as cursor:
                cursor.execute(statement)
        finally:
            conn.close()

    def __enter__(self) -> PostgresDatabase:
        self._execute(f'CREATE DATABASE "{self.name}"')
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(Exception):
            self._execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
