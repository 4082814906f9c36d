"""`serve` for real: a `python -m registry serve` process on the test MLflow server, followed through
promotions, rollbacks, broken versions, a deleted alias, a registry outage and a restart (with two
worker processes).

One model and one `serve` process (events on, polling every 60 s: every switch it makes within the
tests' seconds came from an event) are shared by the module; the outage and restart use a second
process that follows by polling only, through a proxy that can be cut.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from registry import hooks
from tests.conftest import ROOT, Server, free_port

SECRET = "serve-test-secret"
START_TIMEOUT = 90.0  # a loaded 2-core machine: importing mlflow and the first load take seconds
SWITCH_TIMEOUT = 20.0
IRIS = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]
ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]
SPLIT = {"dataframe_split": {"columns": IRIS, "data": ROWS}}


@dataclasses.dataclass
class Served:
    """The module's model and its `serve` process."""

    url: str
    server_url: str
    model: str
    good: list[int]  # three loadable versions
    broken: int  # artifacts missing: cannot be loaded
    misfit: int  # loads, but fails on its own input example
    log: Path
    client: Any


def start_serve(env: dict[str, str], port: int, log: Path, *args: str) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "registry", "serve", "--port", str(port), *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": str(ROOT), **env},
            cwd=log.parent,  # no .env there
        )


def wait_for(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            found = check()
        except requests.RequestException:
            found = None
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.05)


def model_state(url: str) -> dict[str, Any]:
    answer = requests.get(f"{url}/model", timeout=5)
    assert answer.status_code == 200
    assert answer.headers["X-Model-Version"] == str(answer.json()["version"] or "none")
    return dict(answer.json())


def serving(url: str, version: int, timeout: float = SWITCH_TIMEOUT) -> dict[str, Any]:
    return dict(
        wait_for(lambda: (s := model_state(url))["version"] == version and s, timeout, f"version {version}")
    )


def reported(url: str, text: str) -> dict[str, Any]:
    found = wait_for(
        lambda: text in ((s := model_state(url))["last_error"] or "") and s, SWITCH_TIMEOUT, text
    )
    return dict(found)


def stop(process: subprocess.Popen[bytes]) -> int:
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise


def serve_env(url: str, model: str) -> dict[str, str]:
    return {
        "MLFLOW_TRACKING_URI": url,
        "MODEL_NAME": model,
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
        "MLFLOW_HTTP_REQUEST_TIMEOUT": "5",
    }


def register_misfit(client: Any, model: str) -> int:
    """A version that loads, but whose stored input example it cannot predict (3 of its 4 columns)."""
    import mlflow
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    from registry.train import pip_requirements

    features, target = load_iris(return_X_y=True, as_frame=True)
    classifier = LogisticRegression(max_iter=200).fit(features, target)
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(
            classifier, name="model", input_example=features.iloc[:2, :3], pip_requirements=pip_requirements()
        )
    return int(client.create_model_version(model, info.model_uri, model_id=info.model_id).version)


@pytest.fixture(scope="module")
def served(
    server: Server, model_source: tuple[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    from mlflow import MlflowClient

    client = MlflowClient(server.url, registry_uri=server.url)
    model = f"serve_{uuid.uuid4().hex[:8]}"
    source, model_id = model_source
    client.create_registered_model(model)
    good = [int(client.create_model_version(model, source, model_id=model_id).version) for _ in range(3)]
    run = client.create_run(client.create_experiment(model))
    broken = int(
        client.create_model_version(model, f"runs:/{run.info.run_id}/model", run_id=run.info.run_id).version
    )
    misfit = register_misfit(client, model)
    client.set_registered_model_alias(model, "prod", str(good[0]))

    folder = tmp_path_factory.mktemp("serve")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**serve_env(server.url, model), "SERVE_POLL_SECONDS": "60", "SERVE_HOOK_URL": f"{url}/hooks",
           "SERVE_HOOK_SECRET": SECRET}  # fmt: skip
    log = folder / "serve.log"
    process = start_serve(env, port, log)
    try:
        wait_for(lambda: requests.get(f"{url}/ping", timeout=5).status_code == 200, START_TIMEOUT, "/ping")
        yield Served(url, server.url, model, good, broken, misfit, log, client)
    finally:
        code = stop(process)
    assert code == 0, log.read_text()
    assert not [w for w in client.list_webhooks() if w.url == f"{url}/hooks"], "serve left its webhook behind"


def predict(url: str, body: Any = SPLIT) -> requests.Response:
    return requests.post(f"{url}/invocations", json=body, timeout=30)


def test_it_speaks_mlflows_scoring_protocol_and_names_the_version_on_every_response(served: Served) -> None:
    first = served.good[0]
    serving(served.url, first)
    records = [dict(zip(IRIS, row, strict=True)) for row in ROWS]
    for body in (SPLIT, {"dataframe_records": records}, {"inputs": records}, {"instances": records}):
        answer = predict(served.url, body)
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"predictions": [0, 2]}
        assert (answer.headers["X-Model-Version"], answer.headers["X-Model-Alias"]) == (str(first), "prod")
    for path in ("/ping", "/health", "/version", "/model", "/nothing"):
        answer = requests.get(f"{served.url}{path}", timeout=5)
        assert answer.status_code == (404 if path == "/nothing" else 200)
        assert (answer.headers["X-Model-Version"], answer.headers["X-Model-Alias"]) == (str(first), "prod")
    state = model_state(served.url)
    run_id = served.client.get_model_version(served.model, str(first)).run_id
    assert {k: state[k] for k in ("model", "alias", "version", "run_id", "last_error")} == {
        "model": served.model, "alias": "prod", "version": first, "run_id": run_id, "last_error": None,
    }  # fmt: skip
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", state["loaded_at"]) and state["events"] == "on"


def test_malformed_input_is_400_with_mlflows_error_body_never_500(served: Served) -> None:
    bodies: list[Any] = [
        b"not json", b"[1, 2]", {"foo": 1}, {"dataframe_split": "x"}, {"dataframe_records": 5},
        {"dataframe_split": {"columns": ["a"], "data": [[1, 2, 3]]}}, {"inputs": [[1, 2]]},
        {"instances": None}, {"dataframe_records": [{c: "abc" for c in IRIS}]}, {"inputs": {"x": [1]}},
        b"\xff\xfe",
    ]  # fmt: skip
    for body in bodies:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        answer = requests.post(f"{served.url}/invocations", data=raw, headers=headers, timeout=30)
        assert answer.status_code == 400, (body, answer.status_code, answer.text)
        error = answer.json()
        assert error["error_code"] and error["message"], error
        assert answer.headers["X-Model-Version"] == str(served.good[0])
    missing_type = requests.post(f"{served.url}/invocations", data=b"{}", timeout=30)
    assert missing_type.status_code == 415  # MLflow's answer to a content type it does not read
    assert predict(served.url).status_code == 200  # nothing died


def test_no_request_fails_while_versions_are_promoted_and_rolled_back_ten_times(
    served: Served, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REGISTRY_GATES", "false")  # the gates load each version: not what is tested here
    first, second = served.good[:2]
    assert cli("stage", "--model", served.model, "--version", first, "--stage", "Production").code == 0
    serving(served.url, first)
    seen: list[tuple[int, str]] = []
    stop_sending = threading.Event()

    def send() -> None:
        with requests.Session() as session:
            while not stop_sending.is_set():
                try:
                    answer = session.post(f"{served.url}/invocations", json=SPLIT, timeout=30)
                    seen.append((answer.status_code, answer.headers.get("X-Model-Version", "")))
                except requests.RequestException as exc:
                    seen.append((0, type(exc).__name__))

    senders = [threading.Thread(target=send) for _ in range(2)]
    for sender in senders:
        sender.start()
    try:
        for _ in range(5):
            assert (
                cli("stage", "--model", served.model, "--version", second, "--stage", "Production").code == 0
            )
            serving(served.url, second)
            assert cli("rollback", "--model", served.model).code == 0
            serving(served.url, first)
    finally:
        stop_sending.set()
        for sender in senders:
            sender.join()
    failed = [entry for entry in seen if entry[0] != 200]
    assert not failed, f"{len(failed)} of {len(seen)} requests failed: {failed[:5]}"
    assert {version for _, version in seen} == {str(first), str(second)} and len(seen) > 50
    log = served.log.read_text()
    assert (
        log.count(f"from version {first} to {second}") == 5
        and log.count(f"from version {second} to {first}") == 5
    )


def test_a_version_that_fails_to_load_or_to_predict_its_example_is_not_switched_to(served: Served) -> None:
    client, model, good = served.client, served.model, served.good[0]
    client.set_registered_model_alias(model, "prod", str(good))
    serving(served.url, good)
    for bad, why in ((served.broken, "cannot be loaded"), (served.misfit, "fails on its own input example")):
        client.set_registered_model_alias(model, "prod", str(bad))
        state = reported(served.url, f"not switching to version {bad}")
        assert why in state["last_error"] and state["version"] == good and state["alias_version"] == bad
        answer = predict(served.url)
        assert (answer.status_code, answer.headers["X-Model-Version"]) == (200, str(good))
    assert served.log.read_text().count(f"not switching to version {served.broken}") == 1  # one log line
    client.set_registered_model_alias(model, "prod", str(good))
    assert wait_for(
        lambda: model_state(served.url)["last_error"] is None, SWITCH_TIMEOUT, "the error to clear"
    )


def test_a_deleted_alias_keeps_the_model_serving_and_says_so(served: Served) -> None:
    client, model, good = served.client, served.model, served.good[2]
    client.set_registered_model_alias(model, "prod", str(good))
    serving(served.url, good)
    client.delete_registered_model_alias(model, "prod")
    state = reported(served.url, "is not set")
    assert state["version"] == good and state["alias_version"] is None
    assert predict(served.url).headers["X-Model-Version"] == str(good)
    client.set_registered_model_alias(model, "prod", str(served.good[0]))
    serving(served.url, served.good[0])


def test_forged_and_replayed_deliveries_are_refused_and_change_nothing(served: Served) -> None:
    before = model_state(served.url)
    body = json.dumps({"entity": "model_version_alias", "action": "created",
                       "data": {"name": served.model, "alias": "prod", "version": "1"}}).encode()  # fmt: skip
    stamp, delivery = str(int(time.time())), str(uuid.uuid4())

    def deliver(secret: str, when: str = stamp, ident: str = delivery) -> requests.Response:
        signature = hooks.sign(secret, ident, when, body)
        headers = {
            hooks.DELIVERY_HEADER: ident,
            hooks.TIMESTAMP_HEADER: when,
            hooks.SIGNATURE_HEADER: signature,
        }
        return requests.post(f"{served.url}/hooks", data=body, headers=headers, timeout=5)

    assert deliver("wrong secret").status_code == 401
    unsigned = requests.post(f"{served.url}/hooks", data=body, timeout=5)
    assert unsigned.status_code == 401 and "missing" in unsigned.json()["message"]
    assert deliver(SECRET, when=str(int(time.time()) - 3600)).status_code == 401  # stale
    accepted = deliver(SECRET)
    assert accepted.status_code == 200 and accepted.json()["follows"] is True
    replayed = deliver(SECRET)
    assert replayed.status_code == 409 and "replay" in replayed.json()["message"]
    after = model_state(served.url)
    assert (after["version"], after["loaded_at"]) == (before["version"], before["loaded_at"])


class SwitchableProxy:
    """A reverse proxy to the MLflow server on a fixed port that can be taken down and brought back."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.httpd: ThreadingHTTPServer | None = None

    def up(self) -> None:
        upstream = self.upstream

        class Forward(BaseHTTPRequestHandler):
            def _forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                answer = requests.request(
                    self.command, upstream + self.path, data=body, headers=headers, timeout=30
                )
                self.send_response(answer.status_code)
                for key, value in answer.headers.items():
                    if key.lower() not in (
                        "transfer-encoding",
                        "connection",
                        "content-length",
                        "content-encoding",
                    ):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            do_GET = do_POST = do_PATCH = do_DELETE = _forward

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Forward)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def down(self) -> None:
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None


def test_polling_follows_the_alias_rides_out_a_registry_outage_and_a_restart_picks_up_the_alias(
    served: Served, tmp_path: Path
) -> None:
    client, model = served.client, served.model
    first, second, third = served.good
    client.set_registered_model_alias(model, "prod", str(second))
    proxy = SwitchableProxy(served.server_url)
    proxy.up()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**serve_env(proxy.url, model), "SERVE_POLL_SECONDS": "0.3"}  # no SERVE_HOOK_URL: polling only
    log = tmp_path / "serve.log"
    process = start_serve(env, port, log)
    try:
        wait_for(lambda: requests.get(f"{url}/ping", timeout=5).status_code == 200, START_TIMEOUT, "/ping")
        assert model_state(url)["version"] == second and model_state(url)["events"] == "off"
        client.set_registered_model_alias(model, "prod", str(third))
        serving(url, third)

        proxy.down()  # the registry goes away: keep serving, say so, retry quietly
        state = reported(url, "cannot read")
        assert state["version"] == third
        for _ in range(3):
            assert predict(url).headers["X-Model-Version"] == str(third)
        time.sleep(1.0)  # several failed polls ...
        assert log.read_text().count("cannot read") == 1, log.read_text()  # ... one log line
        proxy.up()
        assert wait_for(lambda: model_state(url)["last_error"] is None, SWITCH_TIMEOUT, "the registry back")
    finally:
        assert stop(process) == 0, log.read_text()

    client.set_registered_model_alias(model, "prod", str(first))  # moved while nothing serves
    process = start_serve(env, port, log, "--workers", "2")  # and restarted with two worker processes
    try:
        wait_for(lambda: requests.get(f"{url}/ping", timeout=5).status_code == 200, START_TIMEOUT, "/ping")
        assert model_state(url)["version"] in (first, None)  # None: this worker is still loading
        client.set_registered_model_alias(model, "prod", str(third))
        # Each request comes on a new connection, which either worker may take: both follow the move.
        wait_for(
            lambda: {predict(url).headers["X-Model-Version"] for _ in range(20)} == {str(third)},
            START_TIMEOUT,
            f"both workers on version {third}",
        )
    finally:
        assert stop(process) == 0, log.read_text()
        proxy.down()


def test_serve_exits_3_within_seconds_in_one_line_when_the_server_is_down(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{free_port()}"}
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "registry", "serve", "--port", str(free_port())],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60,
    )  # fmt: skip
    assert done.returncode == 3, done.stderr
    assert done.stderr.count("\n") == 1 and "cannot reach the MLflow server" in done.stderr
    assert time.monotonic() - started < 10
