"""Who holds the roles Production and Staging, and how a role moves: the one place where the two
lifecycles (LIFECYCLE) differ.

- `stages`: MLflow's stages hold the roles; a move is a stage transition (MLflow archives the old
  holders in the same call).
- `aliases`: PROD_ALIAS (champion) holds Production and STAGING_ALIAS (challenger) holds Staging; a
  retired version carries the version tag `lifecycle=retired` instead of the stage Archived; no stage
  call is ever made. The role aliases move as the ordinary alias changes of a plan (`plan.following`
  makes them follow their role), so the ledger reads the same in both lifecycles.

The planner (promote.py, rollback.py, doctor.py) works on `Version.stage` as the role: `Roles.view`
gives each version its role. The lifecycle lives on the registered model (tag `registry.lifecycle`),
so every client sees it; LIFECYCLE applies to new models, and a client whose setting disagrees with a
model's lifecycle is refused (`migrate` switches a model).
"""

from __future__ import annotations

import dataclasses

from registry.client import ModelState, Registry, Version
from registry.config import Settings
from registry.errors import Refused
from registry.ledger import Change
from registry.validate import HELD_STAGES

MODE_TAG = "registry.lifecycle"  # registered-model tag: stages or aliases
RETIRED_TAG = "lifecycle"  # version tag of a retired version in aliases mode
RETIRED = "retired"


def model_mode(state: ModelState) -> str | None:
    """The lifecycle a model is tagged with; None when untagged (made before LIFECYCLE, or elsewhere)."""
    tagged = state.tags.get(MODE_TAG)
    return tagged if tagged in ("stages", "aliases") else None


def current_mode(state: ModelState) -> str:
    """The lifecycle a model is in: its tag, else stages when any version has a stage, else "new" (an
    untagged model that never used a stage takes LIFECYCLE: see `of`)."""
    return model_mode(state) or ("stages" if any(v.stage != "None" for v in state.latest) else "new")


def effective_mode(settings: Settings, state: ModelState) -> str:
    """The lifecycle `model` is in, a new one taking LIFECYCLE's."""
    mode = current_mode(state)
    return settings.lifecycle if mode == "new" else mode


def of(registry: Registry, model: str, state: ModelState | None = None) -> Roles:
    """The roles of `model` (one read of it unless `state` is given); Refused when LIFECYCLE disagrees
    with the model's own lifecycle."""
    state = state or registry.model_state(model)
    wanted = registry.settings.lifecycle
    mode = current_mode(state)
    if mode not in ("new", wanted):
        raise Refused(
            f"model {model!r} is in the {mode} lifecycle but LIFECYCLE={wanted}: set LIFECYCLE={mode}, "
            f"or switch the model with `migrate --to {wanted}`"
        )
    return for_mode(wanted, registry.settings, tagged=mode != "new")


def for_mode(mode: str, settings: Settings, tagged: bool = True) -> Roles:
    return AliasRoles(settings, tagged) if mode == "aliases" else Roles(settings, tagged)


class Roles:
    """The stages lifecycle: MLflow's stages hold the roles."""

    mode = "stages"

    def __init__(self, settings: Settings, tagged: bool = True) -> None:
        self.settings = settings
        self.tagged = tagged

    def role(self, version: Version, aliases: dict[str, int]) -> str:
        """Production, Staging, Archived or None."""
        return version.stage

    def view(self, version: Version, aliases: dict[str, int]) -> Version:
        """`version` with its role as its stage (what the planner works on)."""
        role = self.role(version, aliases)
        return version if role == version.stage else dataclasses.replace(version, stage=role)

    def label(self, role: str) -> str:
        """How `versions` names a role."""
        return role

    def version(self, registry: Registry, model: str, number: int, state: ModelState) -> Version:
        """Version `number` with its role; read on its own only when `state` does not show it."""
        return self.view(state.version(number) or registry.get_version(model, number), state.aliases)

    def holders(self, registry: Registry, model: str, state: ModelState) -> list[Version]:
        """Every version holding Staging or Production. MLflow's model read shows only the latest one
        per stage, so versions put there outside this tool are found by a search of all versions."""
        from registry.versions import iter_versions

        return [version for version in iter_versions(registry, model) if version.stage in HELD_STAGES]

    def holder(self, state: ModelState, role: str) -> int | None:
        """The version holding `role` now, as the model's read shows it (the newest, for stages)."""
        return max(state.in_stage(role), default=None)

    def apply(self, registry: Registry, model: str, change: Change, archive: bool) -> bool:
        """Carry out a role move (`stage`, `rollback`, `archive`); False when nothing was written."""
        if change.action in ("stage", "rollback") and change.to is not None and change.version:
            archive_existing = archive and change.to in HELD_STAGES
            registry.transition(model, change.version, change.to, archive_existing=archive_existing)
            return True
        return False  # MLflow archived the old holders in the transition itself

    def claim(self, registry: Registry, model: str) -> list[Change]:
        """Tag a model that had no lifecycle yet with this one (aliases only: an untagged model is in
        stages anyway); the ledger change that records it."""
        return []


class AliasRoles(Roles):
    """The aliases lifecycle: PROD_ALIAS holds Production, STAGING_ALIAS Staging, a tag Archived."""

    mode = "aliases"

    def role(self, version: Version, aliases: dict[str, int]) -> str:
        if aliases.get(self.settings.prod_alias) == version.number:
            return "Production"
        if aliases.get(self.settings.staging_alias) == version.number:
            return "Staging"
        return "Archived" if version.tags.get(RETIRED_TAG) == RETIRED else "None"

    def label(self, role: str) -> str:
        names = {"Production": self.settings.prod_alias, "Staging": self.settings.staging_alias}
        return names.get(role, RETIRED if role == "Archived" else "none")

    def holders(self, registry: Registry, model: str, state: ModelState) -> list[Version]:
        numbers = {
            state.aliases.get(self.settings.prod_alias),
            state.aliases.get(self.settings.staging_alias),
        }
        found = [registry.get_version(model, n) for n in sorted(n for n in numbers if n is not None)]
        return [self.view(version, state.aliases) for version in found]

    def holder(self, state: ModelState, role: str) -> int | None:
        alias = {"Production": self.settings.prod_alias, "Staging": self.settings.staging_alias}.get(role)
        return state.aliases.get(alias) if alias else None

    def apply(self, registry: Registry, model: str, change: Change, archive: bool) -> bool:
        """The role aliases move as the plan's own alias changes; here only the retired tag changes."""
        if change.action not in ("stage", "rollback", "archive") or not change.version:
            return False
        if change.to == "Archived":
            registry.set_version_tag(model, change.version, RETIRED_TAG, RETIRED)
            return True
        if change.from_ == "Archived":
            registry.delete_version_tag(model, change.version, RETIRED_TAG)
            return True
        return False

    def claim(self, registry: Registry, model: str) -> list[Change]:
        if self.tagged:
            return []
        registry.set_model_tag(model, MODE_TAG, self.mode)
        self.tagged = True
        return [Change("lifecycle", None, to=self.mode)]
