"""`predict` loads a version through each of the three `models:/` URI forms."""

from __future__ import annotations

from typing import Any


def test_each_uri_form_resolves_to_the_right_version_and_predicts(
    cli: Any, client: Any, model: str, trained: Any
) -> None:
    trained(3)
    cli("stage", "--model", model, "--version", 2, "--stage", "Production")
    client.set_registered_model_alias(model, "prod", "3")
    expected = {
        f"models:/{model}/1": 1,
        f"models:/{model}/Production": 2,
        f"models:/{model}@prod": 3,
    }
    for uri, version in expected.items():
        outcome = cli("predict", "--model", model, "--uri", uri)
        assert outcome.code == 0, outcome.err
        first, second = outcome.out.splitlines()
        assert first == f"{uri} -> version {version}"
        predictions = [int(p) for p in second.removeprefix("predictions: [").rstrip("]").split(",")]
        assert len(predictions) == 5 and set(predictions) <= {0, 1, 2}
    assert cli("predict", "--model", model, "--alias", "prod").out.startswith(
        f"models:/{model}@prod -> version 3"
    )
    assert cli("predict", "--model", model, "--stage", "production").out.startswith(
        f"models:/{model}/Production -> version 2"
    )


def test_predict_reports_missing_targets_and_bad_uris(cli: Any, model: str, make_versions: Any) -> None:
    make_versions(1)
    assert cli("predict", "--model", model, "--stage", "Staging").code == 4
    assert cli("predict", "--model", model, "--alias", "ghost").code == 4
    assert cli("predict", "--model", model, "--version", 9).code == 4
    assert cli("predict", "--uri", "runs:/abc/model").code == 2
    assert cli("predict", "--uri", f"models:/{model}/Prod").code == 2


def test_a_version_that_cannot_load_is_refused_in_one_line(cli: Any, client: Any, model: str) -> None:
    client.create_registered_model(model)
    client.create_model_version(model, "fake:/model")
    outcome = cli("predict", "--model", model, "--version", 1)
    assert outcome.code == 5, outcome
    assert outcome.err.startswith(f"error: version 1 of model '{model}' cannot be loaded: ")
    assert outcome.err.count("\n") == 1 and "Traceback" not in outcome.err
