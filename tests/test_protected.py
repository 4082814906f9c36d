"""Protected aliases (PROTECTED_ALIASES, default prod) move only through gated paths or --force."""

from __future__ import annotations

from typing import Any

from tests.conftest import aliases, history


def test_plain_alias_on_a_protected_alias_is_refused_and_recorded(
    cli: Any, client: Any, model: str, make_versions: Any
) -> None:
    make_versions(2)
    outcome = cli("alias", "--model", model, "--name", "prod", "--version", 1)
    assert outcome.code == 5 and "protected" in outcome.err and outcome.err.count("\n") == 1
    assert cli("alias", "--model", model, "--name", "prod", "--version", 1, "--force").code == 2
    assert aliases(client, model) == {}
    last = history(cli, model)[-1]
    assert (last["action"], last["result"], last["alias"], last["to"]) == ("refused", "refused", "prod", "1")


def test_force_with_a_reason_moves_and_deletes_a_protected_alias(
    cli: Any, client: Any, model: str, make_versions: Any
) -> None:
    make_versions(1)
    moved = cli("alias", "--model", model, "--name", "prod", "--version", 1, "--force", "--reason", "ops")
    assert moved.code == 0, moved.err
    assert aliases(client, model) == {"prod": 1}
    assert cli("alias", "--model", model, "--name", "prod", "--delete").code == 5
    assert (
        cli("alias", "--model", model, "--name", "prod", "--delete", "--force", "--reason", "ops").code == 0
    )
    assert [e["result"] for e in history(cli, model)[-2:]] == ["refused", "forced"]


def test_only_promotion_to_production_may_carry_a_protected_alias(
    cli: Any, client: Any, model: str, make_versions: Any, monkeypatch: Any
) -> None:
    make_versions(1)
    staged = cli("stage", "--model", model, "--version", 1, "--stage", "Staging", "--alias", "prod")
    assert staged.code == 5
    assert (
        cli("stage", "--model", model, "--version", 1, "--stage", "Production", "--alias", "prod").code == 0
    )
    monkeypatch.setenv("PROTECTED_ALIASES", "prod,champion")
    assert cli("alias", "--model", model, "--name", "champion", "--version", 1).code == 5
    assert aliases(client, model) == {"prod": 1}
