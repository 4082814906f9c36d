"""The registry's state replayed from the ledger: at any past moment, or along one version's life."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timezone
from typing import Any

from registry.errors import BadInput
from registry.ledger import Event

HELD_STAGES = ("Staging", "Production")
MOVES = ("baseline", "train", "stage", "rollback", "archive", "observed")
APPLIED = ("ok", "forced", "repair")  # results of changes that were made; "refused" changed nothing
LIFECYCLE = "lifecycle"  # a model switched to (or first took) a lifecycle: `to` is stages or aliases


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """Which versions held Staging and Production, and where each alias pointed.

    `last_seq` is the last change counted; `refused` the refused events after it, at or before the
    moment (they changed nothing); `uncounted` the changes at or before the moment that the ledger
    puts after a later one, so they are not counted.
    """

    at: str
    stages: dict[str, list[int]]
    aliases: dict[str, int]
    last_seq: int | None
    refused: list[int]
    uncounted: list[int]
    lifecycle: str = "stages"  # what held the roles then: stages, or aliases (after `migrate`)

    def as_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class State:
    """The stage of each version and the version of each alias, as the changes replayed so far left them."""

    stage_of: dict[int, str] = dataclasses.field(default_factory=dict)
    aliases: dict[str, int] = dataclasses.field(default_factory=dict)
    lifecycle: str = "stages"

    def apply(self, event: Event) -> None:
        """Replay `event` if it changed the registry (see `applied`); refused attempts change nothing."""
        if event.action == LIFECYCLE and event.to and applied(event):
            self.lifecycle = event.to
        if not applied(event) or event.version is None:
            return
        if event.alias is not None:
            if event.action == "alias-delete" or (event.action == "observed" and event.to is None):
                self.aliases.pop(event.alias, None)
            elif event.action in ("alias", "baseline", "observed"):
                self.aliases[event.alias] = event.version
        elif event.action in MOVES and event.to is not None:
            self.stage_of[event.version] = event.to

    def stages(self) -> dict[str, list[int]]:
        """Staging and Production: the versions holding each, in order."""
        return {s: sorted(v for v, held in self.stage_of.items() if held == s) for s in HELD_STAGES}


def applied(event: Event) -> bool:
    """True when `event` is a change that was made: not a refused attempt, not the empty-ledger marker."""
    return event.result in APPLIED and (event.version is not None or event.action == LIFECYCLE)


def moment(text: str) -> str:
    """`2026-11-30T12:00:00Z` (or any ISO 8601 time; no zone means UTC) as the ledger writes times."""
    try:
        parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise BadInput(f"time {text!r} is not ISO 8601; use such as 2026-11-30T12:00:00Z") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    try:
        return parsed.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    except OverflowError:  # such as 0001-01-01T00:00:00+01:00, which is in year 0 in UTC
        raise BadInput(f"time {text!r} is outside the calendar in UTC; use a time in years 1-9999") from None


def replay(events: list[Event], at: str | None = None) -> Snapshot:
    """The state after the changes up to `at` (a `moment`; default: all of them), in ledger order.

    Changes count in seq order until the first one later than `at`, so the state is the one after
    `last_seq` and every change before it. Times have whole seconds (events in the same second as
    `at` count as before it) and commands that overlap can write them out of seq order: a change
    at or before `at` after that first later one is named in `uncounted`. Refused events never
    count, whatever their time.
    """
    state = State()
    last: int | None = None
    for event in filter(applied, events):
        if at is not None and event.time > at:
            break
        state.apply(event)
        last = event.seq
    later = [e for e in events if (last is None or e.seq > last) and (at is None or e.time <= at)]
    return Snapshot(
        at or "now",
        state.stages(),
        dict(sorted(state.aliases.items())),
        last,
        sorted({e.seq for e in later if e.result == "refused"}),
        sorted({e.seq for e in later if applied(e)}),
        state.lifecycle,
    )


def life(events: list[Event], number: int) -> list[Event]:
    """Every event about version `number`: its stages, aliases coming and going, refused attempts."""
    return [e for e in events if e.version == number or (e.alias is not None and e.from_ == str(number))]
