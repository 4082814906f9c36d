"""The lifecycle against `mlflow server --app-name basic-auth`: EDIT is enough, READ is refused."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from registry import localserver
from tests.conftest import ROOT, free_port

ADMIN_PASSWORD = "admin-password-for-tests"
ALICE_PASSWORD = "alice-password-for-tests"
BOB_PASSWORD = "bob-password-for-tests!!"

pytest.importorskip("flask_wtf", reason="needs the `auth` extra (mlflow[auth])")


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    home = tmp_path_factory.mktemp("mlflow-auth")
    config = home / "basic_auth.ini"
    config.write_text(
        "[mlflow]\ndefault_permission = READ\n"
        f"database_uri = sqlite:///{home / 'auth.db'}\n"
        f"admin_username = admin\nadmin_password = {ADMIN_PASSWORD}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
        "auth_cache_ttl_seconds = 60\n"  # skip re-hashing the password on every request
    )
    port = free_port()
    env = {
        **os.environ,
        "MLFLOW_AUTH_CONFIG_PATH": str(config),
        "MLFLOW_FLASK_SERVER_SECRET_KEY": uuid.uuid4().hex,
    }
    command = [*localserver.server_command(home, "127.0.0.1", port, 1), "--app-name", "basic-auth"]
    url = f"http://127.0.0.1:{port}"
    process = localserver.launch(command, home / "server.log", env)
    localserver.wait_healthy(url, process, 90, home / "server.log")
    try:
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def as_user(
    url: str, user: str, password: str, *args: str, experiment: str = ""
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "MLFLOW_TRACKING_URI": url,
        "MLFLOW_TRACKING_USERNAME": user,
        "MLFLOW_TRACKING_PASSWORD": password,
        "EXPERIMENT_NAME": experiment,
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
    }
    env.pop("REGISTRY_ACTOR", None)
    return subprocess.run(
        [sys.executable, "-m", "registry", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        cwd=Path(url and ROOT),
    )


@pytest.fixture(scope="module")
def granted(auth_server: str) -> dict[str, str]:
    """Users alice (EDIT on the experiment and the model) and bob (READ, the default), and a model
    with version 1 made by the admin for bob to try to change."""
    from mlflow import MlflowClient
    from mlflow.server.auth.client import AuthServiceClient

    model, experiment = f"auth_{uuid.uuid4().hex[:8]}", f"exp_{uuid.uuid4().hex[:8]}"
    saved = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")}
    os.environ.update({"MLFLOW_TRACKING_USERNAME": "admin", "MLFLOW_TRACKING_PASSWORD": ADMIN_PASSWORD})
    try:
        admin = AuthServiceClient(auth_server)
        admin.create_user("alice", ALICE_PASSWORD)
        admin.create_user("bob", BOB_PASSWORD)
        client = MlflowClient(auth_server, registry_uri=auth_server)
        experiment_id = client.create_experiment(experiment)
        client.create_registered_model(model)
        client.create_registered_model(f"{model}_read")
        client.create_model_version(f"{model}_read", "fake:/model", await_creation_for=0)
        if hasattr(admin, "grant_user_permission"):  # MLflow >= 3.13
            admin.grant_user_permission("alice", "experiment", experiment_id, "EDIT")
            admin.grant_user_permission("alice", "registered_model", model, "EDIT")
        else:  # the lowest MLflow this project supports (3.11)
            admin.create_experiment_permission(experiment_id, "alice", "EDIT")
            admin.create_registered_model_permission(model, "alice", "EDIT")
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return {"model": model, "experiment": experiment}


def test_a_user_with_edit_runs_the_whole_lifecycle(auth_server: str, granted: dict[str, str]) -> None:
    model, experiment = granted["model"], granted["experiment"]

    def alice(*args: str) -> subprocess.CompletedProcess[str]:
        done = as_user(auth_server, "alice", ALICE_PASSWORD, *args, "--model", model, experiment=experiment)
        assert done.returncode == 0, done.stderr
        return done

    assert "version 1" in alice("train").stdout
    assert "version 2" in alice("train").stdout
    alice("stage", "--version", "1", "--stage", "Production", "--alias", "prod")
    alice("stage", "--version", "2", "--stage", "Production", "--alias", "prod")
    alice("alias", "--name", "champion", "--version", "2")
    alice("rollback")
    listed = alice("versions").stdout.splitlines()
    assert listed[2].split()[:2] == ["2", "Archived"] and listed[3].split()[:3] == ["1", "Production", "prod"]
    assert '"actor": "alice"' in alice("history", "--json").stdout
    assert ALICE_PASSWORD not in alice("versions").stdout


def test_a_read_only_user_is_told_permission_is_denied(auth_server: str, granted: dict[str, str]) -> None:
    model = f"{granted['model']}_read"
    for args in (
        ["stage", "--version", "1", "--stage", "Archived"],
        ["alias", "--name", "mine", "--version", "1"],
    ):
        done = as_user(auth_server, "bob", BOB_PASSWORD, *args, "--model", model)
        assert done.returncode == 3, done.stderr
        assert "permission denied" in done.stderr and done.stderr.count("\n") == 1
        assert BOB_PASSWORD not in done.stderr


def test_wrong_credentials_are_refused_with_exit_3(auth_server: str, granted: dict[str, str]) -> None:
    done = as_user(auth_server, "alice", "not-her-password-at-all", "versions", "--model", granted["model"])
    assert done.returncode == 3
    assert "refused the credentials (401)" in done.stderr and "not-her-password" not in done.stderr
