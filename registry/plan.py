"""What a stage, alias or rollback command is about to do, and the policy around doing it.

A `Plan` is the list of changes plus the verdicts of the checks (protected aliases, gates).
`--dry-run` stops at the plan; otherwise a refused plan becomes a `refused` ledger event and
Refused (exit 5), unless `--force --reason` overrides it, which the ledger records as `forced`.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator

from registry import lock
from registry.client import ModelState, Registry, Version
from registry.config import Settings
from registry.errors import BadInput
from registry.gates import Check, refusal
from registry.ledger import Change
from registry.validate import HELD_STAGES


@dataclasses.dataclass(frozen=True)
class Plan:
    """The changes a command makes (or would make) and the checks it passed or failed."""

    changes: list[Change]
    checks: list[Check]

    @property
    def refusal(self) -> str | None:
        """Why the plan is refused; None when it passed or changes nothing."""
        return refusal(self.checks) if self.changes else None


def require_reason(force: bool, reason: str) -> None:
    if force and not reason.strip():
        raise BadInput('--force needs --reason "why": the override is kept in the ledger')


@contextlib.contextmanager
def guarded(registry: Registry, model: str, command: str, dry_run: bool) -> Iterator[None]:
    """The registry lock for a real change; nothing for a dry run, which writes nothing."""
    if dry_run:
        yield
        return
    with lock.exclusive(registry, model, command):
        yield


def protection(registry: Registry, alias: str | None) -> list[Check]:
    """A failed check when `alias` is protected and the command is not a gated path to it."""
    if alias is None or alias not in registry.settings.protected_aliases:
        return []
    return [
        Check(
            "protected",
            False,
            f"alias {alias!r} is protected (PROTECTED_ALIASES): it moves only with "
            f"`stage --stage Production --alias {alias}` or `rollback`",
        )
    ]


def alias_changes(current: dict[str, int], wanted: dict[str, int | None]) -> list[Change]:
    """Alias moves (and deletions, for None) that turn `current` into `wanted`."""
    changes = []
    for alias, number in wanted.items():
        before = current.get(alias)
        if before == number:
            continue
        if number is None:
            changes.append(Change("alias-delete", before, from_=str(before), alias=alias))
        else:
            before_text = None if before is None else str(before)
            changes.append(Change("alias", number, from_=before_text, to=str(number), alias=alias))
    return changes


def mirrored(settings: Settings, state: ModelState, version: Version, target: str) -> dict[str, int | None]:
    """With MIRROR_STAGE_ALIASES: the target stage's alias on `version`, and the alias of the stage
    it leaves removed when that stage empties (as `state`, the model read for the change, shows it)."""
    if not settings.mirror_stage_aliases or version.stage == target:
        return {}
    names = {"Production": settings.prod_alias, "Staging": settings.staging_alias}
    wanted: dict[str, int | None] = {}
    if version.stage in HELD_STAGES:
        others = [n for n in state.in_stage(version.stage) if n != version.number]
        if not others:
            wanted[names[version.stage]] = None
    if target in HELD_STAGES:
        wanted[names[target]] = version.number
    return wanted
