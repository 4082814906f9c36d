"""`versions` lists every version, newest first, with right aliases, in pages."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from typing import Any

import pytest

from registry.client import Registry
from registry.versions import list_versions
from tests.conftest import ROOT

pytestmark = pytest.mark.postgres


def test_versions_table_shows_stage_aliases_and_accuracy_newest_first(
    cli: Any, client: Any, model: str, trained: Any
) -> None:
    trained(2)
    client.set_registered_model_alias(model, "prod", "1")
    client.set_registered_model_alias(model, "champion", "1")
    cli("stage", "--model", model, "--version", 1, "--stage", "Production")
    lines = cli("versions", "--model", model).out.splitlines()
    assert lines[0].split() == ["version", "stage", "aliases", "created", "run_id", "accuracy"]
    assert lines[2].split()[:2] == ["2", "None"]
    assert lines[3].split()[:4] == ["1", "Production", "champion,", "prod"]
    assert re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ +[0-9a-f]{32} +0\.\d{4}$", lines[3])


def test_versions_json_has_exactly_the_documented_keys(
    cli: Any, client: Any, model: str, trained: Any
) -> None:
    trained(1)
    client.set_registered_model_alias(model, "prod", "1")
    rows = json.loads(cli("versions", "--json", "--model", model).out)
    assert len(rows) == 1
    row = rows[0]
    assert set(row) == {"version", "stage", "aliases", "created", "run_id", "status", "accuracy"}
    assert (row["version"], row["stage"], row["aliases"], row["status"]) == (1, "None", ["prod"], "READY")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", row["created"])
    assert isinstance(row["accuracy"], float)


def test_versions_filters_by_stage_alias_and_limit(
    cli: Any, client: Any, model: str, make_versions: Any
) -> None:
    make_versions(5)
    cli("stage", "--model", model, "--version", 2, "--stage", "Staging")
    client.set_registered_model_alias(model, "canary", "4")

    def listed(*args: Any) -> list[int]:
        return [row["version"] for row in json.loads(cli("versions", "--json", "--model", model, *args).out)]

    assert listed() == [5, 4, 3, 2, 1]
    assert listed("--stage", "staging") == [2]
    assert listed("--alias", "canary") == [4]
    assert listed("--limit", 2) == [5, 4]
    assert listed("--stage", "Production") == []
    assert json.loads(cli("versions", "--json", "--model", model, "--limit", 1).out)[0]["accuracy"] is None
    assert cli("versions", "--model", model, "--alias", "nobody").code == 4


def test_listing_pages_through_every_version_with_aliases_from_one_request(
    server: Any, client: Any, model: str, make_versions: Any
) -> None:
    make_versions(23)
    for alias, number in {"a": 1, "b": 12, "c": 23, "d": 12}.items():
        client.set_registered_model_alias(model, alias, str(number))
    rows = list_versions(Registry(server.settings), model, page_size=5)
    assert [row.version for row in rows] == list(range(23, 0, -1))
    assert {row.version: row.aliases for row in rows if row.aliases} == {23: ["c"], 12: ["b", "d"], 1: ["a"]}


def test_versions_of_an_unknown_model_is_not_found(cli: Any, model: str) -> None:
    outcome = cli("versions", "--model", model)
    assert outcome.code == 4
    assert model in outcome.err and outcome.err.count("\n") == 1


def test_a_reader_that_stops_early_ends_the_listing_quietly(
    env: dict[str, str], model: str, make_versions: Any
) -> None:
    make_versions(3)
    command = f"{sys.executable} -m registry versions --model {model} | true"  # the reader is gone at once
    environment = {**os.environ, **env, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        ["bash", "-c", command + '; echo "exit=${PIPESTATUS[0]}"'],
        capture_output=True, text=True, env=environment, timeout=300,
    )  # fmt: skip
    assert done.stderr == ""
    assert done.stdout.strip() == "exit=141"  # as `seq 1 100000 | true` ends
