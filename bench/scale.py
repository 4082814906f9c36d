"""What scaling out buys: the scale-out Compose stack (compose.scale.yaml) beside the single-server one.

    python bench/scale.py            # both stacks up (throwaway projects, free ports), figures, both down
    python bench/scale.py --quick    # fewer repeats and clients

Needs a container engine (here: eval "$(../shared/container-engine/up.sh)"); each stack is brought up
and down through `invoke up` / `invoke down --volumes`, as a user does. Figures:

1. latency of `versions` (N = 100) and of two mutations (an alias move, a stage move), the CLI run
   in-process on this machine against each stack's published port, timed round-robin;
2. throughput of C concurrent clients moving aliases and stages (each its own, so they meet only at
   the registry lock), through the balancer with 1 and with 2 tracking servers, lock on and off.
Versions are made from "fake:/model" (nothing trained), so no gate applies to these commands.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tabulate import tabulate  # noqa: E402

from bench.run import cli_main, compare, create_versions, med, ms  # noqa: E402
from bench.server import QUIET_ENV, free_port  # noqa: E402

UP_TIMEOUT = 1800  # a first `invoke up` builds the images
SINGLE = "compose.yaml"
SCALE = "compose.yaml:compose.scale.yaml"
CONTEXT = multiprocessing.get_context("forkserver")
CONTEXT.set_forkserver_preload(["mlflow", "mlflow.tracking", "registry.cli", "registry.client"])


class Stack:
    """One throwaway Compose project brought up with `invoke up` on a free port."""

    def __init__(self, compose_file: str, servers: int = 1) -> None:
        self.env = {
            **os.environ,
            **QUIET_ENV,
            "REGISTRY_RUNNER": "compose",
            "COMPOSE_FILE": compose_file,
            "COMPOSE_PROJECT_NAME": f"registrybench{uuid.uuid4().hex[:8]}",
            "MLFLOW_PORT": str(free_port()),
            "MLFLOW_SERVERS": str(servers),
        }
        self.env.pop("MLFLOW_TRACKING_URI", None)
        self.url = f"http://127.0.0.1:{self.env['MLFLOW_PORT']}"

    def invoke(self, *words: str) -> None:
        done = subprocess.run(
            [sys.executable, "-m", "invoke", *words],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=UP_TIMEOUT,
        )
        if done.returncode != 0:
            raise RuntimeError(f"invoke {' '.join(words)} exited {done.returncode}: {done.stderr[-2000:]}")

    def scale(self, servers: int) -> None:
        """`invoke up` again with MLFLOW_SERVERS=`servers` (it adds or removes tracking servers)."""
        if self.env["MLFLOW_SERVERS"] != str(servers):
            self.env["MLFLOW_SERVERS"] = str(servers)
            self.invoke("up", "--quiet")
            time.sleep(20)  # the balancer finds a new server once it answers /health, drops a gone one


@contextmanager
def running(stack: Stack) -> Iterator[Stack]:
    try:
        stack.invoke("up", "--quiet")
        yield stack
    finally:
        stack.invoke("down", "--volumes")


def toggles(url: str, model: str) -> tuple[Callable[[], int], Callable[[], int]]:
    """An alias move and a stage move that change something on every call (they alternate)."""
    state = {"alias": 0, "stage": 0}

    def alias() -> int:
        state["alias"] += 1
        version = 1 + state["alias"] % 2
        return cli_main(url, "alias", "--model", model, "--name", "champion", "--version", version)

    def stage() -> int:
        state["stage"] += 1
        target = "Staging" if state["stage"] % 2 else "None"
        return cli_main(url, "stage", "--model", model, "--version", 3, "--stage", target)

    return alias, stage


def latency(stacks: dict[str, Stack], repeat: int) -> str:
    cases: dict[str, Callable[[], Any]] = {}
    for label, stack in stacks.items():
        model = f"bench_scale_{uuid.uuid4().hex[:6]}"
        create_versions(stack.url, model, 100)
        alias, stage = toggles(stack.url, model)
        cases[f"{label}|versions"] = lambda url=stack.url, m=model: cli_main(url, "versions", "--model", m)
        cases[f"{label}|alias move"] = alias
        cases[f"{label}|stage move"] = stage
    samples = compare(cases, repeat)
    rows = []
    for what in ("versions", "alias move", "stage move"):
        single, scaled = (samples[f"{label}|{what}"] for label in stacks)
        rows.append([what, ms(single), ms(scaled), f"{med(scaled) / med(single):.2f}×"])
    labels = list(stacks)
    return tabulate(rows, headers=["command (N = 100)", f"{labels[0]} ms", f"{labels[1]} ms", "ratio"])


def _client(barrier: Any, results: Any, url: str, model: str, index: int, commands: int, lock: str) -> None:
    os.environ.update({**QUIET_ENV, "REGISTRY_LOCK": lock, "REGISTRY_ACTOR": f"bench{index}"})
    failures = 0
    barrier.wait(timeout=120)
    began = time.time()
    for k in range(commands):
        if index % 2:  # its own version into Staging (archiving nothing) and out again
            words = ["stage", "--model", model, "--version", 10 + index, "--stage", "None"]
            if k % 2 == 0:
                words[-1:] = ["Staging", "--no-archive"]
        else:  # its own alias between two versions
            words = ["alias", "--model", model, "--name", f"c{index}", "--version", 1 + k % 2]
        failures += cli_main(url, *words) != 0
    results.put((began, time.time(), failures))


def throughput(url: str, clients: int, commands: int, lock: bool) -> tuple[float, int]:
    """Commands per second of `clients` processes released together, and how many failed."""
    model = f"bench_tp_{uuid.uuid4().hex[:6]}"
    create_versions(url, model, 10 + clients)
    barrier, results = CONTEXT.Barrier(clients), CONTEXT.Queue()
    flag = "true" if lock else "false"
    processes = [
        CONTEXT.Process(target=_client, args=(barrier, results, url, model, i, commands, flag))
        for i in range(clients)
    ]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=1800) for _ in processes]
    for process in processes:
        process.join(timeout=60)
    began, ended = min(o[0] for o in outcomes), max(o[1] for o in outcomes)
    return clients * commands / (ended - began), sum(o[2] for o in outcomes)


def throughput_table(stack: Stack, clients: int, commands: int) -> str:
    rows = []
    for servers in (2, 1):
        stack.scale(servers)
        for lock in (True, False):
            rate, failed = throughput(stack.url, clients, commands, lock)
            rows.append([servers, "on" if lock else "off", f"{rate:.2f}", failed])
    return tabulate(rows, headers=["tracking servers", "REGISTRY_LOCK", "commands / s", "failed"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats and clients")
    args = parser.parse_args(argv)
    if not (shutil.which("docker") or shutil.which("docker-compose")):
        parser.error('no container engine (here: eval "$(../shared/container-engine/up.sh)")')
    repeat, clients, commands = (3, 4, 4) if args.quick else (7, 8, 6)
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="registry-bench-") as tmp:
        os.chdir(tmp)  # the CLI measured here reads no .env of the repository
        with running(Stack(SINGLE)) as single, running(Stack(SCALE, servers=2)) as scaled:
            stacks = {"single server (SQLite)": single, "scale-out, 2 servers": scaled}
            print(f"\n## Latency: median [min-max] of {repeat}, round-robin\n", flush=True)
            print(latency(stacks, repeat), flush=True)
            print(f"\n## Throughput: {clients} clients x {commands} commands, through the balancer\n")
            print(throughput_table(scaled, clients, commands), flush=True)
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"\nwhole run {time.perf_counter() - began:.0f} s; load average at the end {load} "
          f"({os.cpu_count()} cores)")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
