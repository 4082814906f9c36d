"""tasks.py builds exactly one command line per task and runs it with the configured runner."""

from __future__ import annotations

import contextlib
import inspect
import io
import re
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from invoke import Collection, Context, Exit, MockContext, Result

import tasks
from registry.cli import main
from tests.conftest import BOTH_LIFECYCLES, aliases, commands, free_port, prod_alias, roles

PY = shlex.quote(sys.executable)
UP = f"{PY} -m registry up --quiet"


@pytest.fixture
def local(task_env: None) -> MockContext:
    return MockContext(run=Result(stdout="Registered iris_clf version 7\n"))


def test_train_starts_the_local_server_then_runs_the_cli_with_the_flags_given(local: MockContext) -> None:
    tasks.train(local, c_param=0.5, reason="try it")
    assert commands(local) == [UP, f"{PY} -m registry train --c-param 0.5 --reason 'try it'"]


def test_every_value_is_quoted(local: MockContext) -> None:
    tasks.stage(local, version="1; rm -rf /", stage="Production", alias="prod", reason="it's fine", model="m")
    assert commands(local)[-1] == (
        f"{PY} -m registry stage --version '1; rm -rf /' --stage Production --alias prod "
        "--reason 'it'\"'\"'s fine' --model m"
    )


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        (lambda c: tasks.versions(c, json=True, limit=3), "versions --json --limit 3"),
        (
            lambda c: tasks.stage(c, version=2, stage="Staging", no_archive=True),
            "stage --version 2 --stage Staging --no-archive",
        ),
        (lambda c: tasks.alias(c, name="champion", version=3), "alias --name champion --version 3"),
        (lambda c: tasks.alias(c, name="champion", delete=True), "alias --name champion --delete"),
        (lambda c: tasks.rollback(c, to=2), "rollback --to 2"),
        (lambda c: tasks.rollback(c), "rollback"),
        (lambda c: tasks.history(c, json=True), "history --json"),
        (lambda c: tasks.predict(c, uri="models:/iris_clf@prod"), "predict --uri models:/iris_clf@prod"),
        (lambda c: tasks.versions(c, model="other"), "versions --model other"),
        (lambda c: tasks.migrate(c, to="aliases", dry_run=True), "migrate --to aliases --dry-run"),
        (
            lambda c: tasks.migrate(c, to="stages", reason="back", model="m"),
            "migrate --to stages --reason back --model m",
        ),
    ],
)  # fmt: skip
def test_each_task_builds_its_cli_command(local: MockContext, call: object, expected: str) -> None:
    call(local)  # type: ignore[operator]
    assert commands(local) == [UP, f"{PY} -m registry {expected}"]


def test_a_remote_tracking_uri_starts_no_local_server(
    local: MockContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.internal:5000")
    tasks.versions(local)
    assert commands(local) == [f"{PY} -m registry versions"]


def test_up_and_down_run_the_local_server_commands(local: MockContext) -> None:
    tasks.up(local)
    tasks.down(local)
    assert commands(local) == [f"{PY} -m registry up", f"{PY} -m registry down"]


def test_a_failing_command_ends_the_task_with_its_exit_code(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    c = MockContext(run=Result(exited=4))
    with pytest.raises(Exit) as ended:
        tasks.versions(c)
    assert ended.value.code == 4


def test_demo_uses_the_versions_it_just_trained(task_env: None) -> None:
    registered = {
        re.compile(r".* train --reason"): Result(stdout="Registered iris_clf version 7\n"),
        re.compile(r".* train --c-param"): Result(stdout="Registered iris_clf version 8\n"),
        re.compile(r".*"): Result(),
    }
    c = MockContext(run=registered)
    tasks.demo(c)
    ran = [cmd.removeprefix(f"{PY} -m registry ") for cmd in commands(c) if cmd != UP]
    assert ran == [
        "train --reason 'invoke demo'",
        "train --c-param 0.5 --reason 'invoke demo'",
        "stage --version 7 --stage Staging --reason 'invoke demo'",
        "stage --version 7 --stage Production --alias prod --reason 'invoke demo'",
        "stage --version 8 --stage Production --alias prod --reason 'invoke demo'",
        "rollback --reason 'invoke demo'",
        "versions",
        "history",
        "predict --uri models:/iris_clf@prod",
    ]


class InProcess(Context):
    """Runs each `python -m registry ...` line through the CLI in this process: the real commands on
    the test server, without a new interpreter importing MLflow for each."""

    def run(self, command: str, **kwargs: Any) -> Result:
        words = shlex.split(command)
        assert words[:3] == [sys.executable, "-m", "registry"], command
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            code = main(words[3:])
        return Result(stdout=printed.getvalue(), command=command, exited=code)


class InProcessWithShell(InProcess):
    """InProcess, but a command line that starts or stops a background process runs in a real shell."""

    def run(self, command: str, **kwargs: Any) -> Result:
        if command.endswith("& echo $!") or command.startswith("kill "):
            return Context().run(command, in_stream=False, **kwargs)
        return super().run(command, **kwargs)


@BOTH_LIFECYCLES
def test_demo_with_serve_shows_serve_follow_the_promotion_and_the_rollback(
    lifecycle: str,
    env: dict[str, str],
    client: Any,
    model: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: Any,
    tmp_path: Path,
) -> None:
    """The whole demo on a real server: v2 is promoted over v1, then the rollback restores v1; a real
    `serve` process answers with each in turn, and is stopped when the demo ends."""
    monkeypatch.setenv("MODEL_NAME", model)
    monkeypatch.setenv("SERVE_PORT", str(free_port()))
    monkeypatch.setenv("SERVE_POLL_SECONDS", "0.5")
    tasks.demo(InProcessWithShell(), serve=True)
    printed = capsys.readouterr().out
    shown = [line for line in printed.splitlines() if line.startswith("serve: X-Model-Version")]
    assert [line.split()[2] for line in shown] == ["1", "2", "1"], printed
    assert roles(client, model, lifecycle) == {1: "Production", 2: "Archived"}
    assert aliases(client, model) == {prod_alias(lifecycle): 1}
    print(printed)
    pid = int(re.findall(r"\(pid (\d+), log", printed)[0])
    deadline = time.monotonic() + 30
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:  # stopped when the demo ended
        time.sleep(0.2)
    assert not Path(f"/proc/{pid}").exists(), (tmp_path / ".mlflow" / "serve.log").read_text()


def test_a_bad_dotenv_ends_the_task_with_one_message(local: MockContext, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("REGISTRY_RUNNER=kubernetes\n")
    with pytest.raises(Exit) as ended:
        tasks.versions(local)
    assert ended.value.code == 2


def test_every_task_has_a_docstring_and_help_for_each_parameter() -> None:
    collection = Collection.from_module(tasks)
    for name in collection.task_names:
        task = collection[name]
        assert task.__doc__ and task.__doc__.strip(), name
        parameters = list(inspect.signature(task.body).parameters)[1:]
        assert sorted(task.help) == sorted(parameters), name


def test_tasks_import_nothing_heavy() -> None:
    source = Path(tasks.__file__).read_text()
    imports = [line for line in source.splitlines() if line.startswith(("import ", "from "))]
    assert not [line for line in imports if "mlflow" in line or "sklearn" in line]
    ours = [line for line in imports if line.startswith(("from registry", "import registry"))]
    assert [line.split(" import ")[0] for line in ours] == ["from registry.config"]
