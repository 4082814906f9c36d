"""MIRROR_STAGE_ALIASES keeps PROD_ALIAS on Production and STAGING_ALIAS on Staging."""

from __future__ import annotations

from typing import Any

from tests.conftest import aliases, stages


def test_mirrored_aliases_follow_the_stages_and_leave_an_empty_stage(
    cli: Any, client: Any, model: str, make_versions: Any, monkeypatch: Any
) -> None:
    monkeypatch.setenv("MIRROR_STAGE_ALIASES", "true")
    make_versions(2)
    assert cli("stage", "--model", model, "--version", 1, "--stage", "Staging").code == 0
    assert aliases(client, model) == {"staging": 1}
    outcome = cli("stage", "--model", model, "--version", 1, "--stage", "Production")
    assert outcome.code == 0, outcome.err
    assert "alias staging: version 1 -> (deleted)" in outcome.out
    assert aliases(client, model) == {"prod": 1}
    promoted = cli("stage", "--model", model, "--version", 2, "--stage", "Production")
    assert promoted.code == 0, promoted.err
    assert aliases(client, model) == {"prod": 2}
    assert cli("rollback", "--model", model).code == 0
    assert aliases(client, model) == {"prod": 1}
    assert cli("stage", "--model", model, "--version", 1, "--stage", "Archived").code == 0
    assert aliases(client, model) == {}
    assert stages(client, model) == {1: "Archived", 2: "Archived"}


def test_without_mirroring_stages_leave_aliases_alone(
    cli: Any, client: Any, model: str, make_versions: Any
) -> None:
    make_versions(1)
    staged = cli("stage", "--model", model, "--version", 1, "--stage", "Staging")
    assert staged.code == 0, staged.err
    assert aliases(client, model) == {}
