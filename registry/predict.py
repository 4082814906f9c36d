"""Load a registered version by `models:/` URI and predict on its stored input example."""

from __future__ import annotations

import dataclasses

from registry.client import Registry
from registry.errors import NotFound
from registry.versions import resolve


@dataclasses.dataclass(frozen=True)
class Prediction:
    version: int
    predictions: list[int]


def predict(registry: Registry, model: str, reference: str) -> Prediction:
    """Resolve the reference (see `validate.models_uri`) to a version, then load exactly that
    version, so the answer names the version that predicted even if an alias moves meanwhile."""
    number = resolve(registry, model, reference)
    with registry.errors(f"version {number} of model {model!r}"):
        import mlflow.pyfunc

        loaded = mlflow.pyfunc.load_model(f"models:/{model}/{number}")
    example = loaded.input_example
    if example is None:
        raise NotFound(f"version {number} of model {model!r} has no stored input example")
    with registry.errors(f"prediction with version {number} of model {model!r}"):
        predictions = loaded.predict(example)
    return Prediction(version=number, predictions=[int(p) for p in predictions])
