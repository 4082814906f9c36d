"""Roll Production back to an earlier version; the Production stage is the source of truth."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from registry import ledger, lock
from registry.client import Registry
from registry.errors import NotFound
from registry.ledger import Change, Event
from registry.promote import alias_move, apply_changes, ready_version, stage_moves

PRODUCTION_ACTIONS = ("baseline", "stage", "rollback")


@dataclasses.dataclass(frozen=True)
class Rollback:
    target: int
    current: int | None
    changes: list[Change]


def rollback(registry: Registry, model: str, to: int | None, alias: str, reason: str = "") -> Rollback:
    """Make `to` (default: the previous Production holder) Production and point `alias` at it."""
    with lock.exclusive(registry, model, "rollback" if to is None else f"rollback --to {to}"):
        holders = registry.in_stage(model, "Production")
        current = max(holders) if holders else None
        if to is None:
            to = previous_production(
                ledger.events(registry, model), current, lambda v: registry.version_exists(model, v)
            )
        version = ready_version(registry, model, to)
        if to == current:
            return Rollback(to, current, [])
        changes = stage_moves(version, "Production", holders, action="rollback")
        changes += alias_move(registry, model, alias, to)
        ledger.ensure(registry, model)
        apply_changes(registry, model, changes, archive=True)
        ledger.record(registry, model, changes, reason)
    return Rollback(to, current, changes)


def previous_production(events: list[Event], current: int | None, exists: Callable[[int], bool]) -> int:
    """The version that held Production before `current`, skipping versions deleted since.

    Like `cd -`: after a rollback, the previous holder is the version just rolled back from.
    """
    holders: list[int] = []
    for event in events:
        if (
            event.action in PRODUCTION_ACTIONS
            and event.to == "Production"
            and event.alias is None
            and event.version is not None
            and (not holders or holders[-1] != event.version)
        ):
            holders.append(event.version)
    end = len(holders)
    if current in holders:
        end = len(holders) - 1 - holders[::-1].index(current)
    for candidate in reversed(holders[:end]):
        if candidate != current and exists(candidate):
            return candidate
    raise NotFound("nothing to roll back to: the ledger names no earlier Production version; use --to N")
