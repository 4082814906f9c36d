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
    ["train", "--c-param", "nan"],
    ["train", "--c-param", "inf"],
    ["train", "--c-param", "-1"],
    ["train", "--seed", "-1"],
    ["train", "--max-iter", "1" * 30],
    ["stage", "--version", "1" * 30, "--stage", "None"],
    ["alias", "--name", "prod\n", "--version", "1"],
    ["alias", "--name", "prod\x1b[2J", "--version", "1"],
    ["versions", "--model", "iris_clf\n"],
    ["versions", "--model", "iris_clf.lock"],
    ["versions", "--model", "iris_clf.ledger"],
    ["history", "--at", "0001-01-01T00:00:00+01:00"],
    ["history", "--at", "9999-12-31T23:59:59-01:00"],
    ["prune-locks", "--older-than", "nan"],
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


def test_a_server_error_is_named_as_such_not_as_an_unreachable_server(run_module: Any) -> None:
    """An HTTP 500 (the server's database down, say) is exit 3 with what happened, in one line."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from threading import Thread

    class Failing(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(500)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    with ThreadingHTTPServer(("127.0.0.1", 0), Failing) as failing:
        Thread(target=failing.serve_forever, daemon=True).start()
        uri = f"http://127.0.0.1:{failing.server_address[1]}"
        outcome = run_module("versions", extra_env={"MLFLOW_TRACKING_URI": uri})
        failing.shutdown()
    assert (outcome.code, outcome.err.count("\n")) == (3, 1), outcome.err
    assert f"the MLflow server at {uri} failed on" in outcome.err and "HTTP 500" in outcome.err
    assert "cannot reach" not in outcome.err


def test_a_version_whose_artifacts_are_gone_cannot_be_loaded_rather_than_not_exist(
    run_module: Any, client: Any, model: str
) -> None:
    run = client.create_run(client.create_experiment(model))
    client.create_registered_model(model)
    client.create_model_version(model, f"runs:/{run.info.run_id}/model", run_id=run.info.run_id)
    outcome = run_module("predict", "--model", model, "--version", "1")
    assert (outcome.code, outcome.err.count("\n")) == (5, 1), outcome.err
    assert "cannot be loaded" in outcome.err and "does not exist on" not in outcome.err
