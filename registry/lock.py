"""Mutual exclusion for stage, alias and rollback, across every machine that shares the server.

MLflow reads the current Production set without a lock, so concurrent promotions can leave
several versions in Production. We serialise them with a ticket queue (Lamport's bakery) built
on the one primitive the server makes atomic and ordered: version numbers. Each client takes a
ticket, a new version of the companion model `<model>.lock`, tagged with its owner and state;
it holds the lock while its ticket is the lowest active one. Numbers are never reused, so a
ticket can be retired by anyone without risk of hitting a newer one. Release tags the ticket
`released` (needs only EDIT permission). A ticket of a crashed client expires LOCK_LEASE seconds
after it was taken, measured on the server's clock (our own ticket's timestamp tells us the
server's "now"), so a crash blocks others for at most a lease.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from registry.client import Registry, Version
from registry.errors import NotFound, PermissionDenied, Refused
from registry.versions import utc_iso

LOCK_SUFFIX = ".lock"
TICKET_SOURCE = "lock:/ticket"
STATE_TAG = "state"
OWNER_TAG = "owner"
ACTIVE, RELEASED, EXPIRED = "active", "released", "expired"


def lock_name(model: str) -> str:
    return model + LOCK_SUFFIX


@contextmanager
def exclusive(registry: Registry, model: str, command: str) -> Iterator[None]:
    """Hold `model`'s registry lock inside the block (a no-op when REGISTRY_LOCK=false)."""
    if not registry.settings.lock:
        yield
        return
    owner = uuid.uuid4().hex
    ticket, taken_at = _take_ticket(registry, model, owner, command)
    mine = {ticket.number}
    try:
        mine |= _wait_for_turn(registry, model, owner, ticket, taken_at)
        yield
    finally:
        for number in mine:  # ours, and any duplicate a retried POST created
            registry.set_version_tag(lock_name(model), number, STATE_TAG, RELEASED)


def _take_ticket(registry: Registry, model: str, owner: str, command: str) -> tuple[Version, float]:
    tags = {
        OWNER_TAG: owner,
        STATE_TAG: ACTIVE,
        "actor": registry.settings.actor,
        "command": command,
    }
    try:
        ticket = registry.add_version(lock_name(model), TICKET_SOURCE, tags)
    except (NotFound, PermissionDenied):
        # A missing lock model answers 404, or 403 on a server with authentication (no one has
        # permissions on it yet). Create it, unless the model itself is unknown.
        registry.aliases(model)
        registry.create_model(
            lock_name(model),
            description=f"Lock tickets of model {model!r}, written by the registry tool. Do not edit.",
            tags={"registry.lock_of": model},
        )
        ticket = registry.add_version(lock_name(model), TICKET_SOURCE, tags)
    return ticket, time.monotonic()


def _wait_for_turn(registry: Registry, model: str, owner: str, ticket: Version, taken_at: float) -> set[int]:
    """Poll until our ticket is the lowest active one; returns the numbers of all our tickets."""
    settings = registry.settings
    deadline = taken_at + settings.lock_timeout
    lease_ms = settings.lock_lease * 1000
    announced = False
    while True:
        server_now_ms = ticket.created_ms + (time.monotonic() - taken_at) * 1000
        active = registry.search_tagged(lock_name(model), {STATE_TAG: ACTIVE})
        expired = [
            t for t in active if t.tags.get(OWNER_TAG) != owner and t.created_ms + lease_ms < server_now_ms
        ]
        for stale in expired:
            registry.set_version_tag(lock_name(model), stale.number, STATE_TAG, EXPIRED)
        queue = sorted((t for t in active if t not in expired), key=lambda t: t.number)
        mine = {ticket.number} | {t.number for t in active if t.tags.get(OWNER_TAG) == owner}
        # A ticket whose tags are being rewritten may come back without them: it counts as
        # someone else's until a later poll says otherwise.
        first = queue[0] if queue else ticket
        if first.number in mine:
            return mine
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
        time.sleep(random.uniform(0.05, 0.2))
