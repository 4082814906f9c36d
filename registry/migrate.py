"""`migrate --to aliases|stages`: switch a model's lifecycle (see roles.py), keeping every role.

To aliases: the role aliases (PROD_ALIAS and STAGING_ALIAS as LIFECYCLE=aliases names them, champion
and challenger by default) point at the Production and Staging versions, Archived versions get the
retired tag, every MLflow stage is cleared (so `models:/m/Production` cannot answer a stale version),
and the model's lifecycle tag switches. To stages: the reverse (each role back into its stage, the
retired tags removed, the role aliases deleted; PROD_ALIAS as stages names it follows Production again).

One ledger entry: a `lifecycle` change, the alias moves, and the tag and stage writes (`retire`,
`unretire`, `sync`), which move no role, so `history --at` reads across the switch: before it in
stages, after it in aliases, with the same holders. Refused (exit 5) when a role has more than one
holder: which one takes it is for a person to say (`doctor`).
"""

from __future__ import annotations

from registry import ledger
from registry.client import Registry, Version
from registry.config import Settings
from registry.errors import Refused
from registry.ledger import Change
from registry.plan import Plan, alias_changes, guarded, stage_aliases
from registry.promote import apply_alias
from registry.roles import MODE_TAG, RETIRED, RETIRED_TAG, current_mode, for_mode
from registry.validate import HELD_STAGES
from registry.versions import all_versions


def migrate(
    registry: Registry,
    model: str,
    to: str,
    names: dict[str, Settings],
    *,
    reason: str = "",
    dry_run: bool = False,
) -> Plan:
    """Switch `model` to the lifecycle `to`; `names` holds the settings as each lifecycle reads them
    (the role alias names). Empty changes: the model is in `to` already."""
    with guarded(registry, model, f"migrate --to {to}", dry_run):
        state = registry.model_state(model)
        mode = current_mode(state)
        if mode == to or (mode == "new" and to == "stages"):
            return Plan([], [])
        versions = [] if mode == "new" else all_versions(registry, model)  # new: its aliases are its roles
        if to == "aliases":
            changes = _to_aliases(model, versions, state.aliases, names["aliases"]) if versions else []
        else:
            changes = _to_stages(versions, state.aliases, names["aliases"], names["stages"])
        switch = Change("lifecycle", None, from_="stages" if to == "aliases" else "aliases", to=to)
        plan = Plan([*changes, switch], [])  # the lifecycle switches last: a crash leaves the old one
        if not dry_run:
            ledger.ensure(registry, model)
            for change in plan.changes:
                _apply(registry, model, change)
            ledger.record(registry, model, plan.changes, reason or f"migrate --to {to}")
    return plan


def _to_aliases(
    model: str, versions: list[Version], aliases: dict[str, int], target: Settings
) -> list[Change]:
    holders = {stage: [v.number for v in versions if v.stage == stage] for stage in HELD_STAGES}
    crowded = [f"{len(held)} versions in {stage} ({', '.join(map(str, sorted(held)))})"
               for stage, held in holders.items() if len(held) > 1]  # fmt: skip
    if crowded:
        raise Refused(
            f"model {model!r} has {' and '.join(crowded)}: which one takes the role is ambiguous; "
            "run `doctor` (and `doctor --fix`, or `stage` the one to keep) first; nothing was changed"
        )
    wanted: dict[str, int | None] = {
        alias: holders[stage][0] if holders[stage] else None for stage, alias in _roles(target).items()
    }
    changes = alias_changes(aliases, wanted)
    for v in versions:
        if v.stage == "Archived" and v.tags.get(RETIRED_TAG) != RETIRED:
            changes.append(Change("retire", v.number, from_="Archived", to=RETIRED))
        elif v.stage != "Archived" and v.tags.get(RETIRED_TAG) == RETIRED:
            changes.append(Change("unretire", v.number, from_=RETIRED))
    changes += [Change("sync", v.number, from_=v.stage, to="None") for v in versions if v.stage != "None"]
    return changes


def _to_stages(
    versions: list[Version], aliases: dict[str, int], source: Settings, target: Settings
) -> list[Change]:
    lifecycle = for_mode("aliases", source)
    role_of = {v.number: lifecycle.role(v, aliases) for v in versions}
    wanted: dict[str, int | None] = dict.fromkeys(_roles(source).values())
    for stage, alias in stage_aliases(target).items():  # PROD_ALIAS follows Production again
        wanted[alias] = next((n for n, role in role_of.items() if role == stage), None)
    changes = alias_changes(aliases, wanted)
    changes += [
        Change("unretire", v.number, from_=RETIRED) for v in versions if v.tags.get(RETIRED_TAG) == RETIRED
    ]
    changes += [
        Change("sync", v.number, from_=v.stage, to=role_of[v.number])
        for v in versions
        if v.stage != role_of[v.number]
    ]
    return changes


def _roles(settings: Settings) -> dict[str, str]:
    """Role -> its alias in the aliases lifecycle."""
    return {"Production": settings.prod_alias, "Staging": settings.staging_alias}


def _apply(registry: Registry, model: str, change: Change) -> None:
    registry.fence()
    if not apply_alias(registry, model, change):
        _apply_role(registry, model, change)
    registry.fence(written=True)


def _apply_role(registry: Registry, model: str, change: Change) -> None:
    """A migration's own changes: the retired tag, a stage brought in line, the model's lifecycle."""
    if change.action == "retire" and change.version:
        registry.set_version_tag(model, change.version, RETIRED_TAG, RETIRED)
    elif change.action == "unretire" and change.version:
        registry.delete_version_tag(model, change.version, RETIRED_TAG)
    elif change.action == "sync" and change.version and change.to:
        registry.transition(model, change.version, change.to, archive_existing=False)
    elif change.action == "lifecycle" and change.to:
        registry.set_model_tag(model, MODE_TAG, change.to)
