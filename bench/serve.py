"""Benchmark of `serve`: throughput and latency beside `mlflow models serve` on the same model, and how
soon it follows an alias move, with and without events.

    python bench/serve.py                 # 3 rounds of 5 s per server, 10 alias moves per mode
    python bench/serve.py --seconds 10 --rounds 5 --connections 8 --out serve.md

Starts its own `mlflow server` on 127.0.0.1 (bench/server.py: the local server's command and webhook
settings), registers one small Iris model twice, and points `prod` at the first version. Throughput:
`mlflow models serve -m models:/M@prod --env-manager local` and `python -m registry serve` (the same
`--workers`, 1) get the same client, `--connections` keep-alive connections sending MLflow's
`dataframe_split` of 5 rows as fast as they are answered, in alternating rounds (so both see the same
machine load). Switch latency: the alias is moved with MLflow's client and one connection asks the
server until an answer names the new version, for `serve` with events (SERVE_HOOK_URL) and without
(polling every SERVE_POLL_SECONDS, 2 s); moves come 0.2-2.2 s apart, at random phases of the poll.
Only 127.0.0.1; MLflow telemetry is off in every process started here.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import platform
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

os.environ.update({"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"})

from tabulate import tabulate  # noqa: E402

from bench.server import QUIET_ENV, MlflowServer, free_port  # noqa: E402

MODEL = "bench_serve"
START_TIMEOUT = 180.0
IRIS = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]
ROWS = [
    [5.1, 3.5, 1.4, 0.2],
    [4.9, 3.0, 1.4, 0.2],
    [6.7, 3.0, 5.2, 2.3],
    [5.9, 3.0, 5.1, 1.8],
    [6.0, 2.2, 4.0, 1.0],
]
BODY = json.dumps({"dataframe_split": {"columns": IRIS, "data": ROWS}}).encode()
HEADERS = {"Content-Type": "application/json"}


def register(url: str) -> None:
    """Two versions of one logged Iris model, `prod` on version 1."""
    import mlflow
    from mlflow import MlflowClient
    from mlflow.models import infer_signature
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    from registry.train import pip_requirements

    features, target = load_iris(return_X_y=True, as_frame=True)
    classifier = LogisticRegression(max_iter=200).fit(features, target)
    mlflow.set_tracking_uri(url)
    mlflow.set_experiment("bench-serve")
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(
            classifier,
            name="model",
            signature=infer_signature(features, classifier.predict(features)),
            input_example=features.head(5),
            pip_requirements=pip_requirements(),
        )
    client = MlflowClient(url, registry_uri=url)
    client.create_registered_model(MODEL)
    for _ in range(2):
        client.create_model_version(MODEL, info.model_uri, model_id=info.model_id)
    client.set_registered_model_alias(MODEL, "prod", "1")


@contextlib.contextmanager
def process(argv: list[str], env: dict[str, str], log: Path, port: int) -> Iterator[str]:
    """A server process on 127.0.0.1:`port`, once /ping answers 200; stopped (its group) at the end."""
    url = f"http://127.0.0.1:{port}"
    with open(log, "ab") as out:
        child = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not _ping(url):
            if child.poll() is not None or time.monotonic() > deadline:
                tail = log.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"{' '.join(argv[:6])} did not start:\n{tail}")
            time.sleep(0.2)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGTERM)
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()


def _ping(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/ping", timeout=2) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


def load(url: str, seconds: float, connections: int) -> tuple[int, list[float], int]:
    """(answered, latencies in s, failed) of `connections` keep-alive clients sending for `seconds`."""
    host, port = url.removeprefix("http://").split(":")
    latencies: list[list[float]] = [[] for _ in range(connections)]
    failed = [0] * connections
    stop_at = time.perf_counter() + seconds

    def client(index: int) -> None:
        connection = http.client.HTTPConnection(host, int(port), timeout=30)
        while (start := time.perf_counter()) < stop_at:
            connection.request("POST", "/invocations", body=BODY, headers=HEADERS)
            answer = connection.getresponse()
            answer.read()
            latencies[index].append(time.perf_counter() - start)
            failed[index] += answer.status != 200
        connection.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    flat = [latency for group in latencies for latency in group]
    return len(flat), flat, sum(failed)


def throughput(servers: dict[str, str], seconds: float, rounds: int, connections: int) -> list[list[str]]:
    """One row per server: requests/s, p50, p99, failures; rounds alternate between the servers."""
    for url in servers.values():
        load(url, 1.0, connections)  # warm up
    totals: dict[str, tuple[int, list[float], int]] = {label: (0, [], 0) for label in servers}
    for round_number in range(rounds):
        order = list(servers) if round_number % 2 == 0 else list(reversed(servers))
        for label in order:
            count, latencies, failed = load(servers[label], seconds, connections)
            done, all_latencies, all_failed = totals[label]
            totals[label] = (done + count, all_latencies + latencies, all_failed + failed)
    rows = []
    baseline = None
    for label, (count, latencies, failed) in totals.items():
        rate = count / (seconds * rounds)
        baseline = baseline or rate
        cuts = statistics.quantiles(latencies, n=100)
        rows.append([label, f"{rate:,.0f}", f"{rate / baseline:.2f}×", f"{cuts[49] * 1000:.1f}",
                     f"{cuts[98] * 1000:.1f}", str(failed)])  # fmt: skip
    return rows


def switches(url: str, client: Any, times: int, quiet_between: tuple[float, float]) -> list[float]:
    """Seconds from each alias move (set_registered_model_alias returning) to the first answer from the
    new version, asking as fast as answers come."""
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    found = []
    for number in range(times):
        target = "2" if number % 2 == 0 else "1"
        time.sleep(random.uniform(*quiet_between))  # at a random phase of the poll
        client.set_registered_model_alias(MODEL, "prod", target)
        moved = time.perf_counter()
        while True:
            connection.request("POST", "/invocations", body=BODY, headers=HEADERS)
            answer = connection.getresponse()
            answer.read()
            if answer.getheader("X-Model-Version") == target:
                found.append(time.perf_counter() - moved)
                break
            if time.perf_counter() - moved > 60:
                raise RuntimeError(f"{url} did not switch to version {target} within 60 s")
    connection.close()
    client.set_registered_model_alias(MODEL, "prod", "1")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/serve.py", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="seconds per round and server (5)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per server (3)")
    parser.add_argument("--connections", type=int, default=4, help="concurrent keep-alive clients (4)")
    parser.add_argument("--switches", type=int, default=10, help="alias moves per mode (10)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes of each server (1)")
    parser.add_argument("--out", type=Path, help="also write the tables to this Markdown file")
    args = parser.parse_args(argv)

    from mlflow import MlflowClient

    with (
        tempfile.TemporaryDirectory(prefix="bench-serve-") as folder,
        MlflowServer(Path(folder), 1) as mlflow,
    ):
        home = Path(folder)
        register(mlflow.url)
        env = {**os.environ, **QUIET_ENV, "PYTHONPATH": str(ROOT), "MLFLOW_TRACKING_URI": mlflow.url}
        # `mlflow models serve` runs `uvicorn` from PATH: this interpreter's
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        theirs_port, ours_port, polling_port = free_port(), free_port(), free_port()
        workers = str(args.workers)
        theirs = [sys.executable, "-m", "mlflow", "models", "serve", "-m", f"models:/{MODEL}@prod",
                  "--env-manager", "local", "-h", "127.0.0.1", "-w", workers]  # fmt: skip
        theirs += ["-p", str(theirs_port)]
        ours = [sys.executable, "-m", "registry", "serve", "--model", MODEL, "--workers", workers, "--port"]
        events_env = {**env, "SERVE_HOOK_URL": f"http://127.0.0.1:{ours_port}/hooks"}
        with (
            process(theirs, env, home / "models-serve.log", theirs_port) as theirs_url,
            process([*ours, str(ours_port)], events_env, home / "serve.log", ours_port) as ours_url,
        ):
            rows = throughput(
                {"mlflow models serve": theirs_url, "registry serve": ours_url},
                args.seconds,
                args.rounds,
                args.connections,
            )
            client = MlflowClient(mlflow.url, registry_uri=mlflow.url)
            with_events = switches(ours_url, client, args.switches, (0.2, 2.2))
        with process(
            [*ours, str(polling_port)], env, home / "serve-polling.log", polling_port
        ) as polling_url:
            without_events = switches(polling_url, client, args.switches, (0.2, 2.2))

    tables = [
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"{args.connections} keep-alive connections, {args.rounds} rounds of {args.seconds:g} s per server, "
        f"{args.workers} worker(s) each, `dataframe_split` of {len(ROWS)} rows.",
        tabulate(
            rows, ["server", "requests/s", "vs mlflow", "p50 ms", "p99 ms", "failed"], tablefmt="github"
        ),
        tabulate(
            [
                ["registry serve, events", *_spread(with_events)],
                ["registry serve, polling every 2 s", *_spread(without_events)],
                ["mlflow models serve", "never (resolves the alias once, at start)", "", ""],
            ],
            ["alias moved → first answer from the new version", "median s", "min s", "max s"],
            tablefmt="github",
        ),
    ]
    text = "\n\n".join(tables)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


def _spread(samples: list[float]) -> list[str]:
    return [f"{statistics.median(samples):.2f}", f"{min(samples):.2f}", f"{max(samples):.2f}"]


if __name__ == "__main__":
    raise SystemExit(main())
