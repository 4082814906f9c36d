"""`up` starts the embedded server once, `down` stops it with its workers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from registry import localserver
from registry.config import load_settings
from tests.conftest import ROOT, free_port


def registry(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "registry", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        timeout=180,
    )


def test_up_is_idempotent_and_down_stops_the_server_and_its_workers(tmp_path: Path) -> None:
    port = free_port()
    env = {"MLFLOW_PORT": str(port), "REGISTRY_HOME": str(tmp_path / "home"), "MLFLOW_TRACKING_URI": ""}
    url = f"http://127.0.0.1:{port}"
    try:
        first = registry("up", env=env)
        assert first.returncode == 0, first.stderr
        assert f"MLflow server started at {url}" in first.stdout
        assert localserver.health_ok(url)
        assert (tmp_path / "home" / "mlflow.db").exists()
        second = registry("up", env=env)
        assert (second.returncode, second.stdout.strip()) == (0, f"MLflow server already running at {url}")
        assert registry("up", "--quiet", env=env).stdout == ""
        pgid = int((tmp_path / "home" / "server.pid").read_text())
    finally:
        stopped = registry("down", env=env)
    assert stopped.returncode == 0 and "stopped" in stopped.stdout
    assert not localserver.health_ok(url)
    group = subprocess.run(["pgrep", "-g", str(pgid)], capture_output=True, text=True)
    assert group.stdout.strip() == ""
    assert "no local MLflow server" in registry("down", env=env).stdout


def test_up_does_nothing_when_the_tracking_uri_is_another_host() -> None:
    settings = load_settings({"MLFLOW_TRACKING_URI": "http://mlflow.example:5000"}, env_file=None)
    assert "not this machine" in localserver.start(settings)
