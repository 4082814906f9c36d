"""`promote` copies a version into another registered model, on the same server or on a second real
server: at most once, gated against the target's champion, with lineage (no credentials) and ledger
events on both sides; an interrupted promotion is named by `doctor` and finished by a retry."""

from __future__ import annotations

import filecmp
import http.client
import json
import shlex
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from invoke import MockContext, Result

import tasks
from bench.server import MlflowServer
from tests.conftest import Server, aliases, commands, history

SECRETS = ("bob", "s3cret", "alice", "pa55")


@pytest.fixture(scope="module")
def second(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    """Another real MLflow server: the production environment."""
    with MlflowServer(tmp_path_factory.mktemp("second-server"), workers=1) as started:
        yield started


@pytest.fixture
def no_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """The credentials a command exports are taken back after the test (none of the servers checks them)."""
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "")


def target_client(url: str) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(url, registry_uri=url)


def numbers(client: Any, name: str) -> list[int]:
    return sorted(int(mv.version) for mv in client.search_model_versions(f"name='{name}'"))


def test_a_same_server_promotion_copies_once_with_lineage_and_is_gated_against_the_champion(
    cli: Any, client: Any, server: Server, model: str, make_versions: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_versions(2)
    client.set_model_version_tag(model, "1", "accuracy", "0.95")
    client.set_model_version_tag(model, "2", "accuracy", "0.90")
    prod = f"prod.{model}"
    promote = ("promote", "--model", model, "--to-model", prod, "--to-alias", "champion")

    dry = cli(*promote, "--version", 1, "--dry-run")
    assert dry.code == 0, dry.err
    assert f"would copy {model} version 1 to {prod} as a new version" in dry.out
    assert "would change alias champion: (unset) -> the copy" in dry.out and "Dry run" in dry.out
    assert not client.search_registered_models(f"name = '{prod}'")

    done = cli(*promote, "--version", 1, "--reason", "release 1")
    assert done.code == 0, done.err
    assert f"Copied {model} version 1 to {prod} version 1." in done.out
    copy = client.get_model_version(prod, "1")
    source = client.get_model_version(model, "1")
    assert copy.source == f"models:/{model}/1" and copy.run_id == source.run_id  # copy_model_version's
    assert copy.tags["accuracy"] == "0.95"
    assert copy.tags["registry.source.server"] == server.url
    assert (copy.tags["registry.source.model"], copy.tags["registry.source.version"]) == (model, "1")
    assert copy.tags["registry.source.run_id"] == source.run_id and copy.tags["registry.promotion_id"]
    assert aliases(client, prod) == {"champion": 1}

    again = cli(*promote, "--version", 1)
    assert again.code == 0 and "not copied again" in again.out, again.out + again.err
    assert numbers(client, prod) == [1]
    protected = cli("promote", "--model", model, "--version", 1, "--to-model", prod, "--to-alias", "prod")
    assert protected.code == 5 and "protected" in protected.err and "prod" not in aliases(client, prod)

    worse = cli(*promote, "--version", 2)
    assert worse.code == 5 and "metric gate" in worse.err and "0.9000" in worse.err
    assert numbers(client, prod) == [1]
    forced = cli(*promote, "--version", 2, "--force", "--reason", "hotfix")
    assert forced.code == 0, forced.err
    assert numbers(client, prod) == [1, 2] and aliases(client, prod) == {"champion": 2}

    events = [(e["action"], e["version"], e["from"], e["alias"], e["result"]) for e in history(cli, prod)]
    assert events[1:] == [
        ("promote", 1, f"models:/{model}/1", None, "ok"),
        ("alias", 1, None, "champion", "ok"),
        ("refused", None, f"models:/{model}/1", None, "refused"),
        ("refused", None, f"models:/{model}/2", None, "refused"),
        ("promote", 2, f"models:/{model}/2", None, "forced"),
        ("alias", 2, "1", "champion", "forced"),
    ]
    back = [(e["action"], e["version"], e["to"]) for e in history(cli, model) if e["action"] == "promote"]
    assert back == [("promote", 1, f"models:/{prod}/1"), ("promote", 2, f"models:/{prod}/2")]

    monkeypatch.setenv("REGISTRY_GATES", "false")  # rollback on the target, like on any model
    for number in (1, 2):
        assert cli("stage", "--model", prod, "--version", number, "--stage", "Production").code == 0
    assert cli("rollback", "--model", prod).code == 0
    assert client.get_model_version(prod, "1").current_stage == "Production"


def test_a_promotion_to_another_server_carries_the_model_and_predicts_the_same(
    cli: Any,
    run_module: Any,
    client: Any,
    server: Server,
    second: MlflowServer,
    model: str,
    make_versions: Any,
    monkeypatch: pytest.MonkeyPatch,
    no_credentials: None,
    tmp_path: Path,
) -> None:
    import mlflow.artifacts

    make_versions(1)
    client.set_model_version_tag(model, "1", "accuracy", "0.95")
    host = urlsplit(server.url).netloc
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://bob:s3cret@{host}")
    target = f"http://alice:pa55@127.0.0.1:{second.port}"
    prod = f"prod.{model}"
    promote = ("promote", "--model", model, "--version", 1, "--to-model", prod, "--to-tracking-uri", target)

    dry = cli(*promote, "--to-alias", "champion", "--dry-run")
    assert (
        dry.code == 0 and f"would copy {model} version 1 on {server.url} to {prod} on {second.url}" in dry.out
    )
    assert not target_client(second.url).search_registered_models(f"name = '{prod}'")
    done = cli(*promote, "--to-alias", "champion", "--reason", "release")
    assert done.code == 0, done.err
    assert f"to {prod} on {second.url} version 1." in done.out and not done.err, done.err
    assert not any(secret in done.out + done.err for secret in SECRETS)
    there = target_client(second.url)
    copy = there.get_model_version(prod, "1")
    assert copy.status == "READY" and copy.tags["accuracy"] == "0.95"
    assert copy.tags["registry.source.server"] == server.url
    assert copy.tags["registry.source.run_id"] == client.get_model_version(model, "1").run_id
    run = there.get_run(copy.run_id)
    every_tag = {**copy.tags, **run.data.tags}
    assert not any(secret in f"{key}={value}" for key, value in every_tag.items() for secret in SECRETS)
    assert aliases(there, prod) == {"champion": 1}

    # The artifacts are the source's, file for file (MLmodel with its signature, input example,
    # pinned requirements), and the copy predicts the same through the tool.
    folders = [
        mlflow.artifacts.download_artifacts(
            artifact_uri=reader.get_model_version_download_uri(name, "1"),
            dst_path=str(tmp_path / name),
            tracking_uri=url,
        )
        for reader, name, url in ((client, model, server.url), (there, prod, second.url))
    ]
    compared = filecmp.dircmp(*folders)
    assert {"MLmodel", "requirements.txt", "input_example.json"} <= set(compared.same_files)
    assert not compared.diff_files and not compared.left_only and not compared.right_only
    here = cli("predict", "--model", model, "--version", 1)
    far = run_module("predict", "--model", prod, "--version", 1, "--tracking-uri", second.url)
    assert here.code == far.code == 0, here.err + far.err
    assert here.out.splitlines()[1] == far.out.splitlines()[1]

    again = cli(*promote, "--to-alias", "champion")
    assert again.code == 0 and "not copied again" in again.out, again.out + again.err
    assert numbers(there, prod) == [1]
    far_history = json.loads(cli("history", "--json", "--model", prod, "--tracking-uri", second.url).out)
    assert [(e["action"], e["version"]) for e in far_history][1:] == [("promote", 1), ("alias", 1)]
    assert far_history[1]["from"] == f"models:/{model}/1 on {server.url}"
    # In-process, a command with --tracking-uri leaves MLflow's environment on that server: name ours.
    near_history = json.loads(cli("history", "--json", "--model", model, "--tracking-uri", server.url).out)
    back = [(e["version"], e["to"]) for e in near_history if e["action"] == "promote"]
    assert back == [(1, f"models:/{prod}/1 on {second.url}")]


@contextmanager
def cut_proxy(
    upstream: str, cut: Callable[[str, str, bytes], bool], then: Callable[[], None]
) -> Iterator[str]:
    """A reverse proxy that forwards everything until a request `cut(method, path, body)` picks: that
    one is applied by the server, then `then()` runs (such as killing the server) and its answer is
    lost (the connection closes). Later requests are forwarded as usual (to whatever answers)."""
    target = urlsplit(upstream)
    fired = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def _forward(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            connection = http.client.HTTPConnection(target.hostname or "127.0.0.1", target.port, timeout=30)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
            try:
                connection.request(self.command, self.path, body=body, headers=headers)
                answer = connection.getresponse()
                payload = answer.read()
            except OSError:
                self.close_connection = True
                return
            if not fired.is_set() and cut(self.command, self.path.split("?")[0], body):
                fired.set()
                then()
                self.close_connection = True
                return
            self.send_response(answer.status)
            for key, value in answer.getheaders():
                if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _forward

        def log_message(self, format: str, *args: object) -> None:
            pass

    proxy = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{proxy.server_address[1]}"
    finally:
        proxy.shutdown()
        proxy.server_close()


def creating_version_of(name: str) -> Callable[[str, str, bytes], bool]:
    def pick(method: str, path: str, body: bytes) -> bool:
        return path.endswith("/model-versions/create") and json.loads(body or b"{}").get("name") == name

    return pick


def test_a_copy_whose_answer_is_lost_is_found_not_made_twice(
    cli: Any, second: MlflowServer, model: str, make_versions: Any
) -> None:
    make_versions(1)
    prod = f"prod.{model}"
    with cut_proxy(second.url, creating_version_of(prod), lambda: None) as lossy:
        done = cli(
            "promote", "--model", model, "--version", 1, "--to-model", prod, "--to-tracking-uri", lossy
        )
    assert done.code == 0, done.err
    assert numbers(target_client(second.url), prod) == [1]


def test_a_promotion_cut_off_by_a_dying_server_is_named_by_doctor_and_finished_by_a_retry(
    cli: Any,
    server: Server,
    second: MlflowServer,
    model: str,
    make_versions: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    make_versions(1)
    monkeypatch.setenv("LOCK_LEASE", "2")  # the dead command's lock ticket expires at once
    prod = f"prod.{model}"
    # --tracking-uri: in-process, a command run on the second server leaves MLflow's environment there.
    promote = ("promote", "--model", model, "--tracking-uri", server.url, "--version", 1, "--to-model", prod,
               "--to-alias", "champion")  # fmt: skip
    with cut_proxy(second.url, creating_version_of(prod), second.stop) as dying:
        cut = cli(*promote, "--to-tracking-uri", dying)
    second.start()
    assert cut.code == 3, cut.out + cut.err
    there = target_client(second.url)
    assert numbers(there, prod) == [1]  # the copy was made; its ledger event and alias were not

    far = ("--model", prod, "--tracking-uri", second.url)
    found = cli("doctor", *far)
    assert found.code == 6 and "version 1" in found.out and "no ledger event" in found.out, found.out

    retry = cli(*promote, "--to-tracking-uri", second.url)
    assert retry.code == 0, retry.err
    assert "not copied again" in retry.out and "alias champion: (unset) -> version 1" in retry.out
    assert numbers(there, prod) == [1] and aliases(there, prod) == {"champion": 1}
    assert cli("doctor", *far).code == 0


def test_invoke_promote_builds_one_quoted_command(task_env: None) -> None:
    c = MockContext(run=Result(stdout=""))
    tasks.promote(c, to_model="prod.iris_clf", alias="champion", to_tracking_uri="http://u:p@h:5000",
                  to_alias="champion", reason="it's time", dry_run=True)  # fmt: skip
    assert commands(c)[-1] == (
        f"{shlex.quote(sys.executable)} -m registry promote --to-model prod.iris_clf --alias champion "
        "--to-tracking-uri http://u:p@h:5000 --to-alias champion --reason 'it'\"'\"'s time' --dry-run"
    )
