"""Stage transitions and alias moves, gated and checked (see plan.py), each change recorded in the ledger."""

from __future__ import annotations

from registry import gates, ledger
from registry.client import ModelState, Registry, Version
from registry.errors import NotFound, Refused
from registry.gates import failures
from registry.ledger import Change
from registry.plan import (
    Plan,
    alias_changes,
    following,
    guarded,
    protection,
    recheck,
    require_reason,
    takes_production_down,
)
from registry.validate import HELD_STAGES
from registry.versions import iter_versions


def stage(
    registry: Registry,
    model: str,
    number: int,
    target: str,
    *,
    alias: str | None = None,
    archive: bool = True,
    reason: str = "",
    force: bool = False,
    dry_run: bool = False,
) -> Plan:
    """Move version `number` into `target`, archiving the current holders; gated for Production.

    The plan's changes are empty when nothing moved; with `dry_run` nothing is written at all.
    """
    require_reason(force, reason)
    if not archive and target == "Production":
        raise Refused("--no-archive is refused for Production: two Production versions are never wanted")
    candidate = gates.Candidate(registry, model, number)
    if target == "Production" and registry.get_version(model, number).stage != target:
        candidate.load_check()  # before the lock: loading takes seconds and needs no lock
    with guarded(registry, model, f"stage {number} {target}", dry_run):
        state = registry.model_state(model)
        holders = stage_holders(registry, model)
        version = ready_version(registry, model, number, state)
        held = [v for v in holders if v.stage == target and v.number != number]
        changes = stage_moves(version, target, [v.number for v in held] if archive else [])
        checks = [] if target == "Production" else protection(registry, alias)
        checks += takes_production_down(version, target, holders)
        if changes and target == "Production":
            checks += gates.check(registry, candidate, version, held, metric=True)
        wanted = following(registry.settings, state.aliases, version, target, holders)
        if alias is not None:
            wanted[alias] = number
        changes += alias_changes(state.aliases, wanted)
        plan = Plan(changes, checks)
        if not dry_run:
            if changes and target == "Production":
                recheck(registry, model, state)
            attempt = Change("refused", number, from_=version.stage, to=target, alias=alias)
            carry_out(registry, model, plan, attempt, reason=reason, force=force, archive=archive)
    return plan


def set_alias(
    registry: Registry,
    model: str,
    alias: str,
    number: int,
    *,
    reason: str = "",
    force: bool = False,
    dry_run: bool = False,
) -> Plan:
    """Point `alias` at version `number` (refused for a protected alias); no changes when it is there."""
    require_reason(force, reason)
    with guarded(registry, model, f"alias {alias} {number}", dry_run):
        state = registry.model_state(model)
        current = state.aliases
        if number not in current.values() and state.version(number) is None:
            registry.get_version(model, number)  # NotFound before anything is written
        plan = Plan(alias_changes(current, {alias: number}), protection(registry, alias))
        if not dry_run:
            before = current.get(alias)
            before_text = None if before is None else str(before)
            attempt = Change("refused", number, from_=before_text, to=str(number), alias=alias)
            carry_out(registry, model, plan, attempt, reason=reason, force=force)
    return plan


def delete_alias(
    registry: Registry,
    model: str,
    alias: str,
    *,
    reason: str = "",
    force: bool = False,
    dry_run: bool = False,
) -> Plan:
    """Remove `alias` (refused for a protected alias); NotFound when it is not set."""
    require_reason(force, reason)
    with guarded(registry, model, f"alias {alias} --delete", dry_run):
        current = registry.model_state(model).aliases.get(alias)
        if current is None:
            raise NotFound(f"alias {alias!r} of model {model!r} is not set; see `versions`")
        plan = Plan(alias_changes({alias: current}, {alias: None}), protection(registry, alias))
        if not dry_run:
            attempt = Change("refused", current, from_=str(current), alias=alias)
            carry_out(registry, model, plan, attempt, reason=reason, force=force)
    return plan


def stage_holders(registry: Registry, model: str) -> list[Version]:
    """Every version of `model` in Staging or Production. MLflow's model read shows only the latest
    one per stage, so versions put there outside this tool (the UI, a script) are found by a search
    of all versions."""
    return [version for version in iter_versions(registry, model) if version.stage in HELD_STAGES]


def ready_version(registry: Registry, model: str, number: int, state: ModelState) -> Version:
    """Version `number`, refused unless READY; read on its own only when `state` does not show it."""
    version = state.version(number) or registry.get_version(model, number)
    if version.status != "READY":
        raise Refused(
            f"version {number} of model {model!r} is {version.status}, not READY; "
            "wait for its registration to finish"
        )
    return version


def stage_moves(version: Version, target: str, holders: list[int], action: str = "stage") -> list[Change]:
    """The changes that moving `version` into `target` makes, the archived `holders` included."""
    if version.stage == target:
        return []
    changes = [Change(action, version.number, from_=version.stage, to=target)]
    changes += [
        Change("archive", held, from_=target, to="Archived") for held in holders if held != version.number
    ]
    return changes


def carry_out(
    registry: Registry,
    model: str,
    plan: Plan,
    attempt: Change,
    *,
    reason: str,
    force: bool,
    archive: bool = True,
) -> None:
    """Apply `plan` and record it, or record `attempt` as refused and raise Refused."""
    refused = plan.refusal
    if refused and not force:
        ledger.ensure(registry, model)
        why = f"{refused} (reason given: {reason})" if reason else refused
        ledger.record(registry, model, [attempt], why, result="refused")
        raise Refused(refused)
    if not plan.changes:
        return
    ledger.ensure(registry, model)
    apply_changes(registry, model, plan.changes, archive=archive)
    if refused:
        forced_past = f"{reason} (forced past {failures(plan.checks)})"
        ledger.record(registry, model, plan.changes, forced_past, result="forced")
    else:
        ledger.record(registry, model, plan.changes, reason)


def apply_changes(registry: Registry, model: str, changes: list[Change], *, archive: bool) -> None:
    """Carry out the stage move (MLflow archives the old holders in the same call) and alias moves."""
    for change in changes:
        registry.fence()
        if change.action in ("stage", "rollback") and change.to is not None and change.version:
            registry.transition(
                model, change.version, change.to, archive_existing=archive and change.to in HELD_STAGES
            )
        elif change.action == "alias" and change.alias and change.version:
            registry.set_alias(model, change.alias, change.version)
        elif change.action == "alias-delete" and change.alias:
            registry.delete_alias(model, change.alias)
        else:
            continue
        registry.fence(written=True)
