"""Racing clients: one Production always, aliases without failures, no version lost or doubled.

Clients are forked from a fork server that has already imported mlflow, then released together
from a barrier, so each trial costs requests, not imports. Everything talks to 127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
import io
import multiprocessing
import os
from typing import Any

import pytest

from tests.conftest import aliases, history, prod_alias, roles, stages

pytestmark = pytest.mark.postgres

CLIENTS = 8
CONTEXT = multiprocessing.get_context("forkserver")
CONTEXT.set_forkserver_preload(["mlflow", "mlflow.tracking", "registry.cli", "registry.client"])


def _client(barrier: Any, results: Any, argv: list[str], env: dict[str, str]) -> None:
    os.environ.update(env)
    os.chdir(env["RACE_CWD"])
    from registry.cli import main

    barrier.wait(timeout=60)
    errors = io.StringIO()
    with contextlib.redirect_stderr(errors), contextlib.redirect_stdout(io.StringIO()):
        code = main(argv)
    results.put((argv, code, errors.getvalue()))


def race(
    env: dict[str, str], commands: list[list[str]], tmp_path: Any, gates: bool = False
) -> list[tuple[list[str], int, str]]:
    """Run `commands` at the same moment, one process each; returns (argv, exit code, stderr).

    The Production gates load each candidate (seconds of CPU per client); they are off unless asked,
    since these tests are about the lock, and `test_racing_gated_promotions...` runs them once.
    """
    barrier = CONTEXT.Barrier(len(commands))
    results = CONTEXT.Queue()
    child_env = {**env, "RACE_CWD": str(tmp_path), "REGISTRY_GATES": str(gates).lower()}
    processes = [
        CONTEXT.Process(target=_client, args=(barrier, results, argv, child_env)) for argv in commands
    ]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=240) for _ in processes]
    for process in processes:
        process.join(timeout=60)
    return outcomes


def production(client: Any, model: str) -> list[int]:
    return [number for number, stage in stages(client, model).items() if stage == "Production"]


@pytest.mark.parametrize(
    ("trial", "gates", "lifecycle"),
    [
        *((n, False, "stages") for n in range(20)),
        (20, True, "stages"),
        *((n, False, "aliases") for n in range(3)),
    ],
    indirect=["lifecycle"],
)
def test_racing_promotions_leave_exactly_one_production_version(
    trial: int,
    gates: bool,
    lifecycle: str,
    env: dict[str, str],
    client: Any,
    model: str,
    make_versions: Any,
    cli: Any,
    tmp_path: Any,
) -> None:
    """With LIFECYCLE=aliases: exactly one champion, and the ledger names it last."""
    prod = prod_alias(lifecycle)
    numbers = make_versions(CLIENTS)
    commands = [
        ["stage", "--model", model, "--version", str(n), "--stage", "Production", "--alias", prod]
        for n in numbers
    ]
    outcomes = race(env, commands, tmp_path, gates)
    assert [code for _, code, _ in outcomes] == [0] * CLIENTS, outcomes
    held = [number for number, role in roles(client, model, lifecycle).items() if role == "Production"]
    assert len(held) == 1 and held[0] in numbers
    assert aliases(client, model) == {prod: held[0]}
    events = history(cli, model)
    promoted = [e["version"] for e in events if e["action"] == "stage" and e["to"] == "Production"]
    assert sorted(promoted) == sorted(numbers) and promoted[-1] == held[0]
    archived = [e["version"] for e in events if e["action"] == "archive"]
    assert sorted(archived) == sorted(promoted[:-1])
    assert [e["to"] for e in events if e["action"] == "alias"][-1] == str(held[0])


@pytest.mark.parametrize("trial", range(5))
def test_racing_rollbacks_leave_exactly_one_production_version(
    trial: int, env: dict[str, str], client: Any, model: str, make_versions: Any, cli: Any, tmp_path: Any
) -> None:
    numbers = make_versions(CLIENTS)
    assert cli("stage", "--model", model, "--version", numbers[-1], "--stage", "Production").code == 0
    outcomes = race(env, [["rollback", "--model", model, "--to", str(n)] for n in numbers], tmp_path)
    assert [code for _, code, _ in outcomes] == [0] * CLIENTS, outcomes
    held = production(client, model)
    assert len(held) == 1 and held[0] in numbers
    assert aliases(client, model) == {"prod": held[0]}


@pytest.mark.parametrize("trial", range(5))
def test_racing_clients_setting_one_new_alias_all_succeed(
    trial: int, env: dict[str, str], client: Any, model: str, make_versions: Any, tmp_path: Any
) -> None:
    numbers = make_versions(CLIENTS)
    outcomes = race(
        env,
        [["alias", "--model", model, "--name", "champion", "--version", str(n)] for n in numbers],
        tmp_path,
    )
    assert [(code, err) for _, code, err in outcomes if code != 0] == []
    assert aliases(client, model)["champion"] in numbers


def _register(barrier: Any, results: Any, env: dict[str, str], model: str, count: int) -> None:
    os.environ.update(env)
    from registry.client import Registry
    from registry.config import load_settings

    registry = Registry(load_settings(env_file=None))
    barrier.wait(timeout=60)
    results.put([registry.register_once(model, "fake:/model", None, {}).number for _ in range(count)])


def test_sixty_four_concurrent_registrations_give_versions_one_to_sixty_four(
    env: dict[str, str], client: Any, model: str
) -> None:
    client.create_registered_model(model)
    barrier = CONTEXT.Barrier(CLIENTS)
    results = CONTEXT.Queue()
    processes = [
        CONTEXT.Process(target=_register, args=(barrier, results, env, model, 8)) for _ in range(CLIENTS)
    ]
    for process in processes:
        process.start()
    numbers = sorted(n for _ in processes for n in results.get(timeout=240))
    for process in processes:
        process.join(timeout=60)
    assert numbers == list(range(1, 65))
    assert sorted(stages(client, model)) == list(range(1, 65))
