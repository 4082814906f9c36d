"""The ledger: one event per change, a baseline on first use, ordered by the server."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from registry import ledger
from registry.client import Registry
from registry.ledger import Change
from registry.tables import MAX_CELL
from tests.conftest import history

pytestmark = pytest.mark.postgres


def test_first_use_records_a_baseline_of_what_the_registry_already_holds(
    cli: Any, client: Any, model: str, make_versions: Any
) -> None:
    make_versions(3)
    client.transition_model_version_stage(model, "1", "Production")
    client.transition_model_version_stage(model, "2", "Staging")
    client.set_registered_model_alias(model, "prod", "1")
    assert cli("history", "--model", model).out.startswith("The ledger of")
    assert cli("stage", "--model", model, "--version", 3, "--stage", "Staging").code == 0
    events = history(cli, model)
    baseline = [(e["action"], e["version"], e["to"], e["alias"]) for e in events[:3]]
    assert baseline == [
        ("baseline", 1, "Production", None),
        ("baseline", 2, "Staging", None),
        ("baseline", 1, "1", "prod"),
    ]
    assert [(e["action"], e["version"]) for e in events[3:]] == [("stage", 3), ("archive", 2)]


def test_history_json_events_have_the_documented_keys_in_server_order(
    cli: Any, model: str, make_versions: Any
) -> None:
    make_versions(1)
    cli("stage", "--model", model, "--version", 1, "--stage", "Staging", "--reason", "qa")
    events = history(cli, model)
    keys = ["seq", "time", "actor", "action", "model", "version", "from", "to", "alias", "reason", "result"]
    assert all(list(event) == keys for event in events)
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)
    stage = events[-1]
    assert (stage["actor"], stage["model"], stage["reason"], stage["result"]) == ("tester", model, "qa", "ok")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", stage["time"])


def test_history_table_lists_events_oldest_first(cli: Any, model: str, make_versions: Any) -> None:
    make_versions(1)
    cli("alias", "--model", model, "--name", "champion", "--version", 1)
    lines = cli("history", "--model", model).out.splitlines()
    assert lines[0].split() == ["seq", "time", "actor", "action", "version", "from", "to", "alias", "reason"]
    assert "baseline" in lines[2] and "champion" in lines[3]


def test_input_errors_write_nothing_to_the_ledger(cli: Any, model: str, make_versions: Any) -> None:
    make_versions(1)
    cli("alias", "--model", model, "--name", "champion", "--version", 1)
    before = history(cli, model)
    assert cli("stage", "--model", model, "--version", 1, "--stage", "Prod").code == 2
    assert cli("alias", "--model", model, "--name", "latest", "--version", 1).code == 2
    assert cli("stage", "--model", model, "--version", 5, "--stage", "Staging").code == 4
    assert history(cli, model) == before


def test_history_shows_the_newest_events_and_says_how_many_are_left_out(
    cli: Any, server: Any, model: str, make_versions: Any
) -> None:
    make_versions(1)
    bulk = [Change("train", number, to="None") for number in range(1, 151)]
    ledger.record(Registry(server.settings), model, bulk, reason="bulk")  # a baseline, then 150 events
    lines = cli("history", "--model", model).out.splitlines()
    assert len(lines) == 2 + 100 + 1
    assert (lines[2].split()[4], lines[-2].split()[4]) == ("51", "150")  # the version column
    assert lines[-1] == "(left out: the 51 oldest of 151 events; --limit 0 shows them all)"
    assert len(cli("history", "--model", model, "--limit", 0).out.splitlines()) == 2 + 151
    assert len(history(cli, model)) == 151  # --json shows every event unless limited
    newest = cli("history", "--model", model, "--json", "--limit", 3)
    assert [e["version"] for e in json.loads(newest.out)] == [148, 149, 150]
    assert newest.err == "left out: the 148 oldest of 151 events; --limit 0 shows them all\n"
    for wrong in (["--limit", "-1"], ["--limit", "x"], ["--limit", "5", "--at", "2026-11-30T12:00:00Z"]):
        assert cli("history", "--model", model, *wrong).code == 2


def test_a_long_refusal_keeps_the_table_narrow_and_json_whole(
    cli: Any, model: str, make_versions: Any
) -> None:
    make_versions(2)
    promoted = cli("stage", "--model", model, "--version", 1, "--stage", "Production", "--alias", "prod")
    assert promoted.code == 0, promoted.err
    attempt = cli("alias", "--model", model, "--name", "prod", "--version", 2, "--reason", "why " * 30)
    assert attempt.code == 5
    reason = history(cli, model)[-1]["reason"]
    assert len(reason) > 150
    lines = cli("history", "--model", model).out.splitlines()
    assert lines[-1].endswith(reason[: MAX_CELL - 1] + "…")
    assert max(map(len, lines)) <= len(lines[-1]) < 150


def test_hostile_text_reaches_the_terminal_escaped_and_json_exactly(
    cli: Any, model: str, make_versions: Any
) -> None:
    make_versions(1)
    hostile = "ok\x1b]0;pwned\x07\x1b[2J\x08\u202eevil"
    assert cli("stage", "--model", model, "--version", 1, "--stage", "Staging", "--reason", hostile).code == 0
    shown = cli("history", "--model", model)
    assert shown.code == 0
    assert not any(ch in shown.out for ch in "\x1b\x07\x08\u202e")
    assert "ok\\x1b]0;pwned\\x07" in shown.out
    assert history(cli, model)[-1]["reason"] == hostile.strip()
    refused = cli("alias", "--model", model, "--name", "prod", "--version", 1, "--reason", hostile)
    assert refused.code == 5 and "\x1b" not in refused.err and refused.err.count("\n") == 1
