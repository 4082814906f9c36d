"""The lock under stress: many clients waiting past the lease, and a holder frozen past its lease.

LOCK_LEASE is 2-3 s here, so that waits and stalls run over it in seconds, not minutes. The ledger is
the witness: every command that changed something is one ledger version, numbered by the server,
and each change names what it moved from, so holds that overlapped, or a write that landed after
its lock was lost, show as a change whose `from` is not what the events before it left.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import ROOT, Outcome, aliases, history, stages
from tests.faultproxy import StallProxy
from tests.test_races import race

pytestmark = pytest.mark.postgres

LEASE = 2  # LOCK_LEASE, seconds
APPLIED = ("ok", "forced", "repair")  # ledger results of changes that were made
MOVES = ("stage", "rollback")


def production(client: Any, model: str) -> list[int]:
    return sorted(number for number, stage in stages(client, model).items() if stage == "Production")


def replayed(events: list[dict[str, Any]]) -> tuple[list[int], dict[str, int]]:
    """The Production holders and the aliases that the ledger's applied changes leave."""
    stage_of: dict[int, str] = {}
    alias_of: dict[str, int] = {}
    for event in events:
        if event["result"] not in APPLIED or event["version"] is None:
            continue
        if event["alias"] is None:
            stage_of[event["version"]] = event["to"]
        elif event["action"] == "alias-delete" or event["to"] is None:
            alias_of.pop(event["alias"], None)
        else:
            alias_of[event["alias"]] = event["version"]
    return sorted(n for n, stage in stage_of.items() if stage == "Production"), alias_of


HELD = ("Staging", "Production")


def story_problems(events: list[dict[str, Any]]) -> list[str]:
    """Where the ledger contradicts itself: a change whose `from` is not what the changes before it
    left (an archive of a version the ledger did not have in Production, an alias moved from where
    the ledger did not have it), or a command after which the ledger has two Production versions."""
    problems = []
    for index, event in enumerate(events):
        if event["result"] not in APPLIED or event["version"] is None or event["action"] == "baseline":
            continue
        before = events[:index]
        if event["alias"] is not None:
            was = replayed(before)[1].get(event["alias"])
            expected = None if was is None else str(was)
        else:
            stage_of = {
                e["version"]: e["to"] for e in before if e["alias"] is None and e["result"] in APPLIED
            }
            expected = stage_of.get(event["version"], "None")
        # An `observed` event (doctor's, or a takeover's record of a lapsed holder's changes) says `from`
        # null for a version the ledger had outside Staging and Production.
        unheld = event["action"] == "observed" and event["from"] is None and expected not in HELD
        if event["from"] != expected and not unheld:
            what = f"{event['action']} {event['alias'] or ''} of version {event['version']}"
            problems.append(f"seq {event['seq']}: {what} from {event['from']}, the ledger had {expected}")
    for seq in sorted({e["seq"] for e in events}):
        holders = replayed([e for e in events if e["seq"] <= seq])[0]
        if len(holders) > 1:
            problems.append(f"seq {seq}: the ledger has versions {holders} all in Production")
    return problems


def assert_ledger_tells_the_registry_story(cli: Any, client: Any, model: str) -> list[dict[str, Any]]:
    """The ledger is consistent, its replay is what MLflow holds, and `doctor` finds no drift."""
    events = history(cli, model)
    assert story_problems(events) == [], events
    assert replayed(events) == (production(client, model), aliases(client, model)), events
    doctor = cli("doctor", "--model", model)
    assert doctor.code == 0, doctor.out + doctor.err
    return events


def target(argv: list[str]) -> int:
    """The version that `stage --version N`, `rollback --to N` or a lock ticket's command names."""
    if argv[0] == "rollback":
        return int(argv[argv.index("--to") + 1])
    return int(argv[argv.index("--version") + 1]) if "--version" in argv else int(argv[1])


# ---------------------------------------------------------------------------------------------------
# 1. A storm: every client waits its turn, several leases long, and none loses its ticket meanwhile.

CLIENTS = 6
STORM_LEASE = 3  # LOCK_LEASE of the storm: renewals are late by over a second on a loaded machine
# Each request to the server takes this much longer, as from a client a few network hops away: the
# holds last about a second, so the last clients wait several leases (on a fast machine too), and
# the waiters' polls load the single-worker test server less.
LATENCY = 0.1


def test_a_storm_of_rollbacks_and_forced_promotions_waits_its_turn_past_the_lease(
    server: Any,
    env: dict[str, str],
    cli: Any,
    client: Any,
    model: str,
    make_versions: Any,
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first, *targets = make_versions(CLIENTS + 1)
    monkeypatch.setenv("REGISTRY_GATES", "false")
    assert (
        cli("stage", "--model", model, "--version", first, "--stage", "Production", "--alias", "prod").code
        == 0
    )
    setup = history(cli, model)
    forced = ["--stage", "Production", "--alias", "prod", "--force", "--reason", "storm"]
    commands = [
        ["rollback", "--model", model, "--to", str(n)]
        if i % 2
        else ["stage", "--model", model, "--version", str(n), *forced]
        for i, n in enumerate(targets)
    ]
    with StallProxy(server.url, delay=LATENCY) as proxy:
        storm_env = {
            **env,
            "MLFLOW_TRACKING_URI": proxy.url,
            "LOCK_LEASE": str(STORM_LEASE),
            "LOCK_TIMEOUT": "60",
        }
        outcomes = race(storm_env, commands, tmp_path)
    assert [(argv, code, err) for argv, code, err in outcomes if code != 0] == []

    held = production(client, model)
    assert len(held) == 1 and held[0] in targets
    assert aliases(client, model) == {"prod": held[0]}
    events = assert_ledger_tells_the_registry_story(cli, client, model)

    # Each command is one ledger version: its move to Production, the archive of the version before
    # (the one the ledger's previous move made Production), and prod; none missing, none twice.
    assert events[: len(setup)] == setup
    storm = events[len(setup) :]
    seqs = sorted({e["seq"] for e in storm})
    moves = [(e["action"], e["version"]) for e in storm if e["action"] in MOVES]
    assert len(seqs) == CLIENTS and sorted(moves) == sorted((argv[0], target(argv)) for argv in commands)
    before = first
    for seq, (action, number) in zip(seqs, moves, strict=True):
        changes = [
            (e["action"], e["version"], e["from"], e["to"], e["alias"]) for e in storm if e["seq"] == seq
        ]
        assert sorted(changes, key=str) == sorted(
            [
                (action, number, "None", "Production", None),
                ("archive", before, "Production", "Archived", None),
                ("alias", number, str(before), str(number), "prod"),
            ],
            key=str,
        )
        before = number
    assert before == held[0]

    # The queue served the tickets in number order (none expired: a waiter whose ticket expires exits
    # 5), each was released, and the last ones waited for their turn (from ticket taken to ledger
    # version written, both by the server's clock) several leases.
    tickets = {
        target(t.tags["command"].split()): t
        for t in client.search_model_versions(f"name='{model}.lock'")
        if t.tags["command"] != f"stage {first} Production"
    }
    assert sorted(tickets) == sorted(targets)
    assert [number for _, number in moves] == sorted(tickets, key=lambda n: int(tickets[n].version))
    assert {t.tags["state"] for t in tickets.values()} == {"released"}
    waits = [
        client.get_model_version(f"{model}.ledger", str(seq)).creation_timestamp / 1000
        - tickets[number].creation_timestamp / 1000
        for seq, (_, number) in zip(seqs, moves, strict=True)
    ]
    assert sum(wait > STORM_LEASE for wait in waits) >= CLIENTS // 2 and max(waits) > 1.5 * STORM_LEASE, waits


# ---------------------------------------------------------------------------------------------------
# 2. A holder frozen past its lease, while a second client promotes another version.

Trigger = Callable[[str, str, bytes], bool]


def in_lock_model_read(method: str, path: str, body: bytes) -> bool:
    return method == "GET" and path == "/registered-models/search"  # the first: inside the lock


def alias_write(method: str, path: str, body: bytes) -> bool:
    return path == "/registered-models/alias"  # the last registry write, before the ledger's


def ledger_write(method: str, path: str, body: bytes) -> bool:
    return path == "/model-versions/create" and b'.ledger"' in body


# how: "stop" stops the client's process (SIGSTOP) as the trigger's answer leaves, as a pause of
# the whole client (GC, swap, suspended VM); "hold" holds its requests from the trigger on, as a
# network that stalls; "hold" with after=False holds the trigger itself, delayed in flight.
FREEZES = [
    pytest.param(in_lock_model_read, True, "hold", False, id="requests-held-after-the-in-lock-model-read"),
    pytest.param(alias_write, True, "stop", False, id="process-stopped-right-before-the-ledger-write"),
    # MLflow has no conditional write: a write delayed in flight past the lease lands after the next
    # holder's change. The frozen client then says so (exit 5, run `doctor`), and `doctor --fix` mends.
    pytest.param(ledger_write, False, "hold", True, id="ledger-write-delayed-in-flight"),
    pytest.param(alias_write, False, "hold", True, id="alias-write-delayed-in-flight"),
]


@pytest.mark.parametrize(("trigger", "after", "how", "lands_late"), FREEZES)
def test_a_holder_frozen_past_its_lease_changes_nothing_after_losing_the_lock(
    trigger: Trigger,
    after: bool,
    how: str,
    lands_late: bool,
    server: Any,
    env: dict[str, str],
    cli: Any,
    client: Any,
    model: str,
    make_versions: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    old, frozen_target, other = make_versions(3)
    for key, value in {"LOCK_LEASE": str(LEASE), "LOCK_TIMEOUT": "30", "REGISTRY_GATES": "false"}.items():
        monkeypatch.setenv(key, value)
    assert (
        cli("stage", "--model", model, "--version", old, "--stage", "Production", "--alias", "prod").code == 0
    )

    process: subprocess.Popen[str] | None = None

    def signal_client(number: int) -> Callable[[], None]:
        def send() -> None:
            if process is not None:
                os.kill(process.pid, number)

        return send

    stop = how == "stop"
    with StallProxy(
        server.url,
        trigger,
        stall=2 * LEASE,
        after=after,
        hold=not stop,
        pause=signal_client(signal.SIGSTOP) if stop else None,
        resume=signal_client(signal.SIGCONT) if stop else None,
    ) as proxy:
        environment = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "MLFLOW_TRACKING_URI": proxy.url,
            "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",  # longer than the stall: the held requests complete
            "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
            "REGISTRY_ACTOR": "frozen",
        }
        argv = ["stage", "--model", model, "--version", str(frozen_target), "--stage", "Production",
                "--alias", "prod"]  # fmt: skip
        process = subprocess.Popen(
            [sys.executable, "-m", "registry", *argv],
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert proxy.frozen.wait(60), proxy.requests
            second = cli(
                "stage", "--model", model, "--version", other, "--stage", "Production", "--alias", "prod"
            )
            proxy.thaw()
            out, err = process.communicate(timeout=60)
        finally:
            proxy.thaw()
            if process.poll() is None:
                os.kill(process.pid, signal.SIGCONT)
                process.kill()
                process.communicate()
    frozen = Outcome(process.returncode, out, err)

    # The freeze hit the holder where meant: after its ticket, inside the lock.
    assert proxy.requests.index("POST /model-versions/create") < proxy.requests.index(
        "GET /registered-models/search"
    )
    # The second client waited for the frozen holder, took the lock when its lease ran out, promoted.
    assert second.code == 0 and "waiting for the registry lock" in second.err, second
    # The frozen client says, in one line, that it lost the lock; it changed nothing after losing it.
    assert frozen.code in (3, 5), frozen
    assert frozen.err.startswith("error: ") and frozen.err.count("\n") == 1, frozen.err
    if lands_late:
        assert frozen.code == 5 and "may have landed after another client's change" in frozen.err, frozen
        assert cli("doctor", "--model", model).code == 6
        mended = cli("doctor", "--model", model, "--fix")
        assert mended.code == 0, mended.out + mended.err
        assert production(client, model) == [other] and aliases(client, model) == {"prod": other}
        assert cli("doctor", "--model", model).code == 0
        return
    assert production(client, model) == [other]
    assert aliases(client, model) == {"prod": other}
    events = assert_ledger_tells_the_registry_story(cli, client, model)
    # Nothing in the ledger comes from the frozen client: it recorded no change that did not happen.
    assert [e for e in events if e["actor"] == "frozen"] == []
