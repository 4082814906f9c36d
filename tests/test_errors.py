"""Every failure is one line on stderr with the documented exit code, and no traceback."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from tests.conftest import ROOT, free_port

INPUT_ERRORS = [
    ["stage", "--version", "abc", "--stage", "Production"],
    ["stage", "--version", "0", "--stage", "Production"],
    ["stage", "--version", "-1", "--stage", "Production"],
    ["stage", "--version", "1.5", "--stage", "Production"],
    ["stage", "--version", "1", "--stage", "Prod"],
    ["stage", "--version", "1"],
    ["alias", "--name", "latest", "--version", "1"],
    ["alias", "--name", "V1", "--version", "1"],
    ["alias", "--name", "champion"],
    ["versions", "--limit", "0"],
    ["versions", "--model", ""],
    ["rollback", "--to", "x"],
    ["predict", "--uri", "runs:/x/model"],
    ["train", "--c-param", "abc"],
    ["nonsense"],
    [],
    ["--tracking-uri", "ftp://host", "versions"],
    ["--tracking-uri", "http://host:port", "versions"],
]


@pytest.mark.parametrize("args", INPUT_ERRORS, ids=[" ".join(a) or "(none)" for a in INPUT_ERRORS])
def test_input_errors_exit_2_with_one_line_and_without_importing_mlflow(args: list[str]) -> None:
    probe = (
        "import sys\nfrom registry.cli import main\ncode = main(sys.argv[1:])\n"
        "assert 'mlflow' not in sys.modules, 'mlflow was imported'\nraise SystemExit(code)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "MLFLOW_TRACKING_URI": "http://127.0.0.1:9"},
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1, done.stderr
    assert "Traceback" not in done.stderr and "usage:" not in done.stderr


def test_unknown_runner_in_dotenv_is_bad_input(run_module: Any, tmp_path: Any) -> None:
    (tmp_path / ".env").write_text("REGISTRY_RUNNER=kubernetes\n")
    outcome = run_module("versions")
    assert outcome.code == 2
    assert "REGISTRY_RUNNER" in outcome.err and outcome.err.count("\n") == 1


def test_a_down_server_fails_in_seconds_with_exit_3_and_without_credentials(run_module: Any) -> None:
    uri = f"http://alice:s3cret@127.0.0.1:{free_port()}"
    outcome = run_module(
        "versions", extra_env={"MLFLOW_TRACKING_URI": uri, "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2"}
    )
    assert outcome.code == 3
    assert outcome.err.count("\n") == 1 and "Traceback" not in outcome.err
    assert "cannot reach the MLflow server at http://127.0.0.1:" in outcome.err
    assert "s3cret" not in outcome.err + outcome.out and "alice" not in outcome.err


def test_unknown_model_and_version_exit_4_in_one_line(run_module: Any, model: str) -> None:
    for args in (
        ["versions", "--model", model],
        ["stage", "--model", model, "--version", "1", "--stage", "None"],
    ):
        outcome = run_module(*args)
        assert outcome.code == 4, outcome.err
        assert outcome.err.count("\n") == 1 and "does not exist" in outcome.err


def test_policy_refusal_exits_5(run_module: Any, model: str) -> None:
    outcome = run_module("stage", "--model", model, "--version", "1", "--stage", "Production", "--no-archive")
    assert outcome.code == 5
    assert outcome.err.count("\n") == 1
