"""A tracking server of the scale-out stack (compose.scale.yaml), or, with `migrate`, the one-shot step
before the servers start that creates or upgrades the database schema: MLflow servers that start
together on a new database race to create its tables, and all but one fail.

Backend store: BACKEND_STORE_URI, else the bundled PostgreSQL (user and database `mlflow`, password
POSTGRES_PASSWORD). Artifacts: ARTIFACTS_DESTINATION at MLFLOW_S3_ENDPOINT_URL (empty: AWS), else the
bundled object store. The URI reaches MLflow through its environment, never a command line or a log.
"""

from __future__ import annotations

import os
import sys
from urllib.parse import quote

BUNDLED_DESTINATION = "s3://mlflow-artifacts"  # deploy/objectstore.sh makes the bucket
BUNDLED_ENDPOINT = "http://objectstore:9000"


def backend_store_uri() -> str:
    """The database URI: BACKEND_STORE_URI, else the bundled PostgreSQL's."""
    configured = os.environ.get("BACKEND_STORE_URI", "").strip()
    if configured:
        return configured
    password = quote(os.environ.get("POSTGRES_PASSWORD", ""), safe="")
    # +psycopg2: a bare postgresql:// makes SQLAlchemy 2.1 load psycopg 3, which the image lacks.
    return f"postgresql+psycopg2://mlflow:{password}@postgres:5432/mlflow?connect_timeout=3"


def artifacts_destination(environ: dict[str, str]) -> str:
    """The S3 destination; sets or clears MLFLOW_S3_ENDPOINT_URL in `environ` to match it."""
    configured = environ.get("ARTIFACTS_DESTINATION", "").strip()
    if not configured:
        environ["MLFLOW_S3_ENDPOINT_URL"] = BUNDLED_ENDPOINT
        return BUNDLED_DESTINATION
    if not environ.get("MLFLOW_S3_ENDPOINT_URL", "").strip():
        environ.pop("MLFLOW_S3_ENDPOINT_URL", None)  # AWS itself
    return configured


def migrate() -> None:
    """Create or upgrade the schema (`mlflow db upgrade`, in-process; it waits ~100 s for the database)."""
    from mlflow.db import commands

    commands.main(["upgrade", backend_store_uri()], standalone_mode=False)
    print("tracking.py: the database schema is up to date", flush=True)


def serve() -> None:
    """Replace this process with `mlflow server` (one uvicorn worker, artifacts proxied)."""
    environ = dict(os.environ)
    environ["MLFLOW_BACKEND_STORE_URI"] = backend_store_uri()
    destination = artifacts_destination(environ)
    command = [sys.executable, "-m", "mlflow", "server", "--host=0.0.0.0", "--port=5000", "--workers=1"]
    command.append(f"--artifacts-destination={destination}")
    os.execve(sys.executable, command, environ)


if __name__ == "__main__":
    {"migrate": migrate, "serve": serve}[sys.argv[1]]()
