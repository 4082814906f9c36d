"""The timeline picture: `history --plot`, `invoke timeline` and `invoke ui`."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from invoke import MockContext, Result

import tasks
from registry.ledger import Event
from registry.timeline import steps
from tests.conftest import BOTH_LIFECYCLES, ROOT, commands, history, prod_alias

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
PY = shlex.quote(sys.executable)
UP = f"{PY} -m registry up --quiet"


def demo(cli: Any, model: str, make_versions: Any) -> None:
    """The demo's promotions on two versions: Staging, Production twice, then a rollback."""
    make_versions(2)
    for args in (
        ("stage", "--version", 1, "--stage", "Staging"),
        ("stage", "--version", 1, "--stage", "Production", "--alias", "prod"),
        ("stage", "--version", 2, "--stage", "Production", "--alias", "prod"),
        ("rollback",),
    ):
        outcome = cli(*args, "--model", model, "--reason", "demo")
        assert outcome.code == 0, outcome.err


def test_history_plot_draws_the_ledger_into_a_png(
    cli: Any, model: str, make_versions: Any, tmp_path: Path
) -> None:
    demo(cli, model, make_versions)
    target = tmp_path / "timeline.png"
    outcome = cli("history", "--model", model, "--plot", target)
    assert (outcome.code, outcome.out.strip()) == (0, f"Wrote {target}")
    data = target.read_bytes()
    assert data.startswith(PNG_MAGIC)
    assert len(data) > 20_000  # bars, labels and a legend, not an empty canvas


@BOTH_LIFECYCLES
def test_the_steps_replay_who_held_production_and_the_alias(
    cli: Any, model: str, make_versions: Any, lifecycle: str
) -> None:
    demo(cli, model, make_versions)
    events = [Event(**{"from_" if k == "from" else k: v for k, v in e.items()}) for e in history(cli, model)]
    found = steps(events)
    follows = f"@{prod_alias(lifecycle)}"  # the alias that holds or follows Production
    assert [(s.kind, s.held["Production"], s.held.get(follows, ())) for s in found if s.kind] == [
        ("promote", (1,), (1,)),
        ("promote", (2,), (2,)),
        ("rollback", (1,), (1,)),
    ]
    held = {"Production": (1,), "Staging": (), "@prod": (1,)}
    if lifecycle == "aliases":  # `--alias prod` only: it stays where it was put; the roles are aliases
        held.update({"@prod": (2,), "@champion": (1,), "@challenger": ()})
    assert found[-1].held == held
    assert found[-1].label == "rollback to v1"


def test_refused_attempts_are_labelled_and_move_no_lane(
    cli: Any, model: str, make_versions: Any, tmp_path: Path
) -> None:
    make_versions(2)
    promoted = cli("stage", "--model", model, "--version", 1, "--stage", "Production", "--alias", "prod")
    assert promoted.code == 0, promoted.err
    assert cli("alias", "--model", model, "--name", "prod", "--version", 2).code == 5  # protected
    assert cli("stage", "--model", model, "--version", 2, "--stage", "Staging", "--alias", "prod").code == 5
    events = [Event(**{"from_" if k == "from" else k: v for k, v in e.items()}) for e in history(cli, model)]
    found = steps(events)
    after_promotion = {"Production": (1,), "Staging": (), "@prod": (1,)}
    assert [(s.label, s.kind, s.held) for s in found[-2:]] == [
        ("refused: @prod → v2", "refused", after_promotion),
        ("refused: v2 → Staging", "refused", after_promotion),
    ]
    now = cli("history", "--model", model, "--at", "2999-01-01T00:00:00Z").out
    assert "Production: 1" in now and "Staging: (none)" in now and "alias prod: version 1" in now
    drawn = cli("history", "--model", model, "--plot", tmp_path / "refused.png")
    assert drawn.code == 0, drawn.err
    assert (tmp_path / "refused.png").read_bytes().startswith(PNG_MAGIC)


def test_plot_to_stdout_writes_the_png_bytes(env: dict[str, str], model: str, make_versions: Any) -> None:
    make_versions(1)
    done = subprocess.run(
        [sys.executable, "-m", "registry", "alias", "--model", model, "--name", "champion", "--version", "1"],
        env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    done = subprocess.run(
        [sys.executable, "-m", "registry", "history", "--model", model, "--plot", "-"],
        env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(PNG_MAGIC)


def test_an_empty_ledger_is_not_plotted(cli: Any, model: str, tmp_path: Path) -> None:
    outcome = cli("history", "--model", model, "--plot", tmp_path / "none.png")
    assert outcome.code == 4
    assert "empty" in outcome.err
    assert not (tmp_path / "none.png").exists()


def test_plot_and_json_exclude_each_other(cli: Any, model: str) -> None:
    assert cli("history", "--model", model, "--plot", "x.png", "--json").code == 2


@pytest.fixture
def local(task_env: None) -> MockContext:
    return MockContext(run=Result(stdout="mlflow\ntrainer\n"))


def test_invoke_timeline_runs_history_plot_with_the_file_quoted(local: MockContext) -> None:
    tasks.timeline(local, file="my timeline.png", model="m")
    assert commands(local) == [UP, f"{PY} -m registry history --plot 'my timeline.png' --model m"]


def test_invoke_timeline_defaults_to_timeline_png(local: MockContext) -> None:
    tasks.timeline(local)
    assert commands(local)[-1] == f"{PY} -m registry history --plot timeline.png"


def test_invoke_timeline_with_compose_streams_the_png_to_a_host_file(
    local: MockContext, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("REGISTRY_RUNNER", "compose")
    monkeypatch.setattr(tasks, "_ready", {}, raising=False)
    (tmp_path / "t.png.part").write_bytes(PNG_MAGIC)  # what the redirect would have written
    tasks.timeline(local, file="t.png")
    assert commands(local)[-1].endswith("trainer python -m registry history --plot - > t.png.part")
    assert (tmp_path / "t.png").read_bytes() == PNG_MAGIC
    assert not (tmp_path / "t.png.part").exists()
    assert capsys.readouterr().out.strip() == "Wrote t.png"


def test_invoke_ui_prints_the_model_page_and_runs_nothing(
    local: MockContext, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    opened: list[str] = []
    monkeypatch.setattr("webbrowser.open", opened.append)
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    tasks.ui(local, model="my model")
    assert capsys.readouterr().out.strip() == "http://127.0.0.1:5000/#/models/my%20model"
    assert (commands(local), opened) == ([], [])


def test_invoke_ui_opens_a_browser_only_with_a_display(
    local: MockContext, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    opened: list[str] = []
    monkeypatch.setattr("webbrowser.open", opened.append)
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.internal:5000")
    tasks.ui(local, no_browser=True)
    tasks.ui(local)
    assert opened == ["http://mlflow.internal:5000/#/models/iris_clf"]


def test_invoke_ui_with_compose_points_at_the_published_port(
    local: MockContext, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("REGISTRY_RUNNER", "compose")
    monkeypatch.setenv("MLFLOW_PORT", "5055")
    tasks.ui(local, no_browser=True)
    assert capsys.readouterr().out.strip() == "http://127.0.0.1:5055/#/models/iris_clf"
