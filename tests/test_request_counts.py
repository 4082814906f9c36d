"""HTTP requests per command, counted by a reverse proxy in front of the test server (no timings).

The bounds are the counts measured when these tests were written (bench/run.py prints the same
numbers with their breakdown); a change that adds requests to a command fails here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest

from bench.proxy import CountingProxy
from registry import ledger
from registry.client import Registry
from registry.config import with_tracking_uri
from registry.promote import delete_alias, set_alias, stage
from registry.versions import list_versions
from tests.conftest import Server


@pytest.fixture
def proxy(server: Server) -> Iterator[CountingProxy]:
    with CountingProxy(server.url) as counting:
        yield counting


def registry_via(proxy: CountingProxy, server: Server, **changes: Any) -> Registry:
    settings = with_tracking_uri(server.settings, proxy.url)
    return Registry(dataclasses.replace(settings, http_max_retries=0, **changes))


def counted(proxy: CountingProxy, action: Any) -> int:
    proxy.reset()
    action()
    return proxy.count()


def test_versions_of_50_versions_with_aliases_is_at_most_3_requests(
    server: Server, proxy: CountingProxy, client: Any, model: str, make_versions: Any
) -> None:
    make_versions(50)
    client.set_registered_model_alias(model, "prod", "50")
    client.set_registered_model_alias(model, "champion", "7")
    registry = registry_via(proxy, server)
    proxy.reset()
    rows = list_versions(registry, model)
    assert [r.version for r in rows] == list(range(50, 0, -1))
    assert {r.version: r.aliases for r in rows if r.aliases} == {50: ["prod"], 7: ["champion"]}
    assert proxy.count() <= 3, proxy.breakdown()
    # one request per page of versions, plus one for all the aliases
    assert counted(proxy, lambda: list_versions(registry, model, page_size=20)) == 1 + 3, proxy.breakdown()


def test_history_costs_one_request_plus_one_per_page_of_unpacked_events(
    server: Server, proxy: CountingProxy, model: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = registry_via(proxy, server)
    registry.create_model(ledger.ledger_name(model), description="", tags={})
    monkeypatch.setattr(ledger, "PACK_EVERY", 40)
    record_commands(registry, model, 1, 40)  # the 40th ledger version packs 1-40
    record_commands(registry, model, 41, 65)  # not packed yet
    monkeypatch.setattr(ledger, "PAGE_SIZE", 10)
    assert counted(proxy, lambda: len(ledger.events(registry, model))) == 1 + 3, proxy.breakdown()
    record_commands(registry, model, 66, 80)  # the 80th packs 41-80
    assert counted(proxy, lambda: len(ledger.events(registry, model))) == 1 + 1, proxy.breakdown()


def record_commands(registry: Registry, model: str, first: int, last: int) -> None:
    """One command per version number, each one ledger version."""
    for n in range(first, last + 1):
        ledger.record(registry, model, [ledger.Change("stage", n, "None", "Staging")], "")


# Requests measured with MLflow 3.17.2 through its public client, which sends a GET registered-models/get
# (its check that the name is not a prompt) before every transition, alias set/delete and tag write.
# lock off: stage (archiving one holder) = search model (aliases, the latest version of each stage), a
# search of all versions (every holder of a stage: the model read shows only the latest one), MLflow's
# GET, transition, 1 ledger version for all its changes (the move and the archive); plus a get version
# when the version moved is not the latest of its stage. alias = search model, MLflow's GET, set alias,
# 1 ledger version; delete likewise. The model's ledger marker spares the ledger check (a create
# answered 400). The lock adds: ticket, search for turn, and the release tag with MLflow's GET before it.
STEADY = {
    # lock: (stage older version, stage newest version, alias set new, alias move, alias delete)
    True: (10, 9, 8, 8, 8),
    False: (6, 5, 4, 4, 4),
}
FIRST_USE = {True: 19, False: 12}  # first change: creates the ledger (and lock) models, marks the model


@pytest.mark.parametrize("lock", [True, False], ids=["lock-on", "lock-off"])
def test_stage_and_alias_request_counts(
    server: Server, proxy: CountingProxy, model: str, make_versions: Any, lock: bool
) -> None:
    make_versions(4)
    registry = registry_via(proxy, server, lock=lock)
    first = counted(proxy, lambda: stage(registry, model, 1, "Staging"))
    assert first <= FIRST_USE[lock], proxy.breakdown()
    older = counted(proxy, lambda: stage(registry, model, 2, "Staging"))  # 4 is the latest in None
    newest = counted(proxy, lambda: stage(registry, model, 4, "Staging"))
    aliased = counted(proxy, lambda: set_alias(registry, model, "champion", 4))
    moved = counted(proxy, lambda: set_alias(registry, model, "champion", 2))  # the latest Archived
    deleted = counted(proxy, lambda: delete_alias(registry, model, "champion"))
    measured = (older, newest, aliased, moved, deleted)
    assert all(m <= bound for m, bound in zip(measured, STEADY[lock], strict=True)), (measured, STEADY[lock])
    events = ledger.events(registry, model)
    recorded = [(e.action, e.version) for e in events][-7:]
    assert recorded == [
        ("stage", 2),
        ("archive", 1),
        ("stage", 4),
        ("archive", 2),
        ("alias", 4),
        ("alias", 2),
        ("alias-delete", 2),
    ]
    assert events[-7].seq == events[-6].seq != events[-5].seq  # one ledger version per command
