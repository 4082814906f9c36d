"""Promotion to Production is gated: the candidate loads and predicts, accepts the champion's input,
and its metric is no worse; refusals are one line, exit 5 and a `refused` ledger event."""

from __future__ import annotations

from typing import Any

from tests.conftest import history, stages


def promote(cli: Any, model: str, number: int, *extra: str) -> Any:
    return cli("stage", "--model", model, "--version", number, "--stage", "Production", *extra)


def test_a_version_that_cannot_be_loaded_is_refused_and_the_attempt_recorded(
    cli: Any, client: Any, model: str, make_versions: Any
) -> None:
    make_versions(1)
    client.create_model_version(model, "fake:/model")
    assert promote(cli, model, 1).code == 0
    outcome = promote(cli, model, 2, "--reason", "try")
    assert outcome.code == 5
    assert outcome.err.count("\n") == 1 and "load gate" in outcome.err and "cannot be loaded" in outcome.err
    assert stages(client, model) == {1: "Production", 2: "None"}
    last = history(cli, model)[-1]
    assert (last["action"], last["result"], last["version"], last["to"]) == (
        "refused",
        "refused",
        2,
        "Production",
    )
    assert last["actor"] == "tester" and "reason given: try" in last["reason"]


def test_a_worse_metric_is_refused_with_the_numbers_unless_tolerated(
    cli: Any, client: Any, model: str, make_versions: Any, monkeypatch: Any
) -> None:
    make_versions(2)
    client.set_model_version_tag(model, "1", "accuracy", "0.95")
    client.set_model_version_tag(model, "2", "accuracy", "0.90")
    assert promote(cli, model, 1).code == 0
    outcome = promote(cli, model, 2)
    assert outcome.code == 5
    assert "metric gate" in outcome.err and "0.9000" in outcome.err and "0.9500" in outcome.err
    monkeypatch.setenv("GATE_TOLERANCE", "0.1")
    assert promote(cli, model, 2).code == 0
    assert stages(client, model) == {1: "Archived", 2: "Production"}


def test_lower_is_better_turns_the_metric_gate_around(
    cli: Any, client: Any, model: str, make_versions: Any, monkeypatch: Any
) -> None:
    monkeypatch.setenv("GATE_METRIC", "rmse")
    monkeypatch.setenv("GATE_DIRECTION", "lower")
    make_versions(2)
    client.set_model_version_tag(model, "1", "rmse", "0.2")
    client.set_model_version_tag(model, "2", "rmse", "0.3")
    assert promote(cli, model, 1).code == 0
    assert "rmse 0.3000 of version 2 > 0.2000" in promote(cli, model, 2).err


def test_force_needs_a_reason_and_is_recorded(cli: Any, client: Any, model: str, make_versions: Any) -> None:
    make_versions(1)
    client.create_model_version(model, "fake:/model")
    assert promote(cli, model, 2, "--force").code == 2
    assert promote(cli, model, 2, "--force", "--reason", " ").code == 2
    outcome = promote(cli, model, 2, "--force", "--reason", "hotfix")
    assert outcome.code == 0, outcome.err
    assert "load gate: FORCED" in outcome.out
    assert stages(client, model)[2] == "Production"
    last = history(cli, model)[-1]
    assert last["result"] == "forced" and last["reason"].startswith("hotfix (forced past load gate")


def test_a_candidate_with_other_columns_fails_the_signature_gate(
    cli: Any, client: Any, model: str, make_versions: Any, server: Any
) -> None:
    import mlflow
    import pandas as pd
    from sklearn.dummy import DummyClassifier

    from registry.train import pip_requirements

    make_versions(1)
    frame = pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0]})
    mlflow.set_tracking_uri(server.url)
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(
            DummyClassifier().fit(frame, [0, 1]), name="model", input_example=frame,
            pip_requirements=pip_requirements(),
        )  # fmt: skip
    client.create_model_version(model, info.model_uri, model_id=info.model_id)
    assert promote(cli, model, 1).code == 0
    outcome = promote(cli, model, 2)
    assert outcome.code == 5
    assert "signature gate" in outcome.err and "Production version 1" in outcome.err


def test_rollback_runs_the_gates_but_not_the_metric_one(
    cli: Any, client: Any, model: str, make_versions: Any
) -> None:
    make_versions(2)
    client.set_model_version_tag(model, "1", "accuracy", "0.80")
    client.set_model_version_tag(model, "2", "accuracy", "0.95")
    assert promote(cli, model, 1, "--alias", "prod").code == 0
    assert promote(cli, model, 2, "--alias", "prod").code == 0
    outcome = cli("rollback", "--model", model, "--dry-run")
    assert outcome.code == 0 and "metric" not in outcome.out and "load gate: pass" in outcome.out
    assert cli("rollback", "--model", model).code == 0
    assert stages(client, model) == {1: "Production", 2: "Archived"}


def test_every_production_version_made_outside_the_tool_is_archived_recorded_and_gated(
    cli: Any, client: Any, model: str, make_versions: Any
) -> None:
    make_versions(3)
    for number, accuracy in ((1, "0.97"), (2, "0.90"), (3, "0.95")):
        client.set_model_version_tag(model, str(number), "accuracy", accuracy)
    client.transition_model_version_stage(model, "1", "Production")  # as the UI does: no archiving
    client.transition_model_version_stage(model, "2", "Production")
    refused = promote(cli, model, 3)
    assert refused.code == 5 and "0.9500 of version 3 < 0.9700" in refused.err  # the best, not the newest
    assert promote(cli, model, 3, "--force", "--reason", "both out").code == 0
    assert stages(client, model) == {1: "Archived", 2: "Archived", 3: "Production"}
    archived = [e["version"] for e in history(cli, model) if e["action"] == "archive"]
    assert sorted(archived) == [1, 2]


def test_a_change_made_outside_the_tool_while_the_gates_run_refuses_the_promotion(
    cli: Any, client: Any, model: str, make_versions: Any, monkeypatch: Any
) -> None:
    from registry import gates

    make_versions(3)
    assert promote(cli, model, 1).code == 0
    checked = gates.check

    def check_while_someone_uses_the_ui(*args: Any, **kwargs: Any) -> Any:
        client.set_registered_model_alias(model, "prod", "3")
        return checked(*args, **kwargs)

    monkeypatch.setattr(gates, "check", check_while_someone_uses_the_ui)
    outcome = promote(cli, model, 2)
    assert outcome.code == 5 and "changed while" in outcome.err and outcome.err.count("\n") == 1
    assert stages(client, model) == {1: "Production", 2: "None", 3: "None"}
