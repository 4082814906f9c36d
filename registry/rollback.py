"""Roll Production back to an earlier version; the Production role (its stage, or PROD_ALIAS with
LIFECYCLE=aliases) is the source of truth."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from registry import gates, ledger, roles
from registry.client import Registry
from registry.errors import NotFound
from registry.ledger import Change, Event
from registry.plan import Plan, alias_changes, following, guarded, recheck, require_reason
from registry.promote import carry_out, ready_version, stage_moves

PRODUCTION_ACTIONS = ("baseline", "stage", "rollback", "observed")


@dataclasses.dataclass(frozen=True)
class Rollback:
    target: int
    current: int | None
    plan: Plan


def rollback(
    registry: Registry,
    model: str,
    *,
    to: int | None,
    alias: str | None = None,
    reason: str = "",
    force: bool = False,
    dry_run: bool = False,
) -> Rollback:
    """Make `to` (default: the previous Production holder) Production; PROD_ALIAS follows it, and so
    does `alias` when given.

    Gated like a promotion, without the metric gate: a rollback may well go to a worse model.
    """
    require_reason(force, reason)
    candidates: dict[int, gates.Candidate] = {}
    if to is not None:  # load before the lock: it takes seconds
        candidates[to] = gates.Candidate(registry, model, to)
        candidates[to].load_check()
    with guarded(registry, model, "rollback" if to is None else f"rollback --to {to}", dry_run):
        state = registry.model_state(model)
        lifecycle = roles.of(registry, model, state)
        holders = lifecycle.holders(registry, model, state)
        held = [v for v in holders if v.stage == "Production"]
        current = max((v.number for v in held), default=None)
        if to is None:
            to = previous_production(
                ledger.events(registry, model), current, lambda v: registry.version_exists(model, v)
            )
        version = ready_version(registry, model, to, state, lifecycle)
        if to == current:
            return Rollback(to, current, Plan([], []))
        changes = stage_moves(version, "Production", [v.number for v in held], action="rollback")
        candidate = candidates.get(to) or gates.Candidate(registry, model, to)
        champions = [v for v in held if v.number != to]
        checks = gates.check(registry, candidate, version, champions, metric=False)
        wanted = following(registry.settings, state.aliases, version, "Production", holders)
        if alias is not None:
            wanted[alias] = to
        changes += alias_changes(state.aliases, wanted)
        plan = Plan(changes, checks)
        if not dry_run:
            recheck(registry, model, state)
            attempt = Change("refused", to, from_=version.stage, to="Production", alias=alias)
            carry_out(registry, model, plan, attempt, reason=reason, force=force, lifecycle=lifecycle)
    return Rollback(to, current, plan)


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
