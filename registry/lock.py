"""Mutual exclusion for stage, alias and rollback, across every machine that shares the server.

MLflow reads the current Production set without a lock, so concurrent promotions can leave
several versions in Production. We serialise them with a ticket queue (Lamport's bakery) built
on the one primitive the server makes atomic and ordered: version numbers. Each client takes a
ticket, a new version of the companion model `<model>.lock`, tagged with its owner and state;
it holds the lock while its ticket is the lowest active one. Numbers are never reused, so a
ticket can be retired by anyone without risk of hitting a newer one. Release tags the ticket
`released` (needs only EDIT permission).

Leases: while its client lives, a ticket is renewed every LOCK_LEASE/4 seconds, waiting or holding
(a background thread rewrites its description, which the server stamps with its own clock). A
ticket not renewed for LOCK_LEASE seconds, measured on the server's clock, belongs to a crashed
client: anyone may mark it `expired`. Before every write the holder proves it still holds the lock
(the fence): when its last renewal is more than half a lease old, it renews at once and checks
that nobody expired its ticket meanwhile; if someone did, it stops before writing (Refused).
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from registry.client import Registry, Version
from registry.errors import NotFound, PermissionDenied, Refused, RegistryError
from registry.versions import iter_versions, utc_iso

LOCK_SUFFIX = ".lock"
TICKET_SOURCE = "lock:/ticket"
STATE_TAG = "state"
OWNER_TAG = "owner"
# A ticket is active (waiting or holding), released, expired (its lease ran out: its holder may have
# changed things it never recorded) or settled (expired, and the next holder recorded what it found).
ACTIVE, RELEASED, EXPIRED, SETTLED = "active", "released", "expired", "settled"
RELEASE_WAIT = 5.0  # seconds the release may take at most; a ticket not released expires after its lease
DAY_MS = 86_400_000
POLL_SECONDS = (0.05, 0.2)  # a waiter next in line polls every 50-200 ms (random: waiters do not align)
POLL_SLOWDOWN_CAP = 4  # one further back polls up to this many times slower, sparing the holder's server


def lock_name(model: str) -> str:
    return model + LOCK_SUFFIX


class Ticket:
    """Our ticket in `model`'s queue: renewed while we live, proven before every write."""

    def __init__(self, registry: Registry, model: str, ticket: Version, sent_at: float) -> None:
        self.registry, self.model, self.number = registry, model, ticket.number
        self.owner = ticket.tags[OWNER_TAG]
        self.numbers = {ticket.number}  # ours, and any duplicate a retried POST created
        self.lease = registry.settings.lock_lease
        self.lost = ""
        self._renewed_at = sent_at  # when the last renewal that the server applied was sent
        self._stamp_ms, self._stamped_at = ticket.touched_ms, time.monotonic()
        self._guard = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._keep_alive, name="lock-lease", daemon=True)
        self._thread.start()

    def server_now_ms(self) -> float:
        """The server's clock now, from its last stamp on our ticket (late by at most one answer)."""
        return self._stamp_ms + (time.monotonic() - self._stamped_at) * 1000

    def renew(self) -> None:
        """Restamp the ticket; Refused when somebody expired it (our lease ran out meanwhile)."""
        with self._guard:
            sent = time.monotonic()
            version = self.registry.touch_version(
                lock_name(self.model), self.number, f"lock ticket, renewed by {self.owner}"
            )
            if version.tags.get(STATE_TAG) != ACTIVE:
                self.lost = (
                    f"lost the registry lock of {self.model!r}: its lease of {self.lease:g} s ran out "
                    f"(the server or this client stalled) and another client took it; nothing more was "
                    "changed, see `doctor`"
                )
            self._renewed_at, self._stamp_ms, self._stamped_at = sent, version.touched_ms, time.monotonic()
        if self.lost:
            raise Refused(self.lost)

    def fence(self, written: bool = False) -> None:
        """Prove the lock is still ours around a write: renew at once when the time left on the lease
        is less than a request may take. Before a write (`written` False) a lost lock means nothing
        more was changed; after one, that the write may have landed after another holder's change."""
        if not self.lost and time.monotonic() - self._renewed_at > self.lease - self._slowest_request():
            with contextlib.suppress(Refused):  # said below, with what it means here
                self.renew()
        if self.lost and written:
            raise Refused(
                f"lost the registry lock of {self.model!r} while a write was on its way (the server or "
                "this client stalled past the lease): it may have landed after another client's change; "
                "run `doctor`"
            )
        if self.lost:
            raise Refused(self.lost)

    def _slowest_request(self) -> float:
        """How long one request may take with MLflow's retries (timeout per try, backoff between)."""
        settings = self.registry.settings
        tries = settings.http_max_retries + 1
        backoff = sum(settings.http_backoff_factor * (1 << attempt) for attempt in range(tries - 1))
        return float(settings.http_timeout * tries + backoff)

    def _keep_alive(self) -> None:
        while not self._stop.wait(self.lease / 4):
            try:
                self.renew()
            except RegistryError:  # a stalled server or a lost lease: the next fence says so
                if self.lost:
                    return

    def stop(self) -> None:
        self._stop.set()


@contextmanager
def exclusive(
    registry: Registry, model: str, command: str, settle: Callable[[str], object] | None = None
) -> Iterator[None]:
    """Hold `model`'s registry lock inside the block (a no-op when REGISTRY_LOCK=false).

    When a holder before us lost its lease, `settle(why)` runs first (under the lock), to record what
    that holder may have changed without recording it; its tickets are then marked settled.
    """
    if not registry.settings.lock:
        yield
        return
    ticket = _take_ticket(registry, model, command)
    try:
        lapsed = _wait_for_turn(registry, model, ticket)
        registry.fence = ticket.fence
        if lapsed:
            numbers = ", ".join(str(t.number) for t in lapsed)
            if settle is not None:
                settle(f"lock taken over from ticket {numbers}, whose lease ran out")
            for stale in lapsed:
                registry.set_version_tag(lock_name(model), stale.number, STATE_TAG, SETTLED)
        yield
    finally:
        registry.fence = _no_fence
        ticket.stop()
        if not ticket.lost:  # a lost ticket stays expired: the next holder settles it
            _release(registry, model, ticket)


def _no_fence(written: bool = False) -> None:
    """The fence outside the lock: nothing to prove."""


def _release(registry: Registry, model: str, ticket: Ticket) -> None:
    """Tag our tickets released, waiting at most RELEASE_WAIT seconds: a frozen server must not double
    the command's time, and an unreleased ticket expires after its lease anyway."""

    def release() -> None:
        for number in ticket.numbers:
            registry.set_version_tag(lock_name(model), number, STATE_TAG, RELEASED)

    worker = threading.Thread(target=_quietly(release), name="lock-release", daemon=True)
    worker.start()
    worker.join(RELEASE_WAIT)


def _quietly(action: Callable[[], None]) -> Callable[[], None]:
    def run() -> None:
        with contextlib.suppress(RegistryError):
            action()

    return run


def _take_ticket(registry: Registry, model: str, command: str) -> Ticket:
    tags = {
        OWNER_TAG: uuid.uuid4().hex,
        STATE_TAG: ACTIVE,
        "actor": registry.settings.actor,
        "command": command,
    }
    sent = time.monotonic()
    try:
        version = registry.add_version(lock_name(model), TICKET_SOURCE, tags)
    except (NotFound, PermissionDenied):
        # A missing lock model answers 404, or 403 on a server with authentication (no one has
        # permissions on it yet). Create it, unless the model itself is unknown.
        registry.aliases(model)
        registry.create_model(
            lock_name(model),
            description=(
                f"Lock tickets of model {model!r}, written by the registry tool (see `prune-locks`). "
                "Do not edit."
            ),
            tags={"registry.lock_of": model},
        )
        sent = time.monotonic()
        version = registry.add_version(lock_name(model), TICKET_SOURCE, tags)
    return Ticket(registry, model, version, sent)


def _wait_for_turn(registry: Registry, model: str, ticket: Ticket) -> list[Version]:
    """Poll until our ticket is the lowest active one; a waiting ticket is renewed like a held one.
    Returns the expired tickets not yet settled: holders before us whose lease ran out."""
    settings = registry.settings
    deadline = time.monotonic() + settings.lock_timeout
    lease_ms = settings.lock_lease * 1000
    announced = False
    while True:
        ticket.fence()
        unsettled = registry.search_tagged(lock_name(model), {}, excluding={STATE_TAG: (RELEASED, SETTLED)})
        now_ms = ticket.server_now_ms()
        active = [t for t in unsettled if t.tags.get(STATE_TAG) == ACTIVE]
        expired = [
            t for t in active if t.tags.get(OWNER_TAG) != ticket.owner and t.touched_ms + lease_ms < now_ms
        ]
        for stale in expired:
            registry.set_version_tag(lock_name(model), stale.number, STATE_TAG, EXPIRED)
        queue = sorted((t for t in active if t not in expired), key=lambda t: t.number)
        ticket.numbers |= {t.number for t in active if t.tags.get(OWNER_TAG) == ticket.owner}
        # A ticket whose tags are being rewritten may come back without them: it counts as
        # someone else's until a later poll says otherwise.
        first = queue[0] if queue else None
        if first is None or first.number in ticket.numbers:
            lapsed = [t for t in unsettled if t.tags.get(STATE_TAG) == EXPIRED] + expired
            return sorted((t for t in lapsed if t.number not in ticket.numbers), key=lambda t: t.number)
        holder = (
            f"{first.tags.get('actor') or 'someone'} "
            f"({first.tags.get('command', '?')}, since {utc_iso(first.created_ms)})"
        )
        if time.monotonic() >= deadline:
            raise Refused(
                f"the registry lock of {model!r} stayed busy for {settings.lock_timeout:g} s, "
                f"held by {holder}; try again later or raise LOCK_TIMEOUT"
            )
        if not announced:
            registry.notify(f"waiting for the registry lock of {model!r}, held by {holder} ...")
            announced = True
        ahead = next((i for i, t in enumerate(queue) if t.number in ticket.numbers), len(queue))
        time.sleep(random.uniform(*POLL_SECONDS) * min(max(ahead, 1), POLL_SLOWDOWN_CAP))


def prune(registry: Registry, model: str, older_than_days: float, dry_run: bool = False) -> list[int]:
    """Delete the released or settled lock tickets of `model` last touched more than `older_than_days`
    ago (needs delete permission on the lock model); returns their numbers. Active tickets and the
    newest ticket are kept (the server numbers new tickets after the highest one)."""
    cutoff_ms = time.time() * 1000 - older_than_days * DAY_MS
    try:
        tickets = list(iter_versions(registry, lock_name(model)))
    except NotFound:
        return []
    newest = max((t.number for t in tickets), default=0)
    old = [
        t.number
        for t in tickets
        if t.tags.get(STATE_TAG) in (RELEASED, SETTLED) and t.touched_ms < cutoff_ms and t.number != newest
    ]
    if not dry_run:
        for number in old:
            registry.delete_version(lock_name(model), number)
    return sorted(old)
