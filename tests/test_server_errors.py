"""An HTTP 5xx is a server error: exit 3, one line, with the server's own words (issue 15, point 4).

MLflow's client retries a 5xx and then drops the answer; the tool asks once more, un-retried, and
quotes the first line of what the server says. The main case is a real `mlflow server` whose database
is broken; local stand-ins play a load balancer's HTML page, a JSON error after a write, and a server
that recovers.
"""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from bench.server import MlflowServer
from tests.conftest import ROOT, Outcome

# A hang, not a slow answer, is what these bounds tell apart.
BOUND = 60.0
SEARCH = "/api/2.0/mlflow/registered-models/search?max_results=1"
FIX = "it is up but broken: see its log (`invoke logs`), its database and artifact store"
NGINX_502 = (
    "<html>\r\n<head><title>502 Bad Gateway</title>\r\n<style>body { width: 35em; }</style></head>\r\n"
    "<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)


# One MLflow retry without backoff: its retries stay on, and a failure is quick.
CLI_ENV = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "0",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "5",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "REGISTRY_ACTOR": "tester",
}


def run_module(uri: str, *args: str, cwd: Path) -> tuple[Outcome, float]:
    """`python -m registry ARGS` against `uri` in a subprocess, as a user runs it; the outcome and
    the seconds it took."""
    environment = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(cwd), "PYTHONPATH": str(ROOT)}
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "registry", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**environment, **CLI_ENV, "MLFLOW_TRACKING_URI": uri},
        timeout=BOUND * 2,
    )
    return Outcome(done.returncode, done.stdout, done.stderr), time.monotonic() - started


@pytest.fixture
def cli_at(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Any:
    """The CLI in-process (MLflow imported once for the file), with the settings it exports to the
    environment put back afterwards; returns a runner like `run_module` (no session server needed)."""
    from registry.cli import main

    monkeypatch.chdir(tmp_path)
    for key, value in {**CLI_ENV, "MLFLOW_LOGGING_LEVEL": "ERROR"}.items():
        monkeypatch.setenv(key, value)
    for key in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MODEL_NAME", "LIFECYCLE"):
        monkeypatch.setenv(key, "")  # recorded, so what configure_mlflow sets is undone

    def run(uri: str, *args: str) -> tuple[Outcome, float]:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
        capsys.readouterr()
        started = time.monotonic()
        code = main(list(args))
        captured = capsys.readouterr()
        return Outcome(code, captured.out, captured.err), time.monotonic() - started

    return run


def assert_one_line_server_error(outcome: Outcome, seconds: float) -> None:
    assert (outcome.code, outcome.err.count("\n")) == (3, 1), outcome.err
    assert outcome.err.startswith("error: the MLflow server at ") and outcome.err.rstrip().endswith(FIX)
    assert "Traceback" not in outcome.err and "cannot reach" not in outcome.err
    assert seconds < BOUND, f"{seconds:.1f} s"


@pytest.fixture(scope="module")
def broken_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real MLflow server (SQLite) whose registry tables are dropped while it runs: every registry
    request then fails in the server's store, which answers 503 in its own words."""
    home = tmp_path_factory.mktemp("broken-server")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")  # no job runner: starts ~40% sooner
        server = MlflowServer(home, workers=1).start()
    try:
        # one answered read first: the server has been serving when its database breaks
        urllib.request.urlopen(f"{server.url}{SEARCH}", timeout=BOUND).close()
        database = sqlite3.connect(home / "mlflow.db")
        try:
            for table in ("model_versions", "registered_models"):
                database.execute(f"DROP TABLE {table}")
            database.commit()
        finally:
            database.close()
        yield server.url
    finally:
        server.stop()


@contextmanager
def failing_server(
    status: int, content_type: str, body: str, failures: int = 1_000
) -> Iterator[tuple[str, list[tuple[str, str, str]]]]:
    """A stand-in on 127.0.0.1 answering `status` with `body` to its first `failures` requests, then
    200 with an empty JSON object; yields its URL and (method, path, Authorization) of each request."""
    seen: list[tuple[str, str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            seen.append((self.command, self.path, self.headers.get("Authorization", "")))
            failing = len(seen) <= failures
            code, kind, text = (status, content_type, body) if failing else (200, "application/json", "{}")
            payload = text.encode()
            self.send_response(code)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PATCH = do_DELETE = _answer

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def test_a_broken_database_is_a_server_error_in_the_servers_own_words(
    broken_server: str, tmp_path: Path
) -> None:
    uri = broken_server.replace("http://", "http://alice:s3cret@")
    outcome, seconds = run_module(uri, "versions", "--model", "iris_clf", cwd=tmp_path)
    assert_one_line_server_error(outcome, seconds)
    assert f"the MLflow server at {broken_server} failed on " in outcome.err
    assert "(HTTP 503: (sqlite3.OperationalError) no such table: " in outcome.err, outcome.err
    assert "[SQL:" not in outcome.err  # only the first line of the server's message
    assert "s3cret" not in outcome.err + outcome.out and "alice" not in outcome.err


def test_a_load_balancers_html_page_is_quoted_without_its_markup(cli_at: Any) -> None:
    with failing_server(502, "text/html", NGINX_502) as (uri, seen):
        outcome, seconds = cli_at(uri, "versions", "--model", "iris_clf")
    assert_one_line_server_error(outcome, seconds)
    assert "(HTTP 502: 502 Bad Gateway); " in outcome.err, outcome.err
    # MLflow's client still retries (2 tries); then the tool asks the same read once more
    assert len(seen) == 3 and len({(method, path) for method, path, _ in seen}) == 1, seen
    assert seen[0][0] == "GET" and "?" in seen[0][1]


def test_the_servers_words_are_one_escaped_line_of_at_most_200_characters_and_carry_our_credentials(
    cli_at: Any,
) -> None:
    words = "store down \x1b[2J" + "x" * 500 + "\nsecond line"
    body = json.dumps({"error_code": "INTERNAL_ERROR", "message": words})
    with failing_server(500, "application/json", body) as (uri, seen):
        outcome, seconds = cli_at(
            uri.replace("http://", "http://alice:s3cret@"), "versions", "--model", "iris_clf"
        )
    assert_one_line_server_error(outcome, seconds)
    quoted = outcome.err.split("(HTTP 500: ", 1)[1].split("); it is up", 1)[0]
    assert quoted.startswith("store down \\x1b[2Jxxx") and quoted.endswith("x…"), outcome.err
    assert len(quoted) == 200 and "\x1b" not in outcome.err and "second line" not in outcome.err
    assert "s3cret" not in outcome.err + outcome.out and "alice" not in outcome.err
    basic = "Basic " + base64.b64encode(b"alice:s3cret").decode()
    assert [authorization for _, _, authorization in seen] == [basic] * 3


def test_a_server_that_answers_the_second_time_keeps_the_plain_server_error(cli_at: Any) -> None:
    with failing_server(500, "application/json", '{"message": "flaky"}', failures=2) as (uri, seen):
        outcome, seconds = cli_at(uri, "versions", "--model", "iris_clf")
    assert_one_line_server_error(outcome, seconds)
    assert "(HTTP 500); " in outcome.err and "flaky" not in outcome.err, outcome.err
    assert len(seen) == 3, seen


def test_a_failed_write_is_not_sent_again_the_diagnostic_is_a_read(cli_at: Any) -> None:
    body = json.dumps({"error_code": "TEMPORARILY_UNAVAILABLE", "message": "database is locked"})
    with failing_server(503, "application/json", body) as (uri, seen):
        outcome, seconds = cli_at(uri, "stage", "--model", "iris_clf", "--version", "1", "--stage", "Staging")
    assert_one_line_server_error(outcome, seconds)
    assert "(HTTP 503: database is locked); " in outcome.err, outcome.err
    writes, diagnostic = seen[:-1], seen[-1]
    assert len(writes) == 2 and {method for method, _, _ in writes} == {"POST"}, seen
    assert diagnostic[:2] == ("GET", SEARCH)


@pytest.mark.parametrize(
    ("status", "body", "words"),
    [(501, "<b>not here</b>\nsecond", "(HTTP 501: not here); "), (505, "", "(HTTP 505); ")],
)
def test_a_5xx_mlflow_does_not_retry_is_a_server_error_in_its_own_words(
    cli_at: Any, status: int, body: str, words: str
) -> None:
    with failing_server(status, "text/plain", body) as (uri, seen):
        outcome, seconds = cli_at(uri, "versions", "--model", "iris_clf")
    assert_one_line_server_error(outcome, seconds)
    assert words in outcome.err, outcome.err
    assert len(seen) == 1, seen  # answered at once: no retry, no second request
