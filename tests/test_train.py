"""`train` logs a model with signature and input example and registers a new version."""

from __future__ import annotations

import re
from typing import Any

from tests.conftest import history


def test_train_registers_versions_one_two_three_with_signature_example_and_accuracy(
    cli: Any, client: Any, model: str
) -> None:
    outputs = [cli("train", "--model", model, "--c-param", c) for c in ("1.0", "0.5", "2")]
    assert [o.code for o in outputs] == [0, 0, 0]
    pattern = re.compile(rf"^Registered {model} version (\d) \(run [0-9a-f]{{32}}, accuracy 0\.\d{{4}}\)$")
    assert [pattern.match(o.out.strip()).group(1) for o in outputs] == ["1", "2", "3"]  # type: ignore[union-attr]
    assert all(o.err == "" for o in outputs)

    from mlflow.models import Model

    for number in (1, 2, 3):
        version = client.get_model_version(model, str(number))
        assert version.status == "READY"
        accuracy = float(version.tags["accuracy"])
        assert 0.8 <= accuracy <= 1.0
        run = client.get_run(version.run_id)
        assert run.data.metrics["accuracy"] == accuracy or abs(run.data.metrics["accuracy"] - accuracy) < 1e-4
        assert set(run.data.params) >= {"C", "max_iter", "seed"}
        info = Model.load(f"models:/{model}/{number}")
        assert info.signature is not None
        assert next(c.name for c in info.signature.inputs.inputs) == "sepal length (cm)"
        assert info.saved_input_example_info is not None
    assert client.get_run(client.get_model_version(model, "2").run_id).data.params["C"] == "0.5"


def test_train_is_recorded_in_the_ledger_after_a_baseline(cli: Any, model: str) -> None:
    assert cli("train", "--model", model, "--reason", "first try").code == 0
    events = history(cli, model)
    assert [(e["action"], e["version"], e["to"]) for e in events] == [
        ("baseline", None, None),
        ("train", 1, "None"),
    ]
    assert events[1]["reason"] == "first try"
    assert events[1]["actor"] == "tester"


def test_train_rejects_a_negative_c_before_any_request(cli: Any, model: str) -> None:
    outcome = cli("train", "--model", model, "--c-param", "-1")
    assert outcome.code == 2
    assert "--c-param" in outcome.err
