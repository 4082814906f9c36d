"""`history --at` replays the ledger to a moment; `history --version` shows one version's life."""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Any

import pytest

from registry.cli.lifecycle import snapshot
from registry.ledger import Event
from registry.timetravel import replay
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


def test_history_at_names_the_last_change_and_the_refused_attempts_after_it(
    cli: Any, model: str, make_versions: Any
) -> None:
    make_versions(2)
    promoted = cli("stage", "--model", model, "--version", 1, "--stage", "Production", "--alias", "prod")
    assert promoted.code == 0, promoted.err
    assert cli("alias", "--model", model, "--name", "prod", "--version", 2).code == 5  # protected
    change, refused = (history(cli, model)[i]["seq"] for i in (-3, -1))
    outcome = cli("history", "--model", model, "--at", "2999-01-01T00:00:00Z")
    assert outcome.out.splitlines() == [
        f"At 2999-01-01T00:00:00Z (after ledger event {change}):",
        "  Staging: (none)",
        "  Production: 1",
        "  alias prod: version 1",
        f"Ledger event {refused}: refused, changed nothing.",
    ]
    then = json.loads(cli("history", "--model", model, "--at", "2999-01-01T00:00:00Z", "--json").out)
    assert (then["last_seq"], then["refused"], then["uncounted"]) == (change, [refused], [])


def test_changes_written_out_of_time_order_are_counted_in_ledger_order_and_named(
    cli: Any, model: str, make_versions: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """Overlapping commands can get server times out of seq order; the state is a prefix of the ledger."""
    make_versions(2)
    for args, code in (
        (("stage", "--version", 1, "--stage", "Production", "--alias", "prod"), 0),
        (("stage", "--version", 2, "--stage", "Production", "--alias", "prod"), 0),
        (("alias", "--name", "prod", "--version", 1), 5),  # refused: prod is protected
        (("alias", "--name", "champion", "--version", 2), 0),
    ):
        outcome = cli(*args, "--model", model)
        assert outcome.code == code, outcome.err
    events = [Event(**{"from_" if k == "from" else k: v for k, v in e.items()}) for e in history(cli, model)]
    first, second, refused, champion = sorted({e.seq for e in events})[-4:]
    clock = {first: "12:00:01", second: "12:00:05", refused: "12:00:02", champion: "12:00:03"}
    events = [dataclasses.replace(e, time=f"2026-11-30T{clock.get(e.seq, '12:00:00')}Z") for e in events]
    then = replay(events, "2026-11-30T12:00:03Z")
    assert (then.stages, then.aliases) == ({"Staging": [], "Production": [1]}, {"prod": 1})
    assert (then.last_seq, then.refused, then.uncounted) == (first, [refused], [champion])
    capsys.readouterr()
    snapshot(then, as_json=False)
    assert capsys.readouterr().out.splitlines() == [
        f"At 2026-11-30T12:00:03Z (after ledger event {first}):",
        "  Staging: (none)",
        "  Production: 1",
        "  alias prod: version 1",
        f"Ledger event {refused}: refused, changed nothing.",
        f"Ledger event {champion}: not counted: a later event comes first in the ledger.",
    ]
    assert replay(events).uncounted == [] and replay(events).aliases == {"champion": 2, "prod": 2}
