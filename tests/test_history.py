"""The ledger: one event per change, a baseline on first use, ordered by the server."""

from __future__ import annotations

import re
from typing import Any

import pytest

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
