"""LIFECYCLE=aliases (champion, challenger, a retired tag; no stage call) and `migrate` between lifecycles.

The lifecycle commands themselves run in both lifecycles in test_stage.py, test_rollback.py and
test_races.py (the `lifecycle` fixture); here: what only the aliases lifecycle has.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.conftest import aliases, history, roles, stages

ALIASES = pytest.mark.parametrize("lifecycle", ["aliases"], indirect=True)


def run(cli: Any, *args: Any) -> Any:
    outcome = cli(*args)
    assert outcome.code == 0, outcome.err
    return outcome


@ALIASES
def test_the_aliases_lifecycle_end_to_end(
    cli: Any, client: Any, model: str, make_versions: Any, lifecycle: str
) -> None:
    make_versions(3)
    run(cli, "stage", "--model", model, "--version", 1, "--stage", "Staging")
    run(cli, "stage", "--model", model, "--version", 1, "--stage", "Production")
    run(cli, "stage", "--model", model, "--version", 2, "--stage", "Staging")
    promoted = run(cli, "stage", "--model", model, "--version", 2, "--stage", "Production")
    assert "alias champion: version 1 -> version 2" in promoted.out
    assert roles(client, model, lifecycle) == {1: "Archived", 2: "Production", 3: "None"}
    assert aliases(client, model) == {"champion": 2}
    assert client.get_registered_model(model).tags["registry.lifecycle"] == "aliases"

    listed = json.loads(run(cli, "versions", "--json", "--model", model).out)
    assert [(row["version"], row["role"]) for row in listed] == [(3, "none"), (2, "champion"), (1, "retired")]
    assert "stage" not in listed[0]
    table = run(cli, "versions", "--model", model).out
    assert table.splitlines()[0].split()[:3] == ["version", "role", "aliases"]
    champion = json.loads(run(cli, "versions", "--json", "--stage", "Production", "--model", model).out)
    assert [row["version"] for row in champion] == [2]

    plain = cli("alias", "--model", model, "--name", "challenger", "--version", 3)
    assert plain.code == 5 and "stage --version N --stage Staging" in plain.err  # a role moves by `stage`
    assert "no drift" in run(cli, "doctor", "--model", model).out
    run(cli, "rollback", "--model", model)
    assert roles(client, model, lifecycle) == {1: "Production", 2: "Archived", 3: "None"}
    assert "-> version 1" in run(cli, "predict", "--model", model, "--stage", "Production").out
    assert "no drift" in run(cli, "doctor", "--model", model).out
    assert run(cli, "history", "--json", "--at", "2999-01-01T00:00:00Z", "--model", model).out.count(
        '"lifecycle": "aliases"'
    )
    client.set_registered_model_alias(model, "champion", "3")  # a promotion made in the UI
    assert cli("doctor", "--model", model).code == 6
    fixed = run(cli, "doctor", "--fix", "--model", model)
    assert "all mended" in fixed.out and "recorded Production -> None" in fixed.out
    assert run(cli, "rollback", "--model", model).out.count("version 1: None -> Production")  # the ledger's
    client.transition_model_version_stage(model, "3", "Staging")  # a stage set outside the tool
    drift = cli("doctor", "--model", model)
    assert drift.code == 6 and "stage-unused" in drift.out


@ALIASES
def test_a_model_in_the_other_lifecycle_is_refused_and_migrate_is_named(
    cli: Any,
    client: Any,
    model: str,
    make_versions: Any,
    model_source: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
    lifecycle: str,
) -> None:
    make_versions(2)
    run(cli, "stage", "--model", model, "--version", 1, "--stage", "Production")  # claims the model
    monkeypatch.setenv("LIFECYCLE", "stages")
    for args in (("stage", "--version", 2, "--stage", "Production"), ("rollback", "--to", 2), ("versions",)):
        outcome = cli(*args, "--model", model)
        assert outcome.code == 5, args
        assert outcome.err.count("\n") == 1 and "LIFECYCLE=stages" in outcome.err
        assert "migrate --to stages" in outcome.err
    assert stages(client, model) == {1: "None", 2: "None"} and aliases(client, model) == {"champion": 1}

    other = model + "_s"  # a model in stages, met with LIFECYCLE=aliases
    client.create_registered_model(other)
    client.create_model_version(other, model_source[0], model_id=model_source[1])
    monkeypatch.setenv("LIFECYCLE", "stages")
    run(cli, "stage", "--model", other, "--version", 1, "--stage", "Staging")
    monkeypatch.setenv("LIFECYCLE", "aliases")
    refused = cli("stage", "--model", other, "--version", 1, "--stage", "Production")
    assert refused.code == 5 and "migrate --to aliases" in refused.err


def demo_like(cli: Any, model: str, make_versions: Any) -> None:
    """What `invoke demo` leaves: version 1 Production (prod on it) after a promotion of 2 and a
    rollback; 2 Archived."""
    make_versions(2)
    run(cli, "stage", "--model", model, "--version", 1, "--stage", "Staging")
    run(cli, "stage", "--model", model, "--version", 1, "--stage", "Production", "--alias", "prod")
    run(cli, "stage", "--model", model, "--version", 2, "--stage", "Production", "--alias", "prod")
    run(cli, "rollback", "--model", model, "--to", 1)


def test_migrate_round_trips_a_demo_registry_and_history_reads_across_it(
    cli: Any, client: Any, model: str, make_versions: Any, monkeypatch: pytest.MonkeyPatch, env: Any
) -> None:
    demo_like(cli, model, make_versions)
    before = (stages(client, model), aliases(client, model))
    assert before == ({1: "Production", 2: "Archived"}, {"prod": 1})
    time.sleep(1.1)  # the ledger's times have whole seconds
    moment = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    time.sleep(1.1)

    dry = run(cli, "migrate", "--model", model, "--to", "aliases", "--dry-run")
    assert "would change alias champion: (unset) -> version 1" in dry.out
    assert "would change lifecycle: stages -> aliases" in dry.out
    events = history(cli, model)
    assert (stages(client, model), aliases(client, model)) == before and history(cli, model) == events

    moved = run(cli, "migrate", "--model", model, "--to", "aliases", "--reason", "off stages")
    assert "Set LIFECYCLE=aliases" in moved.out
    monkeypatch.setenv("LIFECYCLE", "aliases")
    assert roles(client, model, "aliases") == {1: "Production", 2: "Archived"}  # no MLflow stage left
    assert aliases(client, model) == {"prod": 1, "champion": 1}
    assert len({e["seq"] for e in history(cli, model)} - {e["seq"] for e in events}) == 1  # one entry
    assert "no drift" in run(cli, "doctor", "--model", model).out
    then = json.loads(run(cli, "history", "--json", "--at", moment, "--model", model).out)
    assert (then["lifecycle"], then["stages"]["Production"]) == ("stages", [1])
    now = json.loads(run(cli, "history", "--json", "--at", "2999-01-01T00:00:00Z", "--model", model).out)
    assert (now["lifecycle"], now["stages"]["Production"]) == ("aliases", [1])
    assert "Nothing to change" in run(cli, "migrate", "--model", model, "--to", "aliases").out

    monkeypatch.setenv("LIFECYCLE", "stages")
    run(cli, "migrate", "--model", model, "--to", "stages")
    assert (stages(client, model), aliases(client, model)) == before
    assert "no drift" in run(cli, "doctor", "--model", model).out
    assert "lifecycle" not in client.get_model_version(model, "2").tags


def test_migrate_refuses_an_ambiguous_registry_and_names_doctor(
    cli: Any, client: Any, model: str, make_versions: Any
) -> None:
    make_versions(2)
    for number in ("1", "2"):  # two Production versions, as a script racing MLflow's archiving leaves
        client.transition_model_version_stage(model, number, "Production")
    for args in ((), ("--dry-run",)):
        outcome = cli("migrate", "--model", model, "--to", "aliases", *args)
        assert outcome.code == 5
        assert "2 versions in Production (1, 2)" in outcome.err and "doctor" in outcome.err
    assert stages(client, model) == {1: "Production", 2: "Production"} and aliases(client, model) == {}
    assert "registry.lifecycle" not in client.get_registered_model(model).tags


@ALIASES
def test_train_tags_a_new_model_with_the_lifecycle_and_records_it(
    cli: Any, client: Any, model: str, trained: Any, lifecycle: str
) -> None:
    trained(1)
    assert client.get_registered_model(model).tags["registry.lifecycle"] == "aliases"
    assert [(e["action"], e["to"]) for e in history(cli, model)][-2:] == [
        ("lifecycle", "aliases"),
        ("train", "None"),
    ]
    run(cli, "stage", "--model", model, "--version", 1, "--stage", "Production")
    assert roles(client, model, lifecycle) == {1: "Production"} and aliases(client, model) == {"champion": 1}


@ALIASES
def test_a_promotion_into_another_model_keeps_its_lifecycle_and_gates_against_its_champion(
    cli: Any, client: Any, model: str, make_versions: Any, monkeypatch: pytest.MonkeyPatch, lifecycle: str
) -> None:
    make_versions(2)
    client.set_model_version_tag(model, "1", "accuracy", "0.95")
    client.set_model_version_tag(model, "2", "accuracy", "0.90")
    prod = f"prod.{model}"
    run(cli, "promote", "--model", model, "--version", 1, "--to-model", prod)
    assert client.get_registered_model(prod).tags["registry.lifecycle"] == "aliases"  # claimed by the copy
    assert [(e["action"], e["to"]) for e in history(cli, prod)][1:3] == [
        ("lifecycle", "aliases"),
        ("promote", None),
    ]
    run(cli, "stage", "--model", prod, "--version", 1, "--stage", "Production")
    assert roles(client, prod, lifecycle) == {1: "Production"} and aliases(client, prod) == {"champion": 1}

    promote_2 = ("promote", "--model", model, "--version", 2, "--to-model", prod)
    worse = cli(*promote_2)
    assert worse.code == 5 and "metric gate" in worse.err and "0.9500" in worse.err, worse.err
    for alias, role in (("champion", "Production"), ("challenger", "Staging")):  # moved by `stage` only
        moved = cli(*promote_2, "--to-alias", alias, "--force", "--reason", "r")
        assert moved.code == 5 and f"--stage {role}" in moved.err and "holds a role" in moved.err
    run(cli, *promote_2, "--force", "--reason", "hotfix")
    monkeypatch.setenv("REGISTRY_GATES", "false")
    run(cli, "stage", "--model", prod, "--version", 2, "--stage", "Production")
    run(cli, "rollback", "--model", prod)
    assert roles(client, prod, lifecycle) == {1: "Production", 2: "Archived"}
    assert "no drift" in run(cli, "doctor", "--model", prod).out

    staged = f"staged.{model}"  # a target model in the stages lifecycle is refused, nothing copied
    client.create_registered_model(staged, tags={"registry.lifecycle": "stages"})
    refused = cli("promote", "--model", model, "--version", 1, "--to-model", staged)
    assert refused.code == 5 and "migrate --to aliases" in refused.err
    assert not client.search_model_versions(f"name='{staged}'")
