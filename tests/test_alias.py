"""`alias` sets, moves and deletes aliases; bad names are refused before any request."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import aliases, history

pytestmark = pytest.mark.postgres


def test_alias_is_set_moved_and_deleted_with_one_ledger_event_each(
    cli: Any, client: Any, model: str, make_versions: Any
) -> None:
    make_versions(2)
    assert cli("alias", "--model", model, "--name", "champion", "--version", 1).code == 0
    assert aliases(client, model) == {"champion": 1}
    moved = cli("alias", "--model", model, "--name", "champion", "--version", 2, "--reason", "retrained")
    assert "alias champion: version 1 -> version 2" in moved.out
    assert aliases(client, model) == {"champion": 2}
    assert cli("alias", "--model", model, "--name", "champion", "--delete").code == 0
    assert aliases(client, model) == {}
    events = [(e["action"], e["alias"], e["from"], e["to"]) for e in history(cli, model)[1:]]
    assert events == [
        ("alias", "champion", None, "1"),
        ("alias", "champion", "1", "2"),
        ("alias-delete", "champion", "2", None),
    ]


def test_setting_an_alias_where_it_already_points_changes_nothing(
    cli: Any, model: str, make_versions: Any
) -> None:
    make_versions(1)
    cli("alias", "--model", model, "--name", "champion", "--version", 1)
    before = history(cli, model)
    outcome = cli("alias", "--model", model, "--name", "champion", "--version", 1)
    assert (outcome.code, "Nothing to change" in outcome.out) == (0, True)
    assert history(cli, model) == before


@pytest.mark.parametrize(
    "name", ["latest", "LATEST", "v1", "V12", "has space", "x" * 300, "", "a.b", "pr/od"]
)
def test_bad_alias_names_are_refused_before_any_request(run_module: Any, model: str, name: str) -> None:
    outcome = run_module("alias", "--model", model, "--name", name, "--version", 1,
                         extra_env={"MLFLOW_TRACKING_URI": "http://127.0.0.1:9"})  # fmt: skip
    assert outcome.code == 2, outcome.err
    assert outcome.err.count("\n") == 1 and outcome.err.startswith("error: alias")


def test_missing_alias_and_missing_version_are_not_found(
    cli: Any, client: Any, model: str, make_versions: Any
) -> None:
    make_versions(1)
    assert cli("alias", "--model", model, "--name", "ghost", "--delete").code == 4
    assert cli("alias", "--model", model, "--name", "champion", "--version", 7).code == 4
    assert aliases(client, model) == {}


def test_a_prompt_is_not_a_model_to_stage_or_alias(cli: Any, server: Any, model: str) -> None:
    import requests

    api = f"{server.url}/api/2.0/mlflow"
    prompt_tag = [{"key": "mlflow.prompt.is_prompt", "value": "true"}]
    requests.post(f"{api}/registered-models/create", json={"name": model, "tags": prompt_tag}, timeout=30)
    created = requests.post(
        f"{api}/model-versions/create", json={"name": model, "source": "prompt:/text"}, timeout=30
    )
    assert created.status_code == 200, created.text
    for args in (
        ["alias", "--name", "champion", "--version", 1],
        ["stage", "--version", 1, "--stage", "Staging"],
    ):
        outcome = cli(*args, "--model", model)
        assert outcome.code == 4 and "does not exist" in outcome.err, outcome
    stored = requests.get(
        f"{api}/model-versions/get", params={"name": model, "version": "1"}, timeout=30
    ).json()
    assert stored["model_version"]["current_stage"] == "None" and not stored["model_version"].get("aliases")
