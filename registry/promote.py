"""Stage transitions and alias moves, gated and checked (see plan.py), each change recorded in the ledger."""

from __future__ import annotations

from registry import gates, ledger, roles
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
    stage_aliases,
    takes_production_down,
)
from registry.roles import Roles


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
        lifecycle = roles.of(registry, model, state)
        if not archive and lifecycle.mode == "aliases":
            raise Refused(
                "--no-archive does not apply with LIFECYCLE=aliases: a role alias holds one version"
            )
        holders = lifecycle.holders(registry, model, state)
        version = ready_version(registry, model, number, state, lifecycle)
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
            carry_out(
                registry,
                model,
                plan,
                attempt,
                reason=reason,
                force=force,
                archive=archive,
                lifecycle=lifecycle,
            )
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
        lifecycle = role_alias_check(registry, model, state, alias)
        current = state.aliases
        if number not in current.values() and state.version(number) is None:
            registry.get_version(model, number)  # NotFound before anything is written
        plan = Plan(alias_changes(current, {alias: number}), protection(registry, alias))
        if not dry_run:
            before = current.get(alias)
            before_text = None if before is None else str(before)
            attempt = Change("refused", number, from_=before_text, to=str(number), alias=alias)
            carry_out(registry, model, plan, attempt, reason=reason, force=force, lifecycle=lifecycle)
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
        state = registry.model_state(model)
        lifecycle = role_alias_check(registry, model, state, alias)
        current = state.aliases.get(alias)
        if current is None:
            raise NotFound(f"alias {alias!r} of model {model!r} is not set; see `versions`")
        plan = Plan(alias_changes({alias: current}, {alias: None}), protection(registry, alias))
        if not dry_run:
            attempt = Change("refused", current, from_=str(current), alias=alias)
            carry_out(registry, model, plan, attempt, reason=reason, force=force, lifecycle=lifecycle)
    return plan


def role_alias_check(registry: Registry, model: str, state: ModelState, alias: str) -> Roles:
    """The model's roles; Refused for a plain move of a role alias with LIFECYCLE=aliases, where the
    alias is the role itself (`stage` and `rollback` move it, gated and recorded as role moves)."""
    lifecycle = roles.of(registry, model, state)
    if lifecycle.mode == "aliases" and alias in stage_aliases(registry.settings).values():
        raise Refused(
            f"alias {alias!r} holds a role (LIFECYCLE=aliases): move it with `stage --version N --stage "
            f"{'Production' if alias == registry.settings.prod_alias else 'Staging'}` or `rollback`"
        )
    return lifecycle


def ready_version(
    registry: Registry, model: str, number: int, state: ModelState, lifecycle: Roles | None = None
) -> Version:
    """Version `number` with its role, refused unless READY; read on its own only when `state` does not
    show it."""
    lifecycle = lifecycle or Roles(registry.settings)
    version = lifecycle.version(registry, model, number, state)
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
    lifecycle: Roles | None = None,
) -> None:
    """Apply `plan` and record it, or record `attempt` as refused and raise Refused. A model that had
    no lifecycle yet is tagged with `lifecycle`'s (recorded with the plan)."""
    refused = plan.refusal
    if refused and not force:
        ledger.ensure(registry, model)
        why = f"{refused} (reason given: {reason})" if reason else refused
        ledger.record(registry, model, [attempt], why, result="refused")
        raise Refused(refused)
    if not plan.changes:
        return
    lifecycle = lifecycle or Roles(registry.settings)
    ledger.ensure(registry, model)
    changes = lifecycle.claim(registry, model) + plan.changes
    apply_changes(registry, model, plan.changes, archive=archive, lifecycle=lifecycle)
    if refused:
        forced_past = f"{reason} (forced past {failures(plan.checks)})"
        ledger.record(registry, model, changes, forced_past, result="forced")
    else:
        ledger.record(registry, model, changes, reason)


def apply_changes(
    registry: Registry, model: str, changes: list[Change], *, archive: bool, lifecycle: Roles
) -> None:
    """Carry out the role moves (`Roles.apply`: a stage transition, which archives the old holders in
    the same call, or a retired tag) and alias moves."""
    for change in changes:
        registry.fence()
        if apply_alias(registry, model, change) or lifecycle.apply(registry, model, change, archive):
            registry.fence(written=True)


def apply_alias(registry: Registry, model: str, change: Change) -> bool:
    """Carry out an alias move (`alias`, `alias-delete`); False for any other change."""
    if change.action == "alias" and change.alias and change.version:
        registry.set_alias(model, change.alias, change.version)
        return True
    if change.action == "alias-delete" and change.alias:
        registry.delete_alias(model, change.alias)
        return True
    return False
