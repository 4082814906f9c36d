"""Load a registered version by `models:/` URI and predict on its stored input example."""

from __future__ import annotations

import dataclasses

from registry.client import Registry
from registry.errors import NotFound, Refused
from registry.gates import prediction_error
from registry.versions import resolve


@dataclasses.dataclass(frozen=True)
class Prediction:
    version: int
    predictions: list[int]


def predict(registry: Registry, model: str, reference: str) -> Prediction:
    """Resolve the reference (see `validate.models_uri`) to a version, then load exactly that
    version, so the answer names the version that predicted even if an alias moves meanwhile.

    A version that does not load, or fails on its own input example, is Refused naming why."""
    number = resolve(registry, model, reference)
    loaded = registry.load_model(model, number)
    example = loaded.input_example
    if example is None:
        raise NotFound(f"version {number} of model {model!r} has no stored input example")
    try:
        predictions = loaded.predict(example)
    except Exception as exc:  # schema enforcement and the model's own code can raise anything
        why = prediction_error(exc)
        raise Refused(f"version {number} of model {model!r} fails on its own input example: {why}") from None
    return Prediction(version=number, predictions=[int(p) for p in predictions])
