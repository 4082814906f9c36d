"""`history --at` replays the ledger to a moment; `history --version` shows one version's life."""

from __future__ import annotations

import json
import time
from typing import Any

from tests.conftest import history


def test_history_at_a_moment_shows_who_held_each_stage_and_alias(
    cli: Any, model: str, make_versions: Any
) -> None:
    make_versions(2)
    cli("stage", "--model", model, "--version", 1, "--stage", "Production", "--alias", "prod")
    time.sleep(1.1)  # ledger times have whole seconds
    middle = history(cli, model)[-1]["time"]
    time.sleep(1.1)
    cli("stage", "--model", model, "--version", 2, "--stage", "Production", "--alias", "prod")
    then = json.loads(cli("history", "--model", model, "--at", middle, "--json").out)
    assert (then["stages"], then["aliases"]) == ({"Staging": [], "Production": [1]}, {"prod": 1})
    now = cli("history", "--model", model, "--at", "2999-01-01T00:00:00Z")
    assert "Production: 2" in now.out and "alias prod: version 2" in now.out
    assert cli("history", "--model", model, "--at", "yesterday").code == 2


def test_history_of_one_version_shows_its_life(cli: Any, model: str, make_versions: Any) -> None:
    make_versions(2)
    for number in (1, 2):
        cli("stage", "--model", model, "--version", number, "--stage", "Production", "--alias", "prod")
    life = json.loads(cli("history", "--model", model, "--version", 1, "--json").out)
    moves = [(e["action"], e["from"], e["to"]) for e in life]
    assert moves == [
        ("stage", "None", "Production"),
        ("alias", None, "1"),
        ("archive", "Production", "Archived"),
        ("alias", "1", "2"),
    ]
