"""`doctor` finds drift (exit 6, a table) and `--fix` mends what is safe, recording each repair."""

from __future__ import annotations

import json
from typing import Any

from tests.conftest import aliases, history, stages


def promote(cli: Any, model: str) -> None:
    """Version 1 to Production with alias prod, through the tool: the ledger knows it."""
    outcome = cli("stage", "--model", model, "--version", 1, "--stage", "Production", "--alias", "prod")
    assert outcome.code == 0, outcome.err


def test_a_clean_model_has_no_drift(cli: Any, model: str, make_versions: Any) -> None:
    make_versions(1)
    promote(cli, model)
    outcome = cli("doctor", "--model", model)
    assert (outcome.code, "no drift" in outcome.out) == (0, True), outcome.out


def test_two_production_versions_made_outside_the_tool_are_found_and_fixed(
    cli: Any, client: Any, model: str, make_versions: Any
) -> None:
    make_versions(2)
    promote(cli, model)
    client.transition_model_version_stage(model, "2", "Production")  # the UI, without archiving
    outcome = cli("doctor", "--model", model)
    assert outcome.code == 6
    assert "two-holders" in outcome.out and "ledger-drift" in outcome.out
    found = json.loads(cli("doctor", "--model", model, "--json").out)
    assert {f["check"] for f in found} == {"two-holders", "ledger-drift"}
    fixed = cli("doctor", "--model", model, "--fix")
    assert fixed.code == 0, fixed.out + fixed.err
    assert stages(client, model) == {1: "Production", 2: "Archived"}
    assert history(cli, model)[-1]["result"] == "repair"
    assert cli("doctor", "--model", model).code == 0


def test_a_protected_alias_off_production_is_moved_and_a_ui_change_is_recorded(
    cli: Any, client: Any, model: str, make_versions: Any
) -> None:
    make_versions(2)
    promote(cli, model)
    client.transition_model_version_stage(model, "2", "Production", archive_existing_versions=True)
    outcome = cli("doctor", "--model", model)
    assert outcome.code == 6 and "alias-off-stage" in outcome.out
    assert cli("doctor", "--model", model, "--fix").code == 0
    assert aliases(client, model) == {"prod": 2}
    events = history(cli, model)
    assert {e["action"] for e in events if e["result"] == "repair"} == {"alias", "observed"}
    assert cli("rollback", "--model", model).code == 0  # the observed promotion counts
    assert stages(client, model) == {1: "Production", 2: "Archived"}


def test_a_registration_whose_ledger_write_failed_is_found_and_recorded(
    cli: Any, client: Any, model: str, make_versions: Any
) -> None:
    make_versions(1)
    promote(cli, model)
    make_versions(1)  # version 2 registered, its `train` event lost (the server died right after)
    outcome = cli("doctor", "--model", model)
    assert outcome.code == 6 and "version 2" in outcome.out and "no ledger event" in outcome.out
    assert cli("doctor", "--model", model, "--fix").code == 0
    last = history(cli, model)[-1]
    assert (last["action"], last["version"], last["to"], last["result"]) == ("observed", 2, "None", "repair")
    assert cli("doctor", "--model", model).code == 0
