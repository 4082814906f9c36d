"""Faults and bad input: nothing doubled, busy locks refused, down servers fast, secrets hidden."""

from __future__ import annotations

import contextlib
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from registry.client import Registry
from registry.config import with_tracking_uri
from tests.conftest import BOTH_LIFECYCLES, aliases, history, stages
from tests.faultproxy import fault_proxy

# Seconds within which an unreachable server is reported, process start included: generous for a
# loaded machine, far below the ~246 s MLflow's own retries take against a silent server.
FAST = 30


def snapshot(client: Any, cli: Any, model: str) -> tuple[Any, ...]:
    """What a command must not change: stages, aliases, version tags (the retired one of the aliases
    lifecycle), ledger, and which models exist."""
    tags = {mv.version: mv.tags for mv in client.search_model_versions(f"name='{model}'")}
    return stages(client, model), aliases(client, model), tags, history(cli, model), model_names(client)


def model_names(client: Any) -> list[str]:
    """Every registered model's name, page by page (the server returns at most 1,000 a page)."""
    names: list[str] = []
    token = None
    while True:
        page = client.search_registered_models(max_results=1000, page_token=token)
        names += [m.name for m in page]
        token = page.token
        if not token:
            return sorted(names)


def populate(cli: Any, client: Any, model: str, make_versions: Any) -> str:
    """Versions 1-3 of `model`: v1 Production with alias prod, v2 Staging, v3 deleted."""
    make_versions(3)
    assert (
        cli("stage", "--model", model, "--version", 1, "--stage", "Production", "--alias", "prod").code == 0
    )
    assert cli("stage", "--model", model, "--version", 2, "--stage", "Staging").code == 0
    client.delete_model_version(model, "3")
    return model


@pytest.fixture
def populated(cli: Any, client: Any, model: str, make_versions: Any) -> str:
    """A model of its own, populated (see `populate`)."""
    return populate(cli, client, model, make_versions)


SHARED: dict[tuple[str, str], str] = {}


@pytest.fixture
def shared_populated(
    cli: Any, client: Any, server: Any, model: str, make_versions: Any, lifecycle: str
) -> str:
    """One populated model per server and lifecycle, shared by the bad-input cases: each one proves
    it changed nothing, so the next one finds it as it was made."""
    key = (server.url, lifecycle)
    if key not in SHARED:
        SHARED[key] = populate(cli, client, model, make_versions)
    return SHARED[key]


BAD = [
    (4, ["versions", "--model", "no_such_model"]),
    (4, ["stage", "--model", "no_such_model", "--version", "1", "--stage", "Staging"]),
    (2, ["stage", "--version", "0", "--stage", "Staging"]),
    (2, ["stage", "--version", "-1", "--stage", "Staging"]),
    (2, ["stage", "--version", "abc", "--stage", "Staging"]),
    (2, ["stage", "--version", "1.5", "--stage", "Staging"]),
    (4, ["stage", "--version", "999", "--stage", "Staging"]),
    (4, ["stage", "--version", "3", "--stage", "Production"]),
    (2, ["stage", "--version", "2", "--stage", "Prod"]),
    (2, ["stage", "--version", "2", "--stage", ""]),
    (5, ["stage", "--version", "2", "--stage", "Production", "--no-archive"]),
    (2, ["alias", "--name", "latest", "--version", "2"]),
    (2, ["alias", "--name", "V1", "--version", "2"]),
    (2, ["alias", "--name", "two words", "--version", "2"]),
    (2, ["alias", "--name", "a" * 300, "--version", "2"]),
    (2, ["alias", "--name", "", "--version", "2"]),
    (4, ["alias", "--name", "ghost", "--delete"]),
    (4, ["alias", "--name", "release", "--version", "3"]),
    (4, ["rollback"]),
    (4, ["rollback", "--to", "999"]),
    (2, ["rollback", "--to", ""]),
    (2, ["stage", "--version", "2", "--stage", "Staging", "--reason", "x" * 2000]),
    (2, ["predict", "--uri", "runs:/abc/model"]),
    (4, ["predict", "--alias", "ghost"]),
    (2, ["versions", "--limit", "0"]),
    (2, ["--tracking-uri", "http://host:port", "versions"]),
    (2, ["--tracking-uri", "mlflow.example.com", "versions"]),
    (2, ["versions", "--model", "bad/name"]),
]


@BOTH_LIFECYCLES
@pytest.mark.parametrize(("code", "args"), BAD, ids=[" ".join(a)[:60] for _, a in BAD])
def test_bad_input_is_one_line_with_its_exit_code_and_changes_nothing(
    code: int, args: list[str], cli: Any, client: Any, shared_populated: str, lifecycle: str
) -> None:
    model = shared_populated
    with_model = args if "--model" in args else [*args, "--model", model]
    before = snapshot(client, cli, model)
    outcome = cli(*with_model)
    assert outcome.code == code, outcome.err
    assert outcome.err.startswith("error: ") and outcome.err.count("\n") == 1, outcome.err
    assert snapshot(client, cli, model) == before


def test_an_unknown_runner_in_dotenv_is_one_line_exit_2(
    cli: Any, client: Any, populated: str, tmp_path: Path
) -> None:
    before = snapshot(client, cli, populated)
    (tmp_path / ".env").write_text("REGISTRY_RUNNER=kubernetes\n")
    outcome = cli("stage", "--model", populated, "--version", 2, "--stage", "Production")
    assert (outcome.code, outcome.err.count("\n")) == (2, 1)
    (tmp_path / ".env").unlink()
    assert snapshot(client, cli, populated) == before


def test_a_registration_whose_answer_was_lost_is_not_doubled(server: Any, client: Any, model: str) -> None:
    client.create_registered_model(model)
    with fault_proxy(server.url, drop_answers=("/model-versions/create",)) as url:
        registry = Registry(with_tracking_uri(server.settings, url))
        registered = registry.register_once(model, "fake:/model", None, {})
    assert registered.number == 1
    assert sorted(stages(client, model)) == [1]


def test_mlflow_alone_doubles_a_registration_whose_answer_was_lost(
    server: Any, client: Any, model: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hazard the test above guards against: MLflow's client retries the POST (set here: a CLI
    run earlier in this process may have left MLFLOW_HTTP_REQUEST_MAX_RETRIES=0 behind)."""
    from mlflow import MlflowClient

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "0")

    client.create_registered_model(model)
    with fault_proxy(server.url, drop_answers=("/model-versions/create",)) as url:
        MlflowClient(url, registry_uri=url).create_model_version(model, "fake:/model", await_creation_for=0)
    assert sorted(stages(client, model)) == [1, 2]


def _stuck_ticket(client: Any, model: str) -> int:
    from mlflow.exceptions import MlflowException

    with contextlib.suppress(MlflowException):
        client.create_registered_model(f"{model}.lock")
    tags = {"owner": "crashed", "state": "active", "actor": "bob", "command": "stage 9 Production"}
    return int(
        client.create_model_version(f"{model}.lock", "lock:/ticket", tags=tags, await_creation_for=0).version
    )


def test_a_busy_lock_is_waited_for_visibly_then_refused_with_exit_5(
    cli: Any, client: Any, populated: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _stuck_ticket(client, populated)
    monkeypatch.setenv("LOCK_TIMEOUT", "1")
    before = snapshot(client, cli, populated)
    outcome = cli("stage", "--model", populated, "--version", 2, "--stage", "Production")
    assert outcome.code == 5
    waiting, error = outcome.err.splitlines()
    assert waiting.startswith(
        f"waiting for the registry lock of '{populated}', held by bob (stage 9 Production"
    )
    assert error.startswith("error: the registry lock") and "LOCK_TIMEOUT" in error
    assert snapshot(client, cli, populated) == before


def test_a_crashed_holder_blocks_only_until_its_lease_ends(
    cli: Any, client: Any, populated: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    stuck = _stuck_ticket(client, populated)
    monkeypatch.setenv("LOCK_LEASE", "1")
    time.sleep(1.5)
    assert cli("stage", "--model", populated, "--version", 2, "--stage", "Production").code == 0
    assert stages(client, populated)[2] == "Production"
    # expired by the waiter, then settled once it had recorded what the crashed holder may have left
    assert client.get_model_version(f"{populated}.lock", str(stuck)).tags["state"] == "settled"


def test_a_server_that_accepts_but_never_answers_fails_after_the_timeout(run_module: Any) -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        uri = f"http://127.0.0.1:{silent.getsockname()[1]}"
        started = time.monotonic()
        outcome = run_module(
            "versions",
            extra_env={
                "MLFLOW_TRACKING_URI": uri,
                "MLFLOW_HTTP_REQUEST_TIMEOUT": "1",
                "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
            },
        )
        elapsed = time.monotonic() - started
    assert outcome.code == 3 and outcome.err.count("\n") == 1, outcome.err
    assert f"cannot reach the MLflow server at {uri} (no answer within 1 s)" in outcome.err
    assert elapsed < FAST, f"unresponsive server reported after {elapsed:.1f} s"


def test_an_unknown_host_is_reported_at_once(run_module: Any) -> None:
    started = time.monotonic()
    outcome = run_module("versions", extra_env={"MLFLOW_TRACKING_URI": "http://no-such-host.invalid:5000"})
    elapsed = time.monotonic() - started
    assert outcome.code == 3
    assert "(unknown host)" in outcome.err and outcome.err.count("\n") == 1
    assert elapsed < FAST, f"unknown host reported after {elapsed:.1f} s"


def test_a_password_in_the_uri_never_reaches_output_errors_or_logs(
    run_module: Any, server: Any, model: str
) -> None:
    secret = "hunter2-s3cret"
    uri = server.url.replace("http://", f"http://alice:{secret}@")
    trained = run_module("train", "--model", model, extra_env={"MLFLOW_TRACKING_URI": uri})
    assert trained.code == 0, trained.err
    listed = run_module("--tracking-uri", uri, "versions", "--model", model)
    failed = run_module(
        "stage",
        "--model",
        model,
        "--version",
        "7",
        "--stage",
        "Staging",
        extra_env={"MLFLOW_TRACKING_URI": uri},
    )
    down = run_module("versions", extra_env={"MLFLOW_TRACKING_URI": f"http://alice:{secret}@127.0.0.1:9"})
    assert (listed.code, failed.code, down.code) == (0, 4, 3)
    everything = "".join(o.out + o.err for o in (trained, listed, failed, down))
    assert secret not in everything and "View run" not in everything
    log = (Path(server.settings.registry_home) / "server.log").read_text()
    assert secret not in log
