"""The registry's state replayed from the ledger: at any past moment, or along one version's life."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timezone
from typing import Any

from registry.errors import BadInput
from registry.ledger import Event

HELD_STAGES = ("Staging", "Production")
MOVES = ("baseline", "train", "stage", "rollback", "archive", "observed")


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """Which versions held Staging and Production, and where each alias pointed."""

    at: str
    stages: dict[str, list[int]]
    aliases: dict[str, int]
    last_seq: int | None

    def as_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def moment(text: str) -> str:
    """`2026-11-30T12:00:00Z` (or any ISO 8601 time; no zone means UTC) as the ledger writes times."""
    try:
        parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise BadInput(f"time {text!r} is not ISO 8601; use such as 2026-11-30T12:00:00Z") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def replay(events: list[Event], at: str | None = None) -> Snapshot:
    """The state after every successful event up to `at` (a `moment`; default: all of them).

    Times have whole seconds: events in the same second as `at` count as before it.
    """
    stage_of: dict[int, str] = {}
    aliases: dict[str, int] = {}
    last: int | None = None
    for event in events:
        if at is not None and event.time > at:
            break
        if event.result not in ("ok", "forced", "repair") or event.version is None:
            continue
        last = event.seq
        if event.alias is not None:
            if event.action == "alias-delete" or (event.action == "observed" and event.to is None):
                aliases.pop(event.alias, None)
            elif event.action in ("alias", "baseline", "observed"):
                aliases[event.alias] = event.version
        elif event.action in MOVES and event.to is not None:
            stage_of[event.version] = event.to
    stages = {s: sorted(v for v, held in stage_of.items() if held == s) for s in HELD_STAGES}
    return Snapshot(at or "now", stages, dict(sorted(aliases.items())), last)


def life(events: list[Event], number: int) -> list[Event]:
    """Every event about version `number`: its stages, aliases coming and going, refused attempts."""
    return [e for e in events if e.version == number or (e.alias is not None and e.from_ == str(number))]
