"""`rollback` restores an earlier Production version; without --to it works like `cd -`."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import BOTH_LIFECYCLES, aliases, history, prod_alias, roles, stages

pytestmark = pytest.mark.postgres


def promote(cli: Any, model: str, *numbers: int, alias: str = "prod") -> None:
    for number in numbers:
        outcome = cli(
            "stage", "--model", model, "--version", number, "--stage", "Production", "--alias", alias
        )
        assert outcome.code == 0, outcome.err


@BOTH_LIFECYCLES
def test_rollback_to_a_given_version_moves_stage_and_alias(
    cli: Any, client: Any, model: str, make_versions: Any, lifecycle: str
) -> None:
    prod = prod_alias(lifecycle)
    make_versions(3)
    promote(cli, model, 1, 2, 3, alias=prod)
    outcome = cli("rollback", "--model", model, "--to", 1, "--reason", "v3 misbehaves")
    assert outcome.code == 0, outcome.err
    assert roles(client, model, lifecycle) == {1: "Production", 2: "Archived", 3: "Archived"}
    assert aliases(client, model) == {prod: 1}
    last = [(e["action"], e["version"], e["from"], e["to"], e["reason"]) for e in history(cli, model)[-3:]]
    assert last == [
        ("rollback", 1, "Archived", "Production", "v3 misbehaves"),
        ("archive", 3, "Production", "Archived", "v3 misbehaves"),
        ("alias", 1, "3", "1", "v3 misbehaves"),
    ]


@BOTH_LIFECYCLES
def test_rollback_without_to_goes_back_and_a_second_one_returns(
    cli: Any, client: Any, model: str, make_versions: Any, lifecycle: str
) -> None:
    prod = prod_alias(lifecycle)
    make_versions(3)
    promote(cli, model, 1, 2, 3, alias=prod)
    assert cli("rollback", "--model", model).code == 0
    assert (roles(client, model, lifecycle)[2], aliases(client, model)) == ("Production", {prod: 2})
    assert cli("rollback", "--model", model).code == 0
    assert (roles(client, model, lifecycle)[3], aliases(client, model)) == ("Production", {prod: 3})
    assert [n for n, s in roles(client, model, lifecycle).items() if s == "Production"] == [3]


def test_rollback_skips_versions_deleted_since(cli: Any, client: Any, model: str, make_versions: Any) -> None:
    make_versions(3)
    promote(cli, model, 1, 2, 3)
    client.delete_model_version(model, "2")
    assert cli("rollback", "--model", model).code == 0
    assert stages(client, model) == {1: "Production", 3: "Archived"}


def test_rollback_to_the_current_version_changes_nothing(cli: Any, model: str, make_versions: Any) -> None:
    make_versions(2)
    promote(cli, model, 1, 2)
    before = history(cli, model)
    outcome = cli("rollback", "--model", model, "--to", 2)
    assert outcome.code == 0
    assert "already in Production" in outcome.out
    assert history(cli, model) == before


def test_rollback_with_nothing_to_roll_back_to_is_not_found(
    cli: Any, client: Any, model: str, make_versions: Any
) -> None:
    make_versions(1)
    promote(cli, model, 1)
    outcome = cli("rollback", "--model", model)
    assert outcome.code == 4
    assert "nothing to roll back to" in outcome.err
    assert stages(client, model) == {1: "Production"}


def test_rollback_uses_the_configured_production_alias(
    cli: Any, client: Any, model: str, make_versions: Any, monkeypatch: Any
) -> None:
    monkeypatch.setenv("PROD_ALIAS", "champion")
    make_versions(2)
    promote(cli, model, 1, 2)
    assert cli("rollback", "--model", model, "--to", 1).code == 0
    assert aliases(client, model) == {"prod": 2, "champion": 1}
