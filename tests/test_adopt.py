"""A registry made without this tool, the way MLflow's tutorial makes it (`log_model(...,
registered_model_name=...)`, accuracy logged as a run metric, no version tag, stages set with
MlflowClient): the metric gate, `versions` and `--dry-run` read the run's metric and say so."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from bench.proxy import CountingProxy
from registry.client import Registry
from registry.config import with_tracking_uri
from registry.versions import list_versions
from tests.conftest import Server, stages

ACCURACIES = (0.97, 0.90)  # versions 1 and 2: the second is worse


@pytest.fixture(scope="module")
def tutorial(server: Server) -> str:
    """A registered model built as MLflow's tutorial builds it; version 1 in Production."""
    import mlflow
    from mlflow import MlflowClient
    from mlflow.models import infer_signature
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    from registry.train import pip_requirements

    name = f"tutorial_{uuid.uuid4().hex[:8]}"
    features, target = load_iris(return_X_y=True, as_frame=True)
    mlflow.set_tracking_uri(server.url)
    mlflow.set_experiment("tutorial")
    for c_param, accuracy in zip((1.0, 0.5), ACCURACIES, strict=True):
        with mlflow.start_run():
            classifier = LogisticRegression(C=c_param, max_iter=200).fit(features, target)
            mlflow.log_params({"C": c_param})
            mlflow.log_metric("accuracy", accuracy)
            mlflow.sklearn.log_model(
                classifier,
                name="model",
                signature=infer_signature(features, classifier.predict(features)),
                input_example=features.head(5),
                registered_model_name=name,
                pip_requirements=pip_requirements(),  # the tutorial infers them; this only saves seconds
            )
    client = MlflowClient(server.url, registry_uri=server.url)
    client.transition_model_version_stage(name, "1", "Production")
    return name


def test_versions_shows_the_run_metric_when_the_version_has_no_tag(cli: Any, tutorial: str) -> None:
    rows = json.loads(cli("versions", "--json", "--model", tutorial).out)
    assert [(row["version"], row["accuracy"]) for row in rows] == [(2, 0.90), (1, 0.97)]
    assert cli("versions", "--model", tutorial).out.splitlines()[2].rstrip().endswith("0.9000")


def test_the_metric_gate_compares_run_metrics_and_says_where_they_came_from(
    cli: Any, client: Any, tutorial: str
) -> None:
    promote = ("stage", "--model", tutorial, "--version", 2, "--stage", "Production")
    dry = cli(*promote, "--dry-run")
    assert dry.code == 5, dry.err
    assert "metric gate: FAIL: accuracy 0.9000 of version 2 < 0.9700" in dry.out
    assert "version 2: 0.9000 (run metric)" in dry.out
    assert "Production version 1: 0.9700 (run metric)" in dry.out
    refused = cli(*promote)
    assert refused.code == 5 and "refused by the metric gate" in refused.err and "(run metric)" in refused.err
    assert stages(client, tutorial) == {1: "Production", 2: "None"}


def test_a_version_tag_wins_over_the_run_metric(cli: Any, client: Any, tutorial: str) -> None:
    client.set_model_version_tag(tutorial, "2", "accuracy", "0.99")
    try:
        dry = cli("stage", "--model", tutorial, "--version", 2, "--stage", "Production", "--dry-run")
        assert dry.code == 0, dry.out + dry.err
        assert "accuracy 0.9900 of version 2 >= 0.9700 (version 2: 0.9900 (version tag); " in dry.out
        assert "Production version 1: 0.9700 (run metric)" in dry.out
    finally:
        client.delete_model_version_tag(tutorial, "2", "accuracy")


@pytest.fixture
def proxy(server: Server) -> Iterator[CountingProxy]:
    with CountingProxy(server.url) as counting:
        yield counting


def test_run_metrics_cost_one_request_per_run_and_only_without_the_tag(
    server: Server, proxy: CountingProxy, client: Any, tutorial: str, make_versions: Any, model: str
) -> None:
    make_versions(2)  # two versions of one run, tagged as `train` tags them: no run is read
    for number in ("1", "2"):
        client.set_model_version_tag(model, number, "accuracy", "0.9333")
    registry = Registry(with_tracking_uri(server.settings, proxy.url))
    proxy.reset()
    assert [row.accuracy for row in list_versions(registry, tutorial)] == list(ACCURACIES[::-1])
    assert proxy.breakdown().get("GET /runs/get") == 2, proxy.breakdown()
    proxy.reset()
    list_versions(registry, tutorial)  # read once per command: the same Registry remembers them
    assert "GET /runs/get" not in proxy.breakdown()
    assert [row.accuracy for row in list_versions(registry, model)] == [0.9333, 0.9333]
    assert "GET /runs/get" not in proxy.breakdown(), proxy.breakdown()
