"""The ledger: an append-only history of every change, kept in the registry itself.

MLflow keeps no history of stage or alias changes. Each event is one version of a companion
registered model `<model>.ledger`, its fields stored as one JSON version tag. Version numbers are handed
out by the server, so they order events from all clients without trusting their clocks; reading
the history is one paged search, and `versions` of the real model never sees these tags.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from typing import Any

from registry.client import Registry, Version
from registry.errors import NotFound
from registry.versions import all_versions, utc_iso

LEDGER_SUFFIX = ".ledger"
EVENT_SOURCE = "ledger:/event"
EVENT_TAG = "event"
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
        tags = event_tags(registry.settings.actor, model, change, reason, result)
        registry.add_version(ledger_name(model), EVENT_SOURCE, tags)


def event_tags(actor: str, model: str, change: Change, reason: str, result: str) -> dict[str, str]:
    """The one version tag that holds an event: its fields as compact JSON, with a unique id.

    One tag, not one per field: the server reads every tag row of every event it returns, and
    ten tags per event made a 10,000-event history several times slower.
    """
    fields = {
        "id": uuid.uuid4().hex,
        "actor": actor,
        "action": change.action,
        "model": model,
        "version": change.version,
        "from": change.from_,
        "to": change.to,
        "alias": change.alias,
        "reason": reason,
        "result": result,
    }
    return {EVENT_TAG: json.dumps(fields, separators=(",", ":"))}


def events(registry: Registry, model: str) -> list[Event]:
    """All events of `model`'s ledger, oldest first; empty when there is no ledger yet."""
    found: list[Event] = []
    seen: set[str] = set()
    token: str | None = None
    while True:
        page, token = registry.search_page(ledger_name(model), PAGE_SIZE, token, ascending=True)
        for version in page:
            fields = _fields(version)
            event_id = str(fields.get("id", version.number))
            if event_id in seen:  # a retried POST applied twice
                continue
            seen.add(event_id)
            found.append(_event(version, fields))
        if not token:
            return found


def _fields(version: Version) -> dict[str, Any]:
    try:
        fields = json.loads(version.tags.get(EVENT_TAG, "{}"))
    except ValueError:
        return {}
    return fields if isinstance(fields, dict) else {}


def _event(version: Version, fields: dict[str, Any]) -> Event:
    return Event(
        seq=version.number,
        time=utc_iso(version.created_ms),
        actor=fields.get("actor") or "",
        action=fields.get("action") or "",
        model=fields.get("model") or "",
        version=fields.get("version"),
        from_=fields.get("from"),
        to=fields.get("to"),
        alias=fields.get("alias"),
        reason=fields.get("reason") or "",
        result=fields.get("result") or "",
    )
