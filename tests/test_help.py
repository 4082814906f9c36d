"""Every CLI command and option explains itself; `invoke --list` shows every task."""

from __future__ import annotations

import argparse
import subprocess
import sys

from registry.cli import build_parser
from tests.conftest import ROOT


def test_every_cli_command_and_option_has_help() -> None:
    parser = build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert set(subparsers.choices) >= {
        "train",
        "versions",
        "stage",
        "alias",
        "rollback",
        "history",
        "predict",
    }
    for name, sub in subparsers.choices.items():
        assert sub.description, name
        for action in sub._actions:
            assert action.help, f"{name} {action.option_strings}"


def test_invoke_list_shows_every_lifecycle_task() -> None:
    listed = subprocess.run(
        [sys.executable, "-m", "invoke", "--list"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert listed.returncode == 0, listed.stderr
    for name in (
        "up",
        "down",
        "train",
        "versions",
        "stage",
        "alias",
        "rollback",
        "history",
        "predict",
        "demo",
        "test",
    ):
        assert f"  {name} " in listed.stdout
