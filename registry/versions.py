"""Listing versions and resolving `models:/` references to version numbers."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from typing import Any

from registry.client import ACCURACY_TAG, Registry, Version
from registry.errors import NotFound

PAGE_SIZE = 10_000


@dataclasses.dataclass(frozen=True)
class VersionRow:
    """One line of `versions`."""

    version: int
    stage: str
    aliases: list[str]
    created: str
    run_id: str
    status: str
    accuracy: float | None
    role: str | None = None  # LIFECYCLE=aliases: champion, challenger, retired or none (stage: its role)

    def as_json(self) -> dict[str, Any]:
        """With LIFECYCLE=aliases, `role` in place of `stage`."""
        found = dataclasses.asdict(self)
        role = found.pop("role")
        if role is not None:
            found = {("role" if key == "stage" else key): (role if key == "stage" else value)
                     for key, value in found.items()}  # fmt: skip
        return found


def utc_iso(millis: int) -> str:
    """Milliseconds since the epoch as `2026-11-30T12:00:00Z`."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(millis // 1000))


def iter_versions(
    registry: Registry,
    model: str,
    page_size: int = PAGE_SIZE,
    ascending: bool = False,
    after: int = 0,
    upto: int | None = None,
) -> Iterator[Version]:
    """Every version of `model` (numbered above `after` and up to `upto`), newest first unless
    `ascending`, fetched a page at a time."""
    token: str | None = None
    while True:
        page, token = registry.search_page(model, page_size, token, ascending, after, upto)
        yield from page
        if not token:
            return


def all_versions(registry: Registry, model: str) -> list[Version]:
    return list(iter_versions(registry, model))


def list_versions(
    registry: Registry,
    model: str,
    stage: str | None = None,
    alias: str | None = None,
    limit: int | None = None,
    page_size: int = PAGE_SIZE,
) -> list[VersionRow]:
    """Versions of `model`, newest first, with their aliases (one request for all aliases) and accuracy
    (the version tag, else the run's metric: one more request per run without the tag). With
    LIFECYCLE=aliases each row has its role, and `stage` filters by role."""
    from registry import roles  # roles -> ledger -> this module

    state = registry.model_state(model)
    aliases = state.aliases
    lifecycle = roles.of(registry, model, state)
    by_version: dict[int, list[str]] = {}
    for name, number in sorted(aliases.items()):
        by_version.setdefault(number, []).append(name)
    if alias is not None:
        if alias not in aliases:
            raise NotFound(f"alias {alias!r} of model {model!r} is not set; see `versions`")
        candidates: Iterator[Version] = iter([registry.get_version(model, aliases[alias])])
    else:
        candidates = iter_versions(registry, model, page_size)
    rows: list[VersionRow] = []
    for version in candidates:
        version = lifecycle.view(version, aliases)
        if stage is not None and version.stage != stage:
            continue
        found = figure(registry, version, ACCURACY_TAG)
        row = _row(version, by_version.get(version.number, []), None if found is None else found.value)
        if lifecycle.mode == "aliases":
            row = dataclasses.replace(row, role=lifecycle.label(version.stage))
        rows.append(row)
        if limit is not None and len(rows) >= limit:
            break
    return rows


def _row(version: Version, aliases: list[str], accuracy: float | None) -> VersionRow:
    return VersionRow(
        version=version.number,
        stage=version.stage,
        aliases=aliases,
        created=utc_iso(version.created_ms),
        run_id=version.run_id,
        status=version.status,
        accuracy=accuracy,
    )


@dataclasses.dataclass(frozen=True)
class Figure:
    """A version's metric and where it was read: its "version tag" or its "run metric"."""

    value: float
    source: str


def figure(registry: Registry, version: Version, name: str) -> Figure | None:
    """Metric `name` of `version`: its version tag, else (registries made without this tool, such as
    MLflow's tutorial's) the metric of the same name of the run it came from, read only when the tag is
    missing, one request per run; None when neither has it."""
    try:
        return Figure(float(version.tags[name]), "version tag")
    except (KeyError, ValueError):
        pass
    value = registry.run_metric(version.run_id, name)
    return None if value is None else Figure(float(value), "run metric")


def resolve(registry: Registry, model: str, reference: str) -> int:
    """The version number a reference (`3`, `Production`, `@prod`, `latest`) points at now."""
    if reference.startswith("@"):
        return registry.version_by_alias(model, reference[1:])
    if reference.isdigit():
        return registry.get_version(model, int(reference)).number
    if reference == "latest":
        for version in iter_versions(registry, model, page_size=1):
            return version.number
        raise NotFound(f"model {model!r} has no versions; train one first")
    from registry import roles  # roles -> ledger -> this module

    state = registry.model_state(model)
    held = roles.of(registry, model, state).holder(state, reference)
    if held is None:
        raise NotFound(f"no version of model {model!r} is in stage {reference}")
    return held
