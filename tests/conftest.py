"""Fixtures: one real `mlflow server` (SQLite, temp folder, free port) per test session."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench.server import free_port
from registry.config import Settings, load_settings

ROOT = Path(__file__).resolve().parent.parent


@dataclasses.dataclass(frozen=True)
class Server:
    url: str
    settings: Settings
    backend: str


POSTGRES_ENV = "REGISTRY_TEST_POSTGRES_URI"

# pytest-xdist (`-n 3` in pyproject.toml) spreads the tests one by one over its workers, except these
# files, each run whole on one worker: the engine builds and runs one Compose stack at a time, and a
# module-scoped server, model or user set is made once.
ONE_WORKER = {
    "tests/test_compose.py": "engine",
    "tests/test_compose_serve.py": "engine",
    "tests/test_compose_scale.py": "engine",
    **{f"tests/test_{name}.py": name for name in ("adopt", "auth", "promote_env", "serve", "server_errors")},
}


# The Compose files first: their worker (ONE_WORKER's "engine") spends minutes on them while the others
# go through the rest, instead of starting them near the end while the others sit idle.
RUN_FIRST = ("tests/test_compose.py", "tests/test_compose_serve.py", "tests/test_compose_scale.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """RUN_FIRST's files before the rest, everything else in pytest's order (xdist hands out work in
    this order; pytest's keeps each backend's tests together, so a worker starts its servers once)."""

    def rank(item: pytest.Item) -> int:
        path = item.nodeid.split("::", 1)[0]
        return RUN_FIRST.index(path) if path in RUN_FIRST else len(RUN_FIRST)

    items.sort(key=rank)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """xdist's `loadscope` scheduling with ONE_WORKER's groups as the scopes and every other test a
    scope of its own (its `xdist_group` mark does not reach the scheduler under pytest 9.2). Should
    xdist rename `_split_scope` (its `loadfile` scheduler overrides it too), tests run grouped by file."""
    from xdist.scheduler import LoadScopeScheduling

    class OneWorkerGroups(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            return ONE_WORKER.get(nodeid.split("::", 1)[0], nodeid)

    return OneWorkerGroups(config, log)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Tests marked `postgres` run on PostgreSQL too, when REGISTRY_TEST_POSTGRES_URI is set."""
    if "server" not in metafunc.fixturenames:
        return
    backends = ["sqlite"]
    if os.environ.get(POSTGRES_ENV) and metafunc.definition.get_closest_marker("postgres"):
        backends.append("postgres")
    metafunc.parametrize("server", backends, indirect=True, scope="session")


def fresh_postgres_database(base_uri: str) -> str:
    """Create an empty database for this test run on the server of `base_uri`; returns its URI."""
    import psycopg2

    name = f"registry_test_{uuid.uuid4().hex[:12]}"
    libpq_uri = base_uri.replace("postgresql+psycopg2://", "postgresql://")
    connection = psycopg2.connect(libpq_uri)
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    connection.close()
    # SQLAlchemy 2.1 defaults to psycopg 3; the `postgres` extra installs psycopg2.
    return libpq_uri.replace("postgresql://", "postgresql+psycopg2://").rsplit("/", 1)[0] + "/" + name


@pytest.fixture(scope="session")
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A real MLflow server on 127.0.0.1 (SQLite, or PostgreSQL when asked), for the whole session."""
    from registry import localserver

    backend = getattr(request, "param", "sqlite")
    home = tmp_path_factory.mktemp(f"mlflow-{backend}")
    backend_uri = fresh_postgres_database(os.environ[POSTGRES_ENV]) if backend == "postgres" else None
    port = free_port()
    settings = load_settings(
        {"MLFLOW_PORT": str(port), "REGISTRY_HOME": str(home), "REGISTRY_ACTOR": "tester"}, env_file=None
    )
    localserver.start(settings, backend_uri)
    try:
        yield Server(settings.tracking_uri, settings, backend)
    finally:
        localserver.stop(settings)


@pytest.fixture(scope="session")
def compose_stack() -> Iterator[dict[str, str]]:
    """One throwaway Compose project for the tests on the default stack (test_compose, test_compose_serve:
    one worker runs both, ONE_WORKER's "engine"), down with its volume at the end of the session."""
    from tests.compose_stack import throwaway_stack

    with throwaway_stack() as env:
        yield env


@pytest.fixture
def model() -> str:
    """A fresh registered-model name, so tests never see each other's versions."""
    return f"m_{uuid.uuid4().hex[:10]}"


@pytest.fixture
def env(server: Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    """The environment a user would have: the test server, no .env, a known actor."""
    monkeypatch.chdir(tmp_path)
    values = {
        "MLFLOW_TRACKING_URI": server.url,
        "REGISTRY_ACTOR": "tester",
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
        "MLFLOW_HTTP_REQUEST_TIMEOUT": "5",
    }
    for key in ("MODEL_NAME", "PROD_ALIAS", "REGISTRY_RUNNER", "MLFLOW_TRACKING_USERNAME", "LIFECYCLE"):
        monkeypatch.delenv(key, raising=False)
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return values


@dataclasses.dataclass(frozen=True)
class Outcome:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(env: dict[str, str], capsys: pytest.CaptureFixture[str]) -> Any:
    """Run the CLI in-process as `python -m registry ARGS` would; returns exit code and output.

    The environment is put back after each run: a command exports MLflow's documented variables
    (registry.connection), which a process of its own would take with it when it ends."""
    from registry.cli import main

    def run(*args: Any) -> Outcome:
        capsys.readouterr()
        before = dict(os.environ)
        try:
            code = main([str(arg) for arg in args])
        finally:
            os.environ.clear()
            os.environ.update(before)
        captured = capsys.readouterr()
        return Outcome(code, captured.out, captured.err)

    return run


@pytest.fixture
def run_module(env: dict[str, str]) -> Any:
    """Run `python -m registry ARGS` in a subprocess, exactly as a user does."""

    def run(*args: Any, extra_env: dict[str, str] | None = None) -> Outcome:
        environment = {**os.environ, **env, **(extra_env or {})}
        environment["PYTHONPATH"] = str(ROOT)
        done = subprocess.run(
            [sys.executable, "-m", "registry", *map(str, args)],
            capture_output=True,
            text=True,
            env=environment,
            timeout=300,
        )
        return Outcome(done.returncode, done.stdout, done.stderr)

    return run


@pytest.fixture
def client(server: Server) -> Any:
    """A plain MlflowClient on the test server, to check what the CLI did."""
    from mlflow import MlflowClient

    return MlflowClient(server.url, registry_uri=server.url)


@pytest.fixture
def trained(cli: Any, model: str) -> Any:
    """Train `count` versions of `model` through the CLI; returns their numbers."""

    def train(count: int = 1) -> list[int]:
        numbers = []
        for _ in range(count):
            outcome = cli("train", "--model", model)
            assert outcome.code == 0, outcome.err
            numbers.append(int(outcome.out.split("version ")[1].split()[0]))
        return numbers

    return train


@pytest.fixture(scope="session")
def model_source(server: Server) -> tuple[str, str]:
    """One small real Iris model logged once per server: (source URI, model id) for `make_versions`."""
    import mlflow
    from mlflow.models import infer_signature
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    from registry.train import pip_requirements

    features, target = load_iris(return_X_y=True, as_frame=True)
    classifier = LogisticRegression(max_iter=200).fit(features, target)
    mlflow.set_tracking_uri(server.url)
    mlflow.set_experiment("test-fixtures")  # by name: an experiment id cached from another server is wrong
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(
            classifier,
            name="model",
            signature=infer_signature(features, classifier.predict(features)),
            input_example=features.head(5),
            pip_requirements=pip_requirements(),
        )
    return info.model_uri, info.model_id


@pytest.fixture
def make_versions(client: Any, model: str, model_source: tuple[str, str]) -> Any:
    """Create `count` READY versions of `model` directly: no training, all sharing one logged model,
    so they load and pass the Production gates."""
    source, model_id = model_source

    def make(count: int) -> list[int]:
        from mlflow.exceptions import MlflowException

        with contextlib.suppress(MlflowException):
            client.create_registered_model(model)
        return [
            int(client.create_model_version(model, source, model_id=model_id, await_creation_for=0).version)
            for _ in range(count)
        ]

    return make


def stages(client: Any, model: str) -> dict[int, str]:
    """Version number -> stage, straight from MLflow."""
    found = client.search_model_versions(f"name='{model}'")
    return {int(mv.version): mv.current_stage for mv in found}


@pytest.fixture
def lifecycle(request: pytest.FixtureRequest, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> str:
    """LIFECYCLE for this test: stages unless parametrised (`BOTH_LIFECYCLES`); also in `env`, so
    processes a test starts see it."""
    mode = str(getattr(request, "param", "stages"))
    monkeypatch.setenv("LIFECYCLE", mode)
    env["LIFECYCLE"] = mode
    return mode


BOTH_LIFECYCLES = pytest.mark.parametrize("lifecycle", ["stages", "aliases"], indirect=True)


def prod_alias(lifecycle: str) -> str:
    """The alias that holds or follows Production by default: champion in aliases, prod in stages."""
    return "champion" if lifecycle == "aliases" else "prod"


def roles(client: Any, model: str, lifecycle: str) -> dict[int, str]:
    """Version number -> its role as the lifecycle shows it in MLflow: its stage, or (aliases) which
    role alias points at it, else Archived for the retired tag, else None; in aliases no version may
    have an MLflow stage (the tool made no stage call)."""
    if lifecycle == "stages":
        return stages(client, model)
    found = client.search_model_versions(f"name='{model}'")
    assert {mv.current_stage for mv in found} <= {"None"}, "a stage call in the aliases lifecycle"
    held = aliases(client, model)
    holders = {held.get("challenger"): "Staging", held.get("champion"): "Production"}
    retired = {int(mv.version): "Archived" for mv in found if (mv.tags or {}).get("lifecycle") == "retired"}
    return {
        int(mv.version): holders.get(int(mv.version)) or retired.get(int(mv.version), "None") for mv in found
    }


def aliases(client: Any, model: str) -> dict[str, int]:
    """Alias -> version number, straight from MLflow."""
    return {a: int(v) for a, v in client.get_registered_model(model).aliases.items()}


def history(cli: Any, model: str) -> list[dict[str, Any]]:
    """The ledger as `history --json` prints it."""
    import json

    outcome = cli("history", "--json", "--model", model)
    assert outcome.code == 0, outcome.err
    return list(json.loads(outcome.out))


SETTING_KEYS = ("REGISTRY_RUNNER", "MLFLOW_TRACKING_URI", "MODEL_NAME", "PROD_ALIAS", "MLFLOW_PORT",
                "MLFLOW_TRACKING_USERNAME")  # fmt: skip


@pytest.fixture
def task_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """For tasks.py tests: no .env, and none of the user's settings leak in."""
    monkeypatch.chdir(tmp_path)
    for key in SETTING_KEYS:
        monkeypatch.delenv(key, raising=False)


def commands(c: Any) -> list[str]:
    """The command lines a MockContext was asked to run, in order."""
    return [call.args[0] for call in c.run.call_args_list]
