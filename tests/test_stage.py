"""`stage` moves versions between None, Staging, Production and Archived."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest

from tests.conftest import BOTH_LIFECYCLES, aliases, history, roles, stages

pytestmark = pytest.mark.postgres


@BOTH_LIFECYCLES
def test_promotion_to_production_archives_the_version_it_replaces(
    cli: Any, client: Any, model: str, make_versions: Any, lifecycle: str
) -> None:
    make_versions(2)
    assert cli("stage", "--model", model, "--version", 1, "--stage", "production").code == 0
    outcome = cli("stage", "--model", model, "--version", 2, "--stage", "Production", "--reason", "better")
    assert outcome.code == 0
    assert "version 2: None -> Production" in outcome.out
    assert "version 1: Production -> Archived (replaced)" in outcome.out
    assert roles(client, model, lifecycle) == {1: "Archived", 2: "Production"}
    moves = [(e["action"], e["version"], e["from"], e["to"]) for e in history(cli, model)[-3:]]
    assert moves == [
        ("stage", 2, "None", "Production"),
        ("archive", 1, "Production", "Archived"),
        ("alias", 2, "1", "2"),  # PROD_ALIAS follows Production
    ]


def test_staging_archives_the_previous_staging_version_unless_no_archive(
    cli: Any, client: Any, model: str, make_versions: Any
) -> None:
    make_versions(3)
    assert cli("stage", "--model", model, "--version", 1, "--stage", "STAGING").code == 0
    assert cli("stage", "--model", model, "--version", 2, "--stage", "staging").code == 0
    assert stages(client, model) == {1: "Archived", 2: "Staging", 3: "None"}
    assert cli("stage", "--model", model, "--version", 3, "--stage", "Staging", "--no-archive").code == 0
    assert stages(client, model) == {1: "Archived", 2: "Staging", 3: "Staging"}


def test_no_archive_is_refused_for_production_and_changes_nothing(
    cli: Any, client: Any, model: str, make_versions: Any
) -> None:
    make_versions(2)
    cli("stage", "--model", model, "--version", 1, "--stage", "Production")
    before = history(cli, model)
    outcome = cli("stage", "--model", model, "--version", 2, "--stage", "Production", "--no-archive")
    assert outcome.code == 5
    assert outcome.err.count("\n") == 1 and "--no-archive" in outcome.err
    assert stages(client, model) == {1: "Production", 2: "None"}
    assert history(cli, model) == before


@BOTH_LIFECYCLES
def test_archived_and_none_moves_never_ask_mlflow_to_archive(
    cli: Any, client: Any, model: str, make_versions: Any, lifecycle: str
) -> None:
    make_versions(2)
    assert cli("stage", "--model", model, "--version", 1, "--stage", "Production").code == 0
    assert cli("stage", "--model", model, "--version", 2, "--stage", "Archived").code == 0
    refused = cli("stage", "--model", model, "--version", 1, "--stage", "Archived")
    assert refused.code == 5 and "only Production version" in refused.err  # the only one: not without --force
    demoted = cli(
        "stage", "--model", model, "--version", 1, "--stage", "none", "--force", "--reason", "retire"
    )
    assert demoted.code == 0, demoted.err
    assert roles(client, model, lifecycle) == {1: "None", 2: "Archived"}
    assert aliases(client, model) == {}  # the alias that follows (or holds) Production went with it


def test_stage_with_alias_points_the_alias_at_the_version(
    cli: Any, client: Any, model: str, make_versions: Any
) -> None:
    make_versions(2)
    cli("stage", "--model", model, "--version", 1, "--stage", "Production", "--alias", "prod")
    outcome = cli("stage", "--model", model, "--version", 2, "--stage", "Production", "--alias", "prod")
    assert "alias prod: version 1 -> version 2" in outcome.out
    assert aliases(client, model) == {"prod": 2}
    last = history(cli, model)[-1]
    assert (last["action"], last["alias"], last["from"], last["to"]) == ("alias", "prod", "1", "2")


def test_moving_a_version_to_the_stage_it_is_in_changes_nothing(
    cli: Any, model: str, make_versions: Any
) -> None:
    make_versions(1)
    cli("stage", "--model", model, "--version", 1, "--stage", "Staging")
    before = history(cli, model)
    outcome = cli("stage", "--model", model, "--version", 1, "--stage", "Staging")
    assert outcome.code == 0
    assert "Nothing to change" in outcome.out
    assert history(cli, model) == before


def test_a_version_that_is_not_ready_is_refused(
    cli: Any, client: Any, server: Any, model: str, make_versions: Any
) -> None:
    if server.backend != "sqlite":
        pytest.skip("marks the version FAILED_REGISTRATION in the server's SQLite file")
    make_versions(1)
    # A version whose registration failed stays FAILED_REGISTRATION; set it in the server's database.
    with sqlite3.connect(server.settings.registry_home / "mlflow.db") as db:
        db.execute("UPDATE model_versions SET status='FAILED_REGISTRATION' WHERE name=?", (model,))
    outcome = cli("stage", "--model", model, "--version", 1, "--stage", "Staging")
    assert outcome.code == 5
    assert "FAILED_REGISTRATION, not READY" in outcome.err
    assert stages(client, model) == {1: "None"}
