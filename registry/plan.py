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
from registry.errors import BadInput, Refused
from registry.gates import Check, refusal
from registry.ledger import Change


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
    with lock.exclusive(registry, model, command, settle=lambda why: _record_drift(registry, model, why)):
        yield


def _record_drift(registry: Registry, model: str, why: str) -> None:
    from registry.doctor import record_drift  # doctor plans its repairs with this module

    record_drift(registry, model, why)


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


def stage_aliases(settings: Settings) -> dict[str, str]:
    """Stage -> the alias that follows it: PROD_ALIAS follows Production (unless empty), and
    STAGING_ALIAS follows Staging with MIRROR_STAGE_ALIASES. With LIFECYCLE=aliases both always do:
    there they are the roles themselves (`roles.AliasRoles`)."""
    names = {"Production": settings.prod_alias}
    if settings.mirror_stage_aliases or settings.lifecycle == "aliases":
        names["Staging"] = settings.staging_alias
    return {stage: alias for stage, alias in names.items() if alias}


def following(
    settings: Settings, aliases: dict[str, int], version: Version, target: str, holders: list[Version]
) -> dict[str, int | None]:
    """The moves of the aliases that follow a stage when `version` moves into `target`: the target's
    alias onto it, and the alias of the stage it leaves onto the newest remaining holder (or deleted
    when none remains). `holders` are the model's versions in Staging and Production."""
    if version.stage == target:
        return {}
    wanted: dict[str, int | None] = {}
    for stage, alias in stage_aliases(settings).items():
        if stage == target:
            wanted[alias] = version.number
        elif stage == version.stage and aliases.get(alias) == version.number:
            others = [v.number for v in holders if v.stage == stage and v.number != version.number]
            wanted[alias] = max(others, default=None)
    return wanted


def takes_production_down(version: Version, target: str, holders: list[Version]) -> list[Check]:
    """A failed check when `version`, the only Production version, is moved out of Production."""
    if version.stage != "Production" or target == "Production":
        return []
    if any(v.stage == "Production" and v.number != version.number for v in holders):
        return []
    return [
        Check(
            "production",
            False,
            f"version {version.number} is the only Production version: moving it to {target} leaves "
            "nothing in Production",
        )
    ]


def recheck(registry: Registry, model: str, planned_on: ModelState) -> None:
    """Refuse when the model changed since the plan was read (the gates take seconds; the lock keeps
    this tool's other clients out, not a change made in the UI or by a script meanwhile)."""
    registry.fence()  # a lost lock says so, rather than "changed outside this tool"
    now = registry.model_state(model)

    def held(state: ModelState) -> set[tuple[int, str]]:
        return {(v.number, v.stage) for v in state.latest}

    if now.aliases != planned_on.aliases or held(now) != held(planned_on):
        raise Refused(
            f"model {model!r} changed while this command checked its gates (outside this tool); "
            "nothing was changed: run it again"
        )
