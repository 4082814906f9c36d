"""`--dry-run` prints the plan and the gates, and changes nothing, not even the ledger."""

from __future__ import annotations

from typing import Any

from tests.conftest import aliases, history, stages


def test_a_dry_run_promotion_prints_moves_archives_aliases_and_gates_and_changes_nothing(
    cli: Any, client: Any, model: str, make_versions: Any
) -> None:
    make_versions(2)
    cli("stage", "--model", model, "--version", 1, "--stage", "Production", "--alias", "prod")
    before = history(cli, model)
    outcome = cli("stage", "--model", model, "--version", 2, "--stage", "Production", "--alias", "prod",
                  "--dry-run")  # fmt: skip
    assert outcome.code == 0, outcome.err
    assert "would change version 2: None -> Production" in outcome.out
    assert "would change version 1: Production -> Archived (replaced)" in outcome.out
    assert "would change alias prod: version 1 -> version 2" in outcome.out
    assert "load gate: pass" in outcome.out and "metric gate: pass" in outcome.out
    assert (stages(client, model), aliases(client, model)) == ({1: "Production", 2: "None"}, {"prod": 1})
    assert history(cli, model) == before


def test_a_dry_run_that_a_gate_would_refuse_exits_5_without_a_ledger_event(
    cli: Any, client: Any, model: str, make_versions: Any
) -> None:
    make_versions(1)
    client.create_model_version(model, "fake:/model")
    cli("stage", "--model", model, "--version", 1, "--stage", "Production")
    before = history(cli, model)
    outcome = cli("stage", "--model", model, "--version", 2, "--stage", "Production", "--dry-run")
    assert outcome.code == 5
    assert "load gate: FAIL" in outcome.out
    assert history(cli, model) == before and stages(client, model)[2] == "None"


def test_dry_runs_of_alias_and_rollback_change_nothing(
    cli: Any, client: Any, model: str, make_versions: Any
) -> None:
    make_versions(2)
    for number in (1, 2):
        cli("stage", "--model", model, "--version", number, "--stage", "Production", "--alias", "prod")
    before = history(cli, model)
    alias = cli("alias", "--model", model, "--name", "champion", "--version", 1, "--dry-run")
    assert (alias.code, "would change alias champion: (unset) -> version 1" in alias.out) == (0, True)
    protected = cli("alias", "--model", model, "--name", "prod", "--version", 1, "--dry-run")
    assert protected.code == 5 and "protected gate: FAIL" in protected.out
    back = cli("rollback", "--model", model, "--dry-run")
    assert back.code == 0 and "would change version 1: Archived -> Production" in back.out
    assert (stages(client, model), aliases(client, model)) == ({1: "Archived", 2: "Production"}, {"prod": 2})
    assert history(cli, model) == before
