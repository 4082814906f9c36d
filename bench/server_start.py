"""Benchmark of starting an `mlflow server` with and without MLflow's job runner.

    python bench/server_start.py              # 3 starts each, alternating
    python bench/server_start.py --rounds 5 --settle 30

Starts the local server's command (bench/server.py, registry.localserver.server_command: SQLite, one
worker) with MLFLOW_SERVER_ENABLE_JOB_EXECUTION=true (MLflow's default) and false (this project's), in
alternating order so that both see the same machine load. For each start it prints the seconds until
/health answers, then, `--settle` seconds later, the processes in the server's process group, their
CPU seconds and their resident memory. Only 127.0.0.1; MLflow telemetry is off.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.server import MlflowServer


def group_usage(group: int) -> tuple[int, float, float]:
    """(processes, CPU seconds, resident MB) of process group `group`."""
    listing = subprocess.run(
        ["ps", "-eo", "pgid=,cputimes=,rss="], capture_output=True, text=True, check=True
    )
    rows = [line.split() for line in listing.stdout.splitlines()]
    mine = [(int(cpu), int(rss)) for pgid, cpu, rss in rows if int(pgid) == group]
    return len(mine), float(sum(cpu for cpu, _ in mine)), sum(rss for _, rss in mine) / 1024


def start_once(jobs: bool, settle: float) -> tuple[float, int, float, float]:
    """(seconds to /health, processes, CPU seconds, resident MB) of one server start."""
    os.environ["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = str(jobs).lower()
    with tempfile.TemporaryDirectory(prefix="server-start-") as home:
        server = MlflowServer(Path(home), workers=1)
        started = time.monotonic()
        server.start()
        try:
            up = time.monotonic() - started
            time.sleep(settle)
            assert server.process is not None
            return (up, *group_usage(server.process.pid))
        finally:
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="starts with and without the job runner")
    parser.add_argument("--settle", type=float, default=30.0, help="seconds after /health before counting")
    args = parser.parse_args()
    results: dict[bool, list[tuple[float, int, float, float]]] = {True: [], False: []}
    for round_ in range(args.rounds):
        for jobs in (True, False) if round_ % 2 == 0 else (False, True):
            results[jobs].append(start_once(jobs, args.settle))
            up, processes, cpu, memory = results[jobs][-1]
            print(f"job runner {'on ' if jobs else 'off'}: /health after {up:5.1f} s, {processes} processes, "
                  f"{cpu:4.0f} s CPU, {memory:5.0f} MB", flush=True)  # fmt: skip
    print("\n| job runner | /health (median s) | processes | CPU s | resident MB |")
    print("| --- | --- | --- | --- | --- |")
    for jobs in (True, False):
        rows = results[jobs]
        medians = [statistics.median(row[i] for row in rows) for i in range(4)]
        label = "on (MLflow's default)" if jobs else "off (this project's servers)"
        print(f"| {label} | {medians[0]:.1f} | {medians[1]:.0f} | {medians[2]:.0f} | {medians[3]:.0f} |")


if __name__ == "__main__":
    main()
