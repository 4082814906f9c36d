"""The ledger: an append-only history of every change, kept in the registry itself.

MLflow keeps no history of stage or alias changes. The changes of one command are first written
as one version of a companion registered model `<model>.ledger`: one JSON version tag holding the
command's actor, reason and result and each change (a stage move, the archive it caused, an alias
move), so a command is recorded in one request and all at once. Version numbers are handed out by
the server, so they order events from all clients without trusting their clocks; the changes of
one command share its number. The server's cost of a search grows with every version it returns,
so the writer of every PACK_EVERY-th ledger version also copies the ones before it into a pack:
their JSON, compressed, in as few tags of the ledger model as it fits in. Reading the history is
one request for the packs plus one paged search for the versions written since, whatever the
ledger's size; `versions` of the real model never sees any of this.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import re
import uuid
import zlib
from typing import Any

from registry.client import Registry, Version
from registry.errors import NotFound, PermissionDenied, RegistryError
from registry.validate import HELD_STAGES
from registry.versions import all_versions, iter_versions, utc_iso

LEDGER_SUFFIX = ".ledger"
EVENT_SOURCE = "ledger:/event"
EVENT_TAG = "event"
LEDGER_MARKER = "registry.ledger"  # tag on the model once its ledger exists; its value names the ledger
PAGE_SIZE = 10_000
PACK_EVERY = 100  # the writer of every 100th ledger version packs the ones before it
PACK_PREFIX = "pack."  # pack tags: pack.<first seq>-<last seq>.<part>of<parts>
PACK_KEY = re.compile(r"pack\.(?P<pack>\d+-\d+)\.(?P<part>\d+)of(?P<count>\d+)")
PACKED_THROUGH = "packed_through"  # ledger model tag: the events up to this seq are all in packs
TAG_VALUE_LIMIT = 5_000  # MLflow's tag value column (SQLite does not enforce it; PostgreSQL does)
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
    millis: int = 0  # `time` in milliseconds (not in the JSON: `time` is its public form)

    def as_json(self) -> dict[str, Any]:
        return {key: getattr(self, "from_" if key == "from" else key) for key in JSON_KEYS}


def ledger_name(model: str) -> str:
    return model + LEDGER_SUFFIX


def ensure(registry: Registry, model: str) -> None:
    """Create the ledger on first use, recording a baseline of the model's stages and aliases.

    Creating a registered model is atomic on the server, so exactly one client writes the baseline.
    Once the ledger exists the model carries LEDGER_MARKER, so a change that has read the model's
    tags anyway skips this request.
    """
    seen = registry.seen_tags.get(model)
    if seen is not None and LEDGER_MARKER in seen:
        return
    _create(registry, model)
    if seen is not None:
        registry.set_model_tag(model, LEDGER_MARKER, ledger_name(model))


def _create(registry: Registry, model: str, undo: list[Change] | None = None) -> None:
    created = registry.create_model(
        ledger_name(model),
        description=f"Event ledger of model {model!r}, written by the registry tool. Do not edit.",
        tags={"registry.ledger_of": model},
    )
    if created:
        record(registry, model, baseline(registry, model, undo or []), reason="first use of the ledger")


def baseline(registry: Registry, model: str, undo: list[Change] | None = None) -> list[Change]:
    """The model's stage holders and aliases as baseline changes (one marker if none): as they are now,
    or as they were before `undo`, changes already made that the new ledger is about to record."""
    from registry import roles  # roles plan with this module's changes

    try:
        state = registry.model_state(model)
    except NotFound:
        return [Change("baseline", None)]
    aliases = state.aliases
    lifecycle = roles.for_mode(roles.effective_mode(registry.settings, state), registry.settings)
    stage_of = {v.number: lifecycle.role(v, aliases) for v in all_versions(registry, model)}
    for change in reversed(undo or []):
        if change.version is None:
            continue
        if change.action == "alias-delete" and change.alias:
            aliases[change.alias] = change.version
        elif change.action == "alias" and change.alias:
            if change.from_ and change.from_.isdigit():
                aliases[change.alias] = int(change.from_)
            else:
                aliases.pop(change.alias, None)
        elif change.alias is None and change.from_ is not None:
            stage_of[change.version] = change.from_
    changes = [
        Change("baseline", n, to=stage) for n, stage in sorted(stage_of.items()) if stage in HELD_STAGES
    ]
    changes += [Change("baseline", number, to=str(number), alias=a) for a, number in sorted(aliases.items())]
    return changes or [Change("baseline", None)]


def record(registry: Registry, model: str, changes: list[Change], reason: str, result: str = "ok") -> None:
    """Append `changes` as one ledger version (more only if they overflow a tag value), in order;
    `result` is ok, forced, refused or repair."""
    appended = []
    registry.fence()
    for tags in event_tags(registry.settings.actor, model, changes, reason, result):
        try:
            appended.append(registry.add_version(ledger_name(model), EVENT_SOURCE, tags).number)
        except (NotFound, PermissionDenied):  # 403 on an authenticated server: the ledger is gone
            _create(registry, model, undo=changes)  # its baseline: the state before these changes
            appended.append(registry.add_version(ledger_name(model), EVENT_SOURCE, tags).number)
    registry.fence(written=True)
    if any(seq % PACK_EVERY == 0 for seq in appended):
        try:
            pack(registry, model, max(appended))
        except RegistryError as exc:  # the events are recorded; the next PACK_EVERY-th writer packs them
            registry.notify(f"warning: the ledger of {model!r} was not packed ({exc}); no event is lost")


def pack(registry: Registry, model: str, through: int) -> None:
    """Copy the events not yet packed, up to `through`, into one pack: their JSON, zlib-compressed
    and base64-encoded, in parts of at most one tag value each.

    Safe to run twice or at once: packs are named by the events they hold and readers drop
    duplicates; the pointer is moved only after the pack it covers is written in full.
    """
    name = ledger_name(model)
    packed = packed_through(registry.model_tags(name))
    entries = [
        [version.number, version.created_ms, _fields(version)]
        for version in iter_versions(registry, name, PAGE_SIZE, ascending=True, after=packed, upto=through)
    ]
    if not entries:
        return
    payload = base64.b64encode(zlib.compress(_compact(entries).encode(), 9)).decode()
    parts = [payload[at : at + TAG_VALUE_LIMIT] for at in range(0, len(payload), TAG_VALUE_LIMIT)]
    pack_name = f"{PACK_PREFIX}{entries[0][0]}-{entries[-1][0]}"
    for index, part in enumerate(parts, 1):
        registry.set_model_tag(name, f"{pack_name}.{index}of{len(parts)}", part)
    if through > packed:
        registry.set_model_tag(name, PACKED_THROUGH, str(through))


def packed_through(tags: dict[str, str]) -> int:
    value = tags.get(PACKED_THROUGH, "0")
    return int(value) if value.isdigit() else 0


def event_tags(
    actor: str, model: str, changes: list[Change], reason: str, result: str
) -> list[dict[str, str]]:
    """The version tags that record `changes`: one tag per version, its fields as compact JSON with
    a unique id; usually one version, more only when the changes overflow a tag value.

    One tag, not one per field: the server reads every tag row of every event it returns, and
    ten tags per event made a 10,000-event history several times slower.
    """
    head = {"actor": actor, "model": model, "reason": reason, "result": result}
    overhead = len(_compact({"id": uuid.uuid4().hex, **head, "changes": []}))
    batches: list[list[dict[str, Any]]] = [[]]
    size = overhead
    for change in changes:
        item = {"action": change.action, "version": change.version, "from": change.from_, "to": change.to,
                "alias": change.alias}  # fmt: skip
        grown = len(_compact(item)) + 1
        if batches[-1] and size + grown > TAG_VALUE_LIMIT:
            batches.append([])
            size = overhead
        batches[-1].append(item)
        size += grown
    return [{EVENT_TAG: _compact({"id": uuid.uuid4().hex, **head, "changes": batch})} for batch in batches]


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def events(registry: Registry, model: str) -> list[Event]:
    """All events of `model`'s ledger, oldest first; empty when there is no ledger yet.

    A damaged pack is read from the ledger's versions instead, and a malformed event is skipped; each
    with a warning (through `registry.notify`), never an error: the rest of the history stands.
    """
    try:
        tags = registry.model_tags(ledger_name(model))
    except NotFound:
        return []
    packed, ranges = _packed_entries(tags)
    reach = 0  # the packs that are whole hold every event from 1 to here
    for first, last in sorted(ranges):
        if first > reach + 1:
            break
        reach = max(reach, last)
    after = packed_through(tags)
    if reach < after:  # a pack behind the pointer is damaged: read its events from their versions
        after = reach
        registry.notify(
            f"warning: a pack of the ledger of {model!r} is damaged; its events are read one by one"
        )
    entries = [entry for entry in packed if entry[0] <= after] + [
        (version.number, version.created_ms, _fields(version))
        for version in iter_versions(registry, ledger_name(model), PAGE_SIZE, ascending=True, after=after)
    ]
    found: list[Event] = []
    seen: set[str] = set()
    malformed: list[int] = []
    for seq, time_ms, fields in sorted(entries, key=lambda entry: entry[0]):
        event_id = str(fields.get("id", seq))
        if event_id in seen:  # packed twice, or a retried POST applied twice
            continue
        seen.add(event_id)
        read = _events(seq, time_ms, fields)
        if read is None:
            malformed.append(seq)
        else:
            found += read
    if malformed:
        listed = ", ".join(map(str, malformed[:5])) + (" ..." if len(malformed) > 5 else "")
        registry.notify(
            f"warning: skipped {len(malformed)} malformed event(s) of the ledger of {model!r}: {listed}"
        )
    return found


def _packed_entries(
    tags: dict[str, str],
) -> tuple[list[tuple[int, int, dict[str, Any]]], list[tuple[int, int]]]:
    """(seq, time ms, fields) of every event in a pack that is whole and readable, and the (first,
    last) seqs of each such pack.

    A pack with parts missing past the pointer (its writer stopped half-way) is harmless: its events
    are still read as versions, or are in a later pack.
    """
    parts: dict[str, dict[int, str]] = {}
    counts: dict[str, int] = {}
    for key, value in tags.items():
        found = PACK_KEY.fullmatch(key)
        if found:
            parts.setdefault(found["pack"], {})[int(found["part"])] = value
            counts[found["pack"]] = int(found["count"])
    entries: list[tuple[int, int, dict[str, Any]]] = []
    ranges: list[tuple[int, int]] = []
    for pack_name, pieces in parts.items():
        try:
            if sorted(pieces) != list(range(1, counts[pack_name] + 1)):
                raise ValueError("parts missing")
            joined = "".join(pieces[n] for n in sorted(pieces))
            payload = zlib.decompress(base64.b64decode(joined, validate=True))
            entries += [
                (int(seq), int(time_ms), fields if isinstance(fields, dict) else {})
                for seq, time_ms, fields in json.loads(payload)
            ]
        except (ValueError, TypeError, zlib.error):
            continue
        first, last = pack_name.split("-")
        ranges.append((int(first), int(last)))
    return entries, ranges


def _fields(version: Version) -> dict[str, Any]:
    try:
        fields = json.loads(version.tags.get(EVENT_TAG, "{}"))
    except ValueError:
        return {}
    return fields if isinstance(fields, dict) else {}


def _events(seq: int, time_ms: int, fields: dict[str, Any]) -> list[Event] | None:
    """The events one ledger version holds: each of its changes, or itself (one change per version,
    as the ledger stored them at first); None when it is not what `record` writes."""
    changes = fields.get("changes")
    if not isinstance(changes, list):
        changes = [{}]
    if not all(isinstance(change, dict) and _well_formed({**fields, **change}) for change in changes):
        return None
    return [_event(seq, time_ms, {**fields, **change}) for change in changes]


def _well_formed(fields: dict[str, Any]) -> bool:
    version = fields.get("version")
    texts = ("actor", "action", "model", "from", "to", "alias", "reason", "result")
    return (
        isinstance(fields.get("action"), str)
        and (version is None or (isinstance(version, int) and not isinstance(version, bool)))
        and all(fields.get(key) is None or isinstance(fields[key], str) for key in texts)
    )


def _event(seq: int, time_ms: int, fields: dict[str, Any]) -> Event:
    return Event(
        seq=seq,
        time=utc_iso(time_ms),
        actor=fields.get("actor") or "",
        action=fields.get("action") or "",
        model=fields.get("model") or "",
        version=fields.get("version"),
        from_=fields.get("from"),
        to=fields.get("to"),
        alias=fields.get("alias"),
        reason=fields.get("reason") or "",
        result=fields.get("result") or "",
        millis=time_ms,
    )
