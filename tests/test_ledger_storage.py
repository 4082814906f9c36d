"""How the ledger is stored: packs of events in tags of the ledger model (reading gives the same
history), and the marker on the model that spares each change a request."""

from __future__ import annotations

import dataclasses
import json
import secrets
from typing import Any

import pytest

from registry import ledger
from registry.client import Registry
from registry.versions import iter_versions
from tests.conftest import Server

pytestmark = pytest.mark.postgres


@pytest.fixture
def registry(server: Server) -> Registry:
    return Registry(dataclasses.replace(server.settings, http_max_retries=0))


@pytest.fixture
def small_packs(monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(ledger, "PACK_EVERY", 5)
    return 5


def every_version(registry: Registry, model: str) -> list[tuple[int, str]]:
    """(seq, event id) of every version of the ledger, read without the packs."""
    versions = iter_versions(registry, ledger.ledger_name(model))
    return [(v.number, json.loads(v.tags[ledger.EVENT_TAG])["id"]) for v in versions]


def record_one_by_one(registry: Registry, model: str, count: int) -> None:
    for n in range(1, count + 1):
        ledger.record(registry, model, [ledger.Change("alias", n, to=str(n), alias="prod")], f"event {n}")


def test_history_is_the_same_with_and_without_packs(registry: Registry, model: str, small_packs: int) -> None:
    registry.create_model(ledger.ledger_name(model), description="", tags={})
    record_one_by_one(registry, model, 23)
    tags = registry.model_tags(ledger.ledger_name(model))
    assert ledger.packed_through(tags) == 20
    assert any(key.startswith(ledger.PACK_PREFIX) for key in tags)
    found = ledger.events(registry, model)
    assert [e.seq for e in found] == list(range(1, 24))
    assert [e.reason for e in found] == [f"event {n}" for n in range(1, 24)]
    assert len(every_version(registry, model)) == 23  # packing copies; the versions stay


def test_a_pack_too_long_for_one_tag_is_split_into_parts(
    registry: Registry, model: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ledger, "PACK_EVERY", 60)
    registry.create_model(ledger.ledger_name(model), description="", tags={})
    for n in range(1, 71):  # random hex digits compress only 2:1
        ledger.record(registry, model, [ledger.Change("stage", n, "None", "Staging")], secrets.token_hex(200))
    tags = registry.model_tags(ledger.ledger_name(model))
    parts = {key: value for key, value in tags.items() if key.startswith(ledger.PACK_PREFIX)}
    assert len(parts) > 1 and all(len(value) <= ledger.TAG_VALUE_LIMIT for value in parts.values())
    assert [e.version for e in ledger.events(registry, model)] == list(range(1, 71))


def test_a_pack_with_parts_missing_is_skipped(registry: Registry, model: str, small_packs: int) -> None:
    registry.create_model(ledger.ledger_name(model), description="", tags={})
    record_one_by_one(registry, model, 4)
    name = ledger.ledger_name(model)
    registry.set_model_tag(name, f"{ledger.PACK_PREFIX}1-4.1of2", "eJzLSM3JyQcABiwCFQ==")  # its packer died
    assert [e.seq for e in ledger.events(registry, model)] == [1, 2, 3, 4]


def test_packing_twice_or_overlapping_gives_no_duplicates(
    registry: Registry, model: str, small_packs: int
) -> None:
    registry.create_model(ledger.ledger_name(model), description="", tags={})
    record_one_by_one(registry, model, 12)  # packs 1-5, then 6-10
    ledger.pack(registry, model, 12)
    name = ledger.ledger_name(model)
    registry.set_model_tag(name, ledger.PACKED_THROUGH, "3")  # a slower packer moving the pointer back
    ledger.pack(registry, model, 12)  # packs 4-12 again under other names
    assert [e.seq for e in ledger.events(registry, model)] == list(range(1, 13))


def test_a_damaged_pack_falls_back_to_the_versions(registry: Registry, model: str, small_packs: int) -> None:
    registry.create_model(ledger.ledger_name(model), description="", tags={})
    record_one_by_one(registry, model, 7)
    name = ledger.ledger_name(model)
    pack_key = next(key for key in registry.model_tags(name) if key.startswith(ledger.PACK_PREFIX))
    registry.set_model_tag(name, pack_key, "not base64!")
    assert [e.seq for e in ledger.events(registry, model)] == list(range(1, 8))


def test_a_pack_missing_a_part_behind_the_pointer_is_read_from_the_versions_with_a_warning(
    registry: Registry, model: str, small_packs: int, client: Any
) -> None:
    warnings: list[str] = []
    registry.notify = warnings.append
    registry.create_model(ledger.ledger_name(model), description="", tags={})
    record_one_by_one(registry, model, 7)  # the 5th packs 1-5 and moves the pointer to 5
    name = ledger.ledger_name(model)
    pack_key = next(key for key in registry.model_tags(name) if key.startswith(ledger.PACK_PREFIX))
    client.delete_registered_model_tag(name, pack_key)
    assert [e.seq for e in ledger.events(registry, model)] == list(range(1, 8))
    assert len(warnings) == 1 and "damaged" in warnings[0]


@pytest.mark.parametrize(
    "event",
    [
        "not json",
        '{"changes": [{"action": "stage", "version": "abc"}]}',
        '{"changes": [{"version": []}]}',
        "[]",
    ],
)
def test_a_malformed_event_is_skipped_with_a_warning(
    registry: Registry, model: str, client: Any, event: str
) -> None:
    warnings: list[str] = []
    registry.notify = warnings.append
    registry.create_model(ledger.ledger_name(model), description="", tags={})
    record_one_by_one(registry, model, 2)
    client.create_model_version(ledger.ledger_name(model), "ledger:/event", tags={"event": event})
    record_one_by_one(registry, model, 1)
    assert [e.seq for e in ledger.events(registry, model)] == [1, 2, 4]
    assert len(warnings) == 1 and "malformed" in warnings[0] and ": 3" in warnings[0]


def test_a_pack_the_server_refuses_leaves_the_change_recorded(
    registry: Registry, model: str, small_packs: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    warnings: list[str] = []
    registry.notify = warnings.append
    monkeypatch.setattr(ledger, "PACK_PREFIX", "pack#")  # a tag key MLflow refuses (400)
    registry.create_model(ledger.ledger_name(model), description="", tags={})
    record_one_by_one(registry, model, 6)
    assert len(warnings) == 1 and "not packed" in warnings[0], warnings
    assert ledger.packed_through(registry.model_tags(ledger.ledger_name(model))) == 0
    assert [e.seq for e in ledger.events(registry, model)] == list(range(1, 7))


def test_no_ledger_is_an_empty_history(registry: Registry, model: str) -> None:
    assert ledger.events(registry, model) == []


def test_a_change_marks_the_model_and_the_next_change_skips_the_ledger_check(
    registry: Registry, model: str, make_versions: Any, client: Any
) -> None:
    from registry.promote import set_alias

    make_versions(2)
    set_alias(registry, model, "champion", 1)
    assert client.get_registered_model(model).tags[ledger.LEDGER_MARKER] == ledger.ledger_name(model)
    registry.create_model = None  # type: ignore[assignment,method-assign]  # must not be called now
    set_alias(registry, model, "champion", 2)
    recorded = [(e.action, e.version) for e in ledger.events(registry, model)]
    assert recorded[-2:] == [("alias", 1), ("alias", 2)]


def test_a_deleted_ledger_is_started_again_by_the_next_change(
    registry: Registry, model: str, make_versions: Any, client: Any
) -> None:
    from registry.promote import set_alias

    make_versions(2)
    set_alias(registry, model, "champion", 1)
    client.delete_registered_model(ledger.ledger_name(model))
    set_alias(registry, model, "champion", 2, reason="after the ledger was deleted")
    found = ledger.events(registry, model)
    assert [e.action for e in found] == ["baseline", "alias"]
    assert found[-1].reason == "after the ledger was deleted"
    # the baseline is the state before the change that restarted the ledger: champion still on 1
    assert (found[0].alias, found[0].version) == ("champion", 1)
    assert (found[1].from_, found[1].to) == ("1", "2")


def test_a_command_is_one_ledger_version_and_its_changes_share_a_seq(registry: Registry, model: str) -> None:
    registry.create_model(ledger.ledger_name(model), description="", tags={})
    moves = [
        ledger.Change("stage", 2, "None", "Production"),
        ledger.Change("archive", 1, "Production", "Archived"),
    ]
    ledger.record(registry, model, moves, "one command")
    assert len(every_version(registry, model)) == 1
    found = ledger.events(registry, model)
    assert [(e.seq, e.action, e.version, e.from_, e.to) for e in found] == [
        (1, "stage", 2, "None", "Production"),
        (1, "archive", 1, "Production", "Archived"),
    ]
    assert {e.reason for e in found} == {"one command"}


def test_changes_too_many_for_one_tag_value_spill_into_more_versions(registry: Registry, model: str) -> None:
    registry.create_model(ledger.ledger_name(model), description="", tags={})
    many = [ledger.Change("baseline", n, to=str(n), alias=f"alias-{n:03d}") for n in range(1, 121)]
    ledger.record(registry, model, many, "first use of the ledger")
    stored = list(iter_versions(registry, ledger.ledger_name(model)))
    assert len(stored) > 1 and all(len(v.tags[ledger.EVENT_TAG]) <= ledger.TAG_VALUE_LIMIT for v in stored)
    assert [e.alias for e in ledger.events(registry, model)] == [f"alias-{n:03d}" for n in range(1, 121)]


def test_a_ledger_in_the_first_format_one_event_per_version_reads_the_same(
    registry: Registry, model: str
) -> None:
    name = ledger.ledger_name(model)
    registry.create_model(name, description="", tags={})
    for number, action in ((2, "stage"), (1, "archive")):
        fields = {"id": secrets.token_hex(16), "actor": "alice", "action": action, "model": model,
                  "version": number, "from": None, "to": "Production", "alias": None, "reason": "old",
                  "result": "ok"}  # fmt: skip
        registry.add_version(name, ledger.EVENT_SOURCE, {ledger.EVENT_TAG: json.dumps(fields)})
    ledger.record(registry, model, [ledger.Change("alias", 2, to="2", alias="prod")], "new")
    found = ledger.events(registry, model)
    assert [(e.seq, e.action, e.actor, e.reason) for e in found] == [
        (1, "stage", "alice", "old"),
        (2, "archive", "alice", "old"),
        (3, "alias", registry.settings.actor, "new"),
    ]
