"""The ledger: an append-only history of every change, kept in the registry itself.

MLflow keeps no history of stage or alias changes. Each event is one version of a companion
registered model `<model>.ledger`, its fields stored as version tags. Version numbers are handed
out by the server, so they order events from all clients without trusting their clocks; reading
the history is one paged search, and `versions` of the real model never sees these tags.
"""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

from registry.client import Registry, Version
from registry.errors import NotFound
from registry.versions import all_versions, utc_iso

LEDGER_SUFFIX = ".ledger"
EVENT_SOURCE = "ledger:/event"
EVENT_ID_TAG = "event_id"
PAGE_SIZE = 10_000
JSON_KEYS = ("seq", "time", "actor", "action", "model", "version", "from", "to", "alias", "reason", "result")


@dataclasses.dataclass(frozen=True)
class Change:
    """One change the tool made (or, for `baseline`, found): becomes one ledger event."""

    action: str
    version: int | None
    from_: str | None = None
    to: str | None = None
    alias: str | None = None


@dataclasses.dataclass(frozen=True)
class Event:
    """A ledger entry; `seq` and `time` come from the server."""

    seq: int
    time: str
    actor: str
    action: str
    model: str
    version: int | None
    from_: str | None
    to: str | None
    alias: str | None
    reason: str
    result: str

    def as_json(self) -> dict[str, Any]:
        row = dataclasses.asdict(self)
        row["from"] = row.pop("from_")
        return {key: row[key] for key in JSON_KEYS}


def ledger_name(model: str) -> str:
    return model + LEDGER_SUFFIX


def ensure(registry: Registry, model: str) -> None:
    """Create the ledger on first use, recording a baseline of the model's stages and aliases.

    Creating a registered model is atomic on the server, so exactly one client writes the baseline.
    """
    created = registry.create_model(
        ledger_name(model),
        description=f"Event ledger of model {model!r}, written by the registry tool. Do not edit.",
        tags={"registry.ledger_of": model},
    )
    if created:
        record(registry, model, baseline(registry, model), reason="first use of the ledger")


def baseline(registry: Registry, model: str) -> list[Change]:
    """The model's current stage holders and aliases as baseline changes (one marker if none)."""
    try:
        aliases = registry.aliases(model)
    except NotFound:
        return [Change("baseline", None)]
    changes = [
        Change("baseline", v.number, to=v.stage)
        for v in sorted(all_versions(registry, model), key=lambda v: v.number)
        if v.stage in ("Staging", "Production")
    ]
    changes += [Change("baseline", number, to=str(number), alias=a) for a, number in aliases.items()]
    return changes or [Change("baseline", None)]


def record(registry: Registry, model: str, changes: list[Change], reason: str, result: str = "ok") -> None:
    """Append one event per change, in order; `result` is ok, forced, refused or repair."""
    for change in changes:
        tags = {
            EVENT_ID_TAG: uuid.uuid4().hex,
            "actor": registry.settings.actor,
            "action": change.action,
            "model": model,
            "version": "" if change.version is None else str(change.version),
            "from": change.from_ or "",
            "to": change.to or "",
            "alias": change.alias or "",
            "reason": reason,
            "result": result,
        }
        registry.add_version(ledger_name(model), EVENT_SOURCE, tags)


def events(registry: Registry, model: str) -> list[Event]:
    """All events of `model`'s ledger, oldest first; empty when there is no ledger yet."""
    found: list[Event] = []
    seen: set[str] = set()
    token: str | None = None
    while True:
        page, token = registry.search_page(ledger_name(model), PAGE_SIZE, token, ascending=True)
        for version in page:
            event_id = version.tags.get(EVENT_ID_TAG, "")
            if event_id and event_id in seen:  # a retried POST applied twice
                continue
            seen.add(event_id)
            found.append(_event(version))
        if not token:
            return found


def _event(version: Version) -> Event:
    tags = version.tags

    def field(key: str) -> str | None:
        return tags.get(key) or None

    number = tags.get("version", "")
    return Event(
        seq=version.number,
        time=utc_iso(version.created_ms),
        actor=tags.get("actor", ""),
        action=tags.get("action", ""),
        model=tags.get("model", ""),
        version=int(number) if number.isdigit() else None,
        from_=field("from"),
        to=field("to"),
        alias=field("alias"),
        reason=tags.get("reason", ""),
        result=tags.get("result", ""),
    )
