"""`doctor`: find drift between the registry, this tool's rules and the ledger, and mend what is safe.

Drift is (1) more than one version in Staging or Production; (2) a protected alias, or one that follows a
stage (PROD_ALIAS; STAGING_ALIAS with mirroring), on a version not in its stage, or a following alias missing;
(3) stage holders or aliases that disagree with what the ledger says (a change made in the UI, or a
crash between a change and its ledger event). Other aliases on Archived versions are fine.

Safe repairs: archive the extra holders when the ledger names which one is right; point a tied alias
at its stage's only holder (or remove a following one whose stage is empty); record what the registry
shows as `observed` ledger events. Each repair is a ledger event with result `repair`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from registry import ledger, lock, roles
from registry.client import Registry, Version
from registry.ledger import Change
from registry.plan import stage_aliases
from registry.promote import apply_changes
from registry.timetravel import HELD_STAGES, Snapshot, replay
from registry.versions import all_versions, utc_iso

LEDGER_CHECK = "ledger-drift"
REGISTRY_PASSES = 3  # a repair may reveal the next one (an alias can move once its stage has one holder)


@dataclasses.dataclass(frozen=True)
class Finding:
    """One thing wrong, and the changes `--fix` makes for it (none: it needs a person)."""

    check: str
    subject: str
    detail: str
    repair: list[Change]

    def as_json(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "subject": self.subject,
            "detail": self.detail,
            "fixable": bool(self.repair),
        }


@dataclasses.dataclass(frozen=True)
class Report:
    """What is still wrong, and what `--fix` mended."""

    findings: list[Finding]
    repaired: list[Change]


def doctor(registry: Registry, model: str, fix: bool = False) -> Report:
    """Diagnose `model`; with `fix`, mend the registry first, then bring the ledger up to date."""
    findings = diagnose(registry, model)
    if not fix or not any(f.repair for f in findings):
        return Report(findings, [])
    repaired: list[Change] = []
    with lock.exclusive(registry, model, "doctor --fix"):
        lifecycle = roles.of(registry, model)
        for _ in range(REGISTRY_PASSES):
            mended = _mend(registry, model, lifecycle, diagnose(registry, model), ledger_too=False)
            if not mended:
                break
            repaired += mended
        repaired += _mend(registry, model, lifecycle, diagnose(registry, model), ledger_too=True)
        return Report(diagnose(registry, model), repaired)


def diagnose(registry: Registry, model: str) -> list[Finding]:
    """Everything wrong with `model` now (three reads: versions, aliases, ledger); stages are roles
    (`roles.Roles.role`)."""
    versions = all_versions(registry, model)
    state = registry.model_state(model)
    aliases = state.aliases
    lifecycle = roles.of(registry, model, state)
    stage_of = {v.number: lifecycle.role(v, aliases) for v in versions}
    events = ledger.events(registry, model)
    said = replay(events) if events else None
    findings = _crowded(stage_of, said) + _tied_aliases(registry, stage_of, aliases)
    if lifecycle.mode == "aliases":  # a stage set in the UI or by a script: readers of it are misled
        findings += [
            Finding(
                "stage-unused",
                f"version {v.number}",
                f"has the MLflow stage {v.stage}, which the aliases lifecycle does not use "
                f"(models:/{model}/{v.stage} answers it); set it back to None",
                [],
            )
            for v in versions
            if v.stage != "None"
        ]
    if said is not None:
        findings += _ledger_drift(stage_of, aliases, said) + _unrecorded(versions, stage_of, events)
    return findings


def _unrecorded(
    versions: list[Version], stage_of: dict[int, str], events: list[ledger.Event]
) -> list[Finding]:
    """Versions registered since the ledger began that no event names: a `train` whose ledger write
    failed, or a registration outside this tool. (Ones in Staging/Production are ledger drift.)"""
    named = {event.version for event in events}
    began = events[0].millis
    return [
        Finding(
            LEDGER_CHECK,
            f"version {v.number}",
            f"registered at {utc_iso(v.created_ms)} with no ledger event",
            [Change("observed", v.number, to=stage_of[v.number])],
        )
        for v in sorted(versions, key=lambda v: v.number)
        if v.number not in named and stage_of[v.number] not in HELD_STAGES and v.created_ms >= began
    ]


def record_drift(registry: Registry, model: str, why: str) -> list[Change]:
    """Record what the registry shows and the ledger does not, as `observed` events (the ledger's
    findings only; nothing in the registry moves). Called under the lock, such as by a command that
    took the lock over from a holder whose lease ran out, which may have changed things unrecorded."""
    findings = diagnose(registry, model)
    return _mend(registry, model, roles.of(registry, model), findings, ledger_too=True, why=why)


def _mend(
    registry: Registry,
    model: str,
    lifecycle: roles.Roles,
    findings: list[Finding],
    ledger_too: bool,
    why: str = "doctor --fix",
) -> list[Change]:
    """Repair the registry findings (or, with `ledger_too`, the ledger ones), one event each."""
    mended: list[Change] = []
    for finding in findings:
        if finding.repair and (finding.check == LEDGER_CHECK) == ledger_too:
            ledger.ensure(registry, model)
            apply_changes(registry, model, finding.repair, archive=False, lifecycle=lifecycle)
            ledger.record(registry, model, finding.repair, f"{why}: {finding.detail}", result="repair")
            mended += finding.repair
            if not ledger_too:
                break  # the next repair is planned on the registry as it is now
    return mended


def _holders(stage_of: dict[int, str], stage: str) -> list[int]:
    return sorted(n for n, held in stage_of.items() if held == stage)


def _crowded(stage_of: dict[int, str], said: Snapshot | None) -> list[Finding]:
    findings = []
    for stage in HELD_STAGES:
        holders = _holders(stage_of, stage)
        if len(holders) < 2:
            continue
        right = [n for n in (said.stages[stage] if said else []) if n in holders]
        keep = right[0] if len(right) == 1 else None
        detail = f"versions {', '.join(map(str, holders))} are all in {stage}"
        if keep is not None:
            detail += f"; the ledger says {keep}"
        repair = [Change("stage", n, from_=stage, to="Archived") for n in holders if n != keep]
        findings.append(Finding("two-holders", stage, detail, repair if keep is not None else []))
    return findings


def _tied_aliases(registry: Registry, stage_of: dict[int, str], aliases: dict[str, int]) -> list[Finding]:
    """Protected aliases belong on the Production version; the aliases that follow a stage (PROD_ALIAS,
    and STAGING_ALIAS with mirroring) on their stage's version, set when it has exactly one."""
    settings = registry.settings
    ties = dict.fromkeys(settings.protected_aliases, "Production")
    following = {alias: stage for stage, alias in stage_aliases(settings).items()}
    ties.update(following)
    findings = []
    for alias, stage in ties.items():
        holders = _holders(stage_of, stage)
        target = aliases.get(alias)
        if target is None:
            if alias in following and len(holders) == 1:
                repair = [Change("alias", holders[0], to=str(holders[0]), alias=alias)]
                detail = f"the alias that follows {stage} is missing; {stage} is version {holders[0]}"
                findings.append(Finding("alias-off-stage", f"alias {alias}", detail, repair))
            continue
        actual = stage_of.get(target, "deleted")
        if actual == stage:
            continue
        detail = f"points at version {target}, which is {actual}, not {stage}"
        if len(holders) == 1:
            repair = [Change("alias", holders[0], from_=str(target), to=str(holders[0]), alias=alias)]
        elif not holders and alias in following:
            repair = [Change("alias-delete", target, from_=str(target), alias=alias)]
        else:
            repair = []
        findings.append(Finding("alias-off-stage", f"alias {alias}", detail, repair))
    return findings


def _ledger_drift(stage_of: dict[int, str], aliases: dict[str, int], said: Snapshot) -> list[Finding]:
    findings = []
    believed = {n: stage for stage, numbers in said.stages.items() for n in numbers}
    actual = {n: stage for n, stage in stage_of.items() if stage in HELD_STAGES}
    for number in sorted(set(believed) | set(actual)):
        if believed.get(number) == actual.get(number):
            continue
        now = stage_of.get(number, "deleted")
        before = believed.get(number)
        detail = f"the ledger says {before or 'not in Staging/Production'}, the registry says {now}"
        repair = [Change("observed", number, from_=before, to=now)]
        findings.append(Finding(LEDGER_CHECK, f"version {number}", detail, repair))
    for alias in sorted(set(said.aliases) | set(aliases)):
        before_n, now_n = said.aliases.get(alias), aliases.get(alias)
        if before_n == now_n:
            continue
        detail = f"the ledger says version {before_n}, the registry says version {now_n}"
        holder = now_n if now_n is not None else before_n
        repair = [
            Change(
                "observed",
                holder,
                from_=None if before_n is None else str(before_n),
                to=None if now_n is None else str(now_n),
                alias=alias,
            )
        ]
        findings.append(Finding(LEDGER_CHECK, f"alias {alias}", detail, repair))
    return findings
