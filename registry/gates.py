"""Gates a version passes before it becomes Production (promotion and rollback).

1. load: the candidate loads by its `models:/` URI and predicts on its own stored input example;
2. signature: the candidate accepts the Production version's input example (same columns, types);
3. metric (promotion only): the candidate's GATE_METRIC version tag is no worse than the Production
   version's, within GATE_TOLERANCE, where GATE_DIRECTION says which way is better.

A version that cannot be loaded fails gate 1, naming why: a gate never waves through what it
could not check. Loading takes seconds, so callers load the candidate before taking the lock
when they know it then (`stage`, `rollback --to N`); a plain `rollback` learns it from the ledger
inside the lock and loads it there.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from registry.client import Registry, Version
from registry.config import Settings
from registry.errors import Refused, first_line


@dataclasses.dataclass(frozen=True)
class Check:
    """The verdict of one gate."""

    gate: str
    passed: bool
    detail: str

    def as_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


OFF = Check("gates", True, "gates are off (REGISTRY_GATES=false)")


class Candidate:
    """A version to be gated; loaded and tried at most once."""

    def __init__(self, registry: Registry, model: str, number: int) -> None:
        self.registry, self.model, self.number = registry, model, number
        self.loaded: Any = None
        self._check: Check | None = None

    def load_check(self) -> Check:
        if self._check is None:
            self._check = self._load() if self.registry.settings.gates else OFF
        return self._check

    def _load(self) -> Check:
        try:
            self.loaded = self.registry.load_model(self.model, self.number)
        except Refused as exc:
            return Check("load", False, str(exc))
        example = self.loaded.input_example
        if example is None:
            return Check("load", False, f"version {self.number} has no stored input example to predict on")
        failure = _predict(self.loaded, example)
        if failure:
            return Check("load", False, f"version {self.number} fails on its own input example: {failure}")
        return Check("load", True, f"version {self.number} loads and predicts {len(example)} example rows")


def check(
    registry: Registry, candidate: Candidate, version: Version, champions: list[Version], metric: bool
) -> list[Check]:
    """Run the gates for `candidate` (whose registry entry is `version`) against the Production
    versions it replaces (`champions`): the newest one's input example, the best one's metric."""
    if not registry.settings.gates:
        return [OFF]
    checks = [candidate.load_check()]
    others = [v for v in champions if v.number != candidate.number]
    if not others:
        nothing = "no other Production version to compare with"
        checks.append(Check("signature", True, nothing))
        if metric:
            checks.append(Check("metric", True, nothing))
        return checks
    checks.append(_signature(registry, candidate, max(v.number for v in others)))
    if metric:
        checks.append(_metric(registry.settings, version, best(registry.settings, others)))
    return checks


def best(settings: Settings, versions: list[Version]) -> Version:
    """The version with the best GATE_METRIC (the newest when none has it)."""
    scored = [(value, v) for v in versions if (value := _tag_value(v, settings.gate_metric)) is not None]
    if not scored:
        return max(versions, key=lambda v: v.number)
    pick = max if settings.gate_direction == "higher" else min
    return pick(scored, key=lambda pair: pair[0])[1]


def refusal(checks: list[Check]) -> str | None:
    """One line naming the first failed gate, or None when all passed."""
    failed = [c for c in checks if not c.passed]
    if not failed:
        return None
    return f"refused by the {failed[0].gate} gate: {failed[0].detail}; override with --force --reason"


def failures(checks: list[Check]) -> str:
    """The failed gates in one short phrase, for the ledger of a forced change."""
    return "; ".join(f"{c.gate} gate: {c.detail}" for c in checks if not c.passed)


def _signature(registry: Registry, candidate: Candidate, champion: int) -> Check:
    if candidate.loaded is None:
        return Check("signature", False, f"not checked: version {candidate.number} did not load")
    example = registry.input_example(candidate.model, champion)
    if example is None:
        return Check("signature", True, f"Production version {champion} has no input example to compare")
    schema = candidate.loaded.metadata.get_input_schema()
    if schema is not None and schema.has_input_names() and hasattr(example, "columns"):
        extra = sorted(set(map(str, example.columns)) - set(schema.input_names()))
        if extra:
            return Check(
                "signature",
                False,
                f"version {candidate.number} ignores columns {extra} of Production version {champion}",
            )
    failure = _predict(candidate.loaded, example)
    if failure:
        return Check(
            "signature",
            False,
            f"version {candidate.number} rejects Production version {champion}'s input example: {failure}",
        )
    return Check(
        "signature", True, f"version {candidate.number} accepts Production version {champion}'s input"
    )


def _metric(settings: Settings, version: Version, champion: Version) -> Check:
    name, tolerance = settings.gate_metric, settings.gate_tolerance
    mine, theirs = _tag_value(version, name), _tag_value(champion, name)
    if theirs is None:
        return Check("metric", True, f"Production version {champion.number} has no {name} to compare")
    if mine is None:
        return Check(
            "metric", False, f"version {version.number} has no {name} tag (Production has {theirs:.4f})"
        )
    higher = settings.gate_direction == "higher"
    ok = mine >= theirs - tolerance if higher else mine <= theirs + tolerance
    relation = (">=" if higher else "<=") if ok else ("<" if higher else ">")
    bound = theirs - tolerance if higher else theirs + tolerance
    return Check(
        "metric",
        ok,
        f"{name} {mine:.4f} of version {version.number} {relation} {bound:.4f} "
        f"(Production version {champion.number}: {theirs:.4f}, tolerance {tolerance:g}, "
        f"{settings.gate_direction} is better)",
    )


def _tag_value(version: Version, name: str) -> float | None:
    try:
        return float(version.tags[name])
    except (KeyError, ValueError):
        return None


def _predict(loaded: Any, example: Any) -> str:
    """'' when `loaded` predicts on `example`, else the first line of the error."""
    try:
        loaded.predict(example)
    except Exception as exc:  # schema enforcement and the model's own code can raise anything
        return prediction_error(exc)
    return ""


def prediction_error(exc: Exception) -> str:
    """The first line of why a prediction failed; MLflow's schema errors quote the whole frame first."""
    message = str(exc).strip()
    if "Error: " in message:
        return first_line(message.rsplit("Error: ", 1)[1]) or type(exc).__name__
    return first_line(exc)
