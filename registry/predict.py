"""Load a registered version by `models:/` URI and predict on its stored input example."""

from __future__ import annotations

import dataclasses

from registry import validate
from registry.client import Registry
from registry.errors import NotFound
from registry.versions import resolve


@dataclasses.dataclass(frozen=True)
class Prediction:
    uri: str
    version: int
    predictions: list[int]


def predict(registry: Registry, uri: str) -> Prediction:
    """Resolve `uri` to a version, then load exactly that version (an alias may move meanwhile)."""
    model, reference = validate.models_uri(uri)
    number = resolve(registry, model, reference)
    with registry.errors(f"version {number} of model {model!r}"):
        import mlflow.pyfunc

        loaded = mlflow.pyfunc.load_model(f"models:/{model}/{number}")
    example = loaded.input_example
    if example is None:
        raise NotFound(f"version {number} of model {model!r} has no stored input example")
    with registry.errors(f"prediction with version {number} of model {model!r}"):
        predictions = loaded.predict(example)
    return Prediction(uri=uri, version=number, predictions=[int(p) for p in predictions])
