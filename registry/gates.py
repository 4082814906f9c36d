"""Gates a version passes before it becomes Production (promotion and rollback).

1. load: the candidate loads by its `models:/` URI and predicts on its own stored input example;
2. signature: the candidate accepts the Production version's input example (same columns, types);
3. metric (promotion only): the candidate's GATE_METRIC is no worse than the Production version's,
   within GATE_TOLERANCE, where GATE_DIRECTION says which way is better; each figure is the version
   tag, else the metric of the same name of the run the version came from (`versions.figure`).

A version that cannot be loaded fails gate 1, naming why: a gate never waves through what it
could not check. Loading takes seconds, so callers load the candidate before taking the lock
when they know it then (`stage`, `rollback --to N`); a plain `rollback` learns it from the ledger
inside the lock and loads it there.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from registry.client import Registry, Version
from registry.errors import Refused, first_line
from registry.versions import Figure, figure


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
    registry: Registry,
    candidate: Candidate,
    version: Version,
    champions: list[Version],
    metric: bool,
    runs: Registry | None = None,
) -> list[Check]:
    """Run the gates for `candidate` (whose registry entry is `version`) against the Production
    versions it replaces (`champions`): the newest one's input example, the best one's metric.
    `runs`: the server holding `version`'s run, when not `registry`'s (a copy from another server)."""
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
        checks.append(_metric(registry, version, best(registry, others), runs or registry))
    return checks


def best(registry: Registry, versions: list[Version]) -> Version:
    """The version with the best GATE_METRIC, tag or run metric (the newest when none has it)."""
    settings = registry.settings
    scored = [(found.value, v) for v in versions if (found := figure(registry, v, settings.gate_metric))]
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


def _metric(registry: Registry, version: Version, champion: Version, runs: Registry) -> Check:
    """The metric gate; each figure says where it was read ("0.9500 (run metric)")."""
    settings = registry.settings
    name, tolerance = settings.gate_metric, settings.gate_tolerance
    mine, theirs = figure(runs, version, name), figure(registry, champion, name)
    if theirs is None:
        return Check(
            "metric",
            True,
            f"Production version {champion.number} has no {name} (version tag or run metric) to compare",
        )
    if mine is None:
        return Check(
            "metric",
            False,
            f"version {version.number} has no {name} (version tag or run metric); Production version "
            f"{champion.number} has {_said(theirs)}",
        )
    higher = settings.gate_direction == "higher"
    ok = mine.value >= theirs.value - tolerance if higher else mine.value <= theirs.value + tolerance
    relation = (">=" if higher else "<=") if ok else ("<" if higher else ">")
    bound = theirs.value - tolerance if higher else theirs.value + tolerance
    return Check(
        "metric",
        ok,
        f"{name} {mine.value:.4f} of version {version.number} {relation} {bound:.4f} "
        f"(version {version.number}: {_said(mine)}; Production version {champion.number}: {_said(theirs)}; "
        f"tolerance {tolerance:g}, {settings.gate_direction} is better)",
    )


def _said(found: Figure) -> str:
    return f"{found.value:.4f} ({found.source})"


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
