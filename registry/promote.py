"""Stage transitions and alias moves, each change recorded in the ledger."""

from __future__ import annotations

from registry import ledger, lock
from registry.client import Registry, Version
from registry.errors import NotFound, Refused
from registry.ledger import Change

# MLflow archives the holders of the target stage only for these (for others it answers 500).
ARCHIVING_STAGES = ("Staging", "Production")


def stage(
    registry: Registry,
    model: str,
    number: int,
    target: str,
    alias: str | None = None,
    archive: bool = True,
    reason: str = "",
) -> list[Change]:
    """Move version `number` into `target`, archiving the current holders; [] when nothing moved."""
    if not archive and target == "Production":
        raise Refused("--no-archive is refused for Production: two Production versions are never wanted")
    with lock.exclusive(registry, model, f"stage {number} {target}"):
        version = ready_version(registry, model, number)
        holders = registry.in_stage(model, target) if archive and target in ARCHIVING_STAGES else []
        changes = stage_moves(version, target, holders)
        if alias is not None:
            changes += alias_move(registry, model, alias, number)
        if changes:
            ledger.ensure(registry, model)
            apply_changes(registry, model, changes, archive)
            ledger.record(registry, model, changes, reason)
    return changes


def set_alias(registry: Registry, model: str, alias: str, number: int, reason: str = "") -> list[Change]:
    """Point `alias` at version `number`; [] when it already points there."""
    with lock.exclusive(registry, model, f"alias {alias} {number}"):
        registry.get_version(model, number)
        changes = alias_move(registry, model, alias, number)
        if changes:
            ledger.ensure(registry, model)
            registry.set_alias(model, alias, number)
            ledger.record(registry, model, changes, reason)
    return changes


def delete_alias(registry: Registry, model: str, alias: str, reason: str = "") -> list[Change]:
    """Remove `alias`; NotFound when it is not set."""
    with lock.exclusive(registry, model, f"alias {alias} --delete"):
        current = registry.aliases(model).get(alias)
        if current is None:
            raise NotFound(f"alias {alias!r} of model {model!r} is not set; see `versions`")
        ledger.ensure(registry, model)
        registry.delete_alias(model, alias)
        changes = [Change("alias-delete", current, from_=str(current), alias=alias)]
        ledger.record(registry, model, changes, reason)
    return changes


def ready_version(registry: Registry, model: str, number: int) -> Version:
    version = registry.get_version(model, number)
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


def alias_move(registry: Registry, model: str, alias: str, number: int) -> list[Change]:
    current = registry.aliases(model).get(alias)
    if current == number:
        return []
    return [
        Change("alias", number, from_=None if current is None else str(current), to=str(number), alias=alias)
    ]


def apply_changes(registry: Registry, model: str, changes: list[Change], archive: bool) -> None:
    """Carry out the stage move (MLflow archives the old holders in the same call) and alias moves."""
    for change in changes:
        if change.action in ("stage", "rollback") and change.to is not None and change.version:
            registry.transition(
                model, change.version, change.to, archive_existing=archive and change.to in ARCHIVING_STAGES
            )
        elif change.action == "alias" and change.alias and change.version:
            registry.set_alias(model, change.alias, change.version)
