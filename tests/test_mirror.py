"""Aliases that follow stages: PROD_ALIAS always follows Production (unless set empty), and with
MIRROR_STAGE_ALIASES, STAGING_ALIAS follows Staging."""

from __future__ import annotations

from typing import Any

from tests.conftest import aliases, history, stages


def stage(cli: Any, model: str, number: int, target: str, *extra: str) -> Any:
    return cli("stage", "--model", model, "--version", number, "--stage", target, *extra)


def test_the_production_alias_follows_every_new_production_holder_without_being_asked(
    cli: Any, client: Any, model: str, make_versions: Any
) -> None:
    make_versions(2)
    assert stage(cli, model, 1, "Production").code == 0
    assert aliases(client, model) == {"prod": 1}
    promoted = stage(cli, model, 2, "Production", "--reason", "better")
    assert promoted.code == 0 and "alias prod: version 1 -> version 2" in promoted.out
    moves = [
        (e["action"], e["version"], e["alias"])
        for e in history(cli, model)
        if e["seq"] == history(cli, model)[-1]["seq"]
    ]
    assert moves == [("stage", 2, None), ("archive", 1, None), ("alias", 2, "prod")]  # one ledger entry
    assert cli("rollback", "--model", model).code == 0
    assert aliases(client, model) == {"prod": 1}


def test_taking_the_only_production_version_out_is_refused_unless_forced_and_drops_the_alias(
    cli: Any, client: Any, model: str, make_versions: Any
) -> None:
    make_versions(1)
    assert stage(cli, model, 1, "Production").code == 0
    refused = stage(cli, model, 1, "Archived")
    assert refused.code == 5 and "only Production version" in refused.err
    assert stages(client, model) == {1: "Production"} and aliases(client, model) == {"prod": 1}
    dry = stage(cli, model, 1, "Archived", "--dry-run", "--force", "--reason", "retire")
    assert "would change alias prod: version 1 -> (deleted)" in dry.out
    forced = stage(cli, model, 1, "Archived", "--force", "--reason", "retire")
    assert forced.code == 0, forced.err
    assert stages(client, model) == {1: "Archived"} and aliases(client, model) == {}
    last = history(cli, model)[-2:]
    assert [(e["action"], e["alias"], e["result"]) for e in last] == [
        ("stage", None, "forced"),
        ("alias-delete", "prod", "forced"),
    ]


def test_an_empty_prod_alias_setting_lets_no_alias_follow_production(
    cli: Any, client: Any, model: str, make_versions: Any, monkeypatch: Any
) -> None:
    monkeypatch.setenv("PROD_ALIAS", "")
    make_versions(2)
    assert stage(cli, model, 1, "Production").code == 0
    assert stage(cli, model, 2, "Production").code == 0
    assert aliases(client, model) == {}


def test_mirrored_staging_alias_follows_staging_and_leaves_an_empty_stage(
    cli: Any, client: Any, model: str, make_versions: Any, monkeypatch: Any
) -> None:
    monkeypatch.setenv("MIRROR_STAGE_ALIASES", "true")
    make_versions(2)
    assert stage(cli, model, 1, "Staging").code == 0
    assert aliases(client, model) == {"staging": 1}
    outcome = stage(cli, model, 1, "Production")
    assert outcome.code == 0, outcome.err
    assert "alias staging: version 1 -> (deleted)" in outcome.out
    assert aliases(client, model) == {"prod": 1}
    assert stage(cli, model, 2, "Staging").code == 0
    assert aliases(client, model) == {"prod": 1, "staging": 2}


def test_without_mirroring_staging_leaves_aliases_alone(
    cli: Any, client: Any, model: str, make_versions: Any
) -> None:
    make_versions(1)
    staged = stage(cli, model, 1, "Staging")
    assert staged.code == 0, staged.err
    assert aliases(client, model) == {}


def test_doctor_reports_the_production_alias_left_on_an_archived_version(
    cli: Any, client: Any, model: str, make_versions: Any
) -> None:
    make_versions(2)
    assert stage(cli, model, 1, "Production").code == 0
    client.transition_model_version_stage(model, "2", "Production", archive_existing_versions=True)  # UI
    outcome = cli("doctor", "--model", model)
    assert outcome.code == 6 and "alias prod" in outcome.out and "Archived" in outcome.out
    assert cli("doctor", "--model", model, "--fix").code == 0
    assert aliases(client, model) == {"prod": 2}
