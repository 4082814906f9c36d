"""Benchmark of the registry tool against a real local MLflow server: one table per section.

    python bench/run.py            # full run (N = 10, 100, 1000, 3000; 10,000 ledger events)
    python bench/run.py --quick    # smaller and fewer repeats
    invoke bench [--quick]

Sections: startup (import cost of the CLI and tasks.py), versions (requests and time at each N, the
naive per-version alias method beside ours, the raw REST floor), mutations (requests per command with
their breakdown), history (a 10,000-event ledger), train (end to end vs a tutorial script) and
workers (the local server with --workers 1 vs MLflow's default 4). Each ratio is measured side by
side in one run. SQLite always; PostgreSQL too when REGISTRY_TEST_POSTGRES_URI is set. Only
127.0.0.1; MLflow telemetry is off in every process started here.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

os.environ.update({"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"})

from tabulate import tabulate  # noqa: E402

from bench.proxy import CountingProxy  # noqa: E402
from bench.server import QUIET_ENV, MlflowServer, PostgresDatabase  # noqa: E402

API = "/api/2.0/mlflow"
SECTIONS = ("startup", "versions", "mutations", "history", "train", "workers")
IN_PROCESS_RUNS = 3  # `versions` in-process runs per repeat: cheap, and more runs steady their medians
COMMAND_TIMEOUT = 600
CREATE_THREADS = 8
Samples = list[float]


# ---------------------------------------------------------------- measuring


def timed(fn: Callable[[], Any], repeat: int, warmup: int = 0) -> Samples:
    """Seconds of `repeat` calls of `fn` after `warmup` untimed ones."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return samples


def compare(cases: dict[str, Callable[[], Any]], repeat: int, warmup: int = 1) -> dict[str, Samples]:
    """Time every case `repeat` times, round-robin, so that all see the same machine load; each
    round in a new (seeded) order, as the server's slow requests come in a rhythm (at N = 3,000
    every other large search pays a full garbage collection in the server) that a fixed order
    would hand to one case."""
    for _ in range(warmup):
        for fn in cases.values():
            fn()
    samples: dict[str, Samples] = {label: [] for label in cases}
    order = random.Random(0)
    for _ in range(repeat):
        for label in order.sample(list(cases), len(cases)):
            fn = cases[label]
            start = time.perf_counter()
            fn()
            samples[label].append(time.perf_counter() - start)
    return samples


def med(samples: Samples) -> float:
    return statistics.median(samples)


def ms(samples: Samples) -> str:
    """`median ms [min-max]` of `samples`."""
    if not samples:
        return "-"
    low, high = min(samples) * 1000, max(samples) * 1000
    if len(samples) == 1:
        return f"{med(samples) * 1000:,.0f} (1 run)"
    return f"{med(samples) * 1000:,.0f} [{low:,.0f}–{high:,.0f}]"


def ratio(a: Samples, b: Samples) -> float:
    return med(a) / med(b)


def verdict(value: float, limit: float) -> str:
    return f"{value:.2f}× {'ok' if value <= limit else 'OVER'} (≤ {limit}×)"


def cli_env(url: str | None = None) -> dict[str, str]:
    env = {**os.environ, **QUIET_ENV, "PYTHONPATH": str(ROOT), "REGISTRY_ACTOR": "bench"}
    env["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
    if url:
        env["MLFLOW_TRACKING_URI"] = url
    return env


def run(argv: list[str], cwd: Path, env: dict[str, str], ok: tuple[int, ...] = (0,)) -> str:
    done = subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=COMMAND_TIMEOUT, check=False
    )
    if done.returncode not in ok:
        raise RuntimeError(f"{' '.join(argv)} exited {done.returncode}: {done.stderr.strip()[-2000:]}")
    return done.stdout + done.stderr


def command(argv: list[str], cwd: Path, env: dict[str, str], ok: tuple[int, ...] = (0,)) -> Callable[[], str]:
    return lambda: run(argv, cwd, env, ok)


IMPORT_CLIENT = [sys.executable, "-c", "from mlflow import MlflowClient"]


def imports_of(argv_after_python: list[str], cwd: Path, env: dict[str, str], ok: tuple[int, ...]) -> str:
    """Which heavy packages `python -X importtime ARGS` imports (mlflow, sklearn), or `none`."""
    out = run([sys.executable, "-X", "importtime", *argv_after_python], cwd, env, ok)
    modules = {line.rsplit("|", 1)[1].strip().split(".")[0] for line in out.splitlines() if "|" in line}
    return ", ".join(name for name in ("mlflow", "sklearn") if name in modules) or "none"


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        yield


def cli_main(url: str, *words: Any) -> int:
    """The CLI in-process (as `python -m registry WORDS --tracking-uri URL`), output swallowed."""
    from registry.cli import main

    with quiet():
        return main([*map(str, words), "--tracking-uri", url])


def registry_for(url: str) -> Any:
    from registry.client import Registry
    from registry.config import load_settings, with_tracking_uri

    settings = load_settings({"REGISTRY_ACTOR": "bench", "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"}, None)
    return Registry(with_tracking_uri(settings, url))


# ---------------------------------------------------------------- data


def create_versions(
    url: str, model: str, count: int, tags: Callable[[int], dict[str, str]] | None = None
) -> None:
    """`count` versions of `model` (created if missing), in threads: the one POST that
    MlflowClient.create_model_version(model, "fake:/model", tags=...) sends, nothing trained."""
    import requests

    local = threading.local()

    def session() -> requests.Session:
        if not hasattr(local, "session"):
            local.session = requests.Session()
        return local.session

    answer = session().post(f"{url}{API}/registered-models/create", json={"name": model}, timeout=60)
    if answer.status_code != 200 and "RESOURCE_ALREADY_EXISTS" not in answer.text:
        raise RuntimeError(f"cannot create {model}: {answer.text[:300]}")

    def one(i: int) -> None:
        body: dict[str, Any] = {"name": model, "source": "fake:/model"}
        if tags is not None:
            body["tags"] = [{"key": k, "value": v} for k, v in tags(i).items()]
        for _attempt in range(5):
            reply = session().post(f"{url}{API}/model-versions/create", json=body, timeout=60)
            if reply.status_code == 200:
                return
            time.sleep(0.2)
        raise RuntimeError(f"create_model_version failed: {reply.status_code} {reply.text[:300]}")

    with ThreadPoolExecutor(CREATE_THREADS) as pool:
        list(pool.map(one, range(count)))


def set_aliases(url: str, model: str, count: int) -> dict[str, int]:
    from mlflow import MlflowClient

    client = MlflowClient(url, registry_uri=url)
    wanted = {"prod": count, "champion": max(1, count - 1), "candidate": 1, "shadow": max(1, count // 2)}
    for name, number in wanted.items():
        client.set_registered_model_alias(model, name, str(number))
    return wanted


def event_tags(i: int) -> dict[str, str]:
    """The tag `registry.ledger.record` writes for a command of one change (one ledger version)."""
    from registry.ledger import Change
    from registry.ledger import event_tags as ledger_event_tags

    change = Change(("stage", "archive", "alias")[i % 3], i % 50 + 1, "Staging", "Production",
                    "prod" if i % 3 == 2 else None)  # fmt: skip
    return ledger_event_tags("bench", "bench_hist", [change], f"bench event {i}", "ok")[0]


# ---------------------------------------------------------------- sections


def machine(backends: list[str]) -> list[list[str]]:
    from importlib.metadata import version

    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    return [
        ["cores (nproc)", str(os.cpu_count())],
        ["CPU", cpu],
        ["load average 1/5/15 min at start", load],
        ["OS", platform.platform()],
        ["python", platform.python_version()],
        ["mlflow", version("mlflow")],
        ["scikit-learn", version("scikit-learn")],
        ["invoke", version("invoke")],
        ["server backends", ", ".join(backends)],
    ]


def startup(work: Path, repeat: int) -> str:
    env = cli_env("http://127.0.0.1:9")  # nothing listens: input errors must not get that far
    empty = work / "empty-tasks"
    empty.mkdir(exist_ok=True)
    (empty / "tasks.py").write_text("")
    registry = ["-m", "registry"]
    cases: list[tuple[str, list[str], Path, tuple[int, ...]]] = [
        ("python -c pass", ["-c", "pass"], work, (0,)),
        ('python -c "from mlflow import MlflowClient"', IMPORT_CLIENT[1:], work, (0,)),
        ("invoke --list (empty tasks.py)", ["-m", "invoke", "--list"], empty, (0, 1)),
        ("invoke --list (this tasks.py)", ["-m", "invoke", "--list"], ROOT, (0,)),
        ("python -m registry --help", [*registry, "--help"], work, (0,)),
        ("input error: stage --stage Prod", [*registry, "stage", "--version", "1", "--stage", "Prod"], work,
         (2,)),
        ("input error: versions --limit 0", [*registry, "versions", "--limit", "0"], work, (2,)),
        ("input error: alias --name latest", [*registry, "alias", "--name", "latest", "--version", "1"], work,
         (2,)),
    ]  # fmt: skip
    py = sys.executable
    samples = compare({label: command([py, *words], cwd, env, ok) for label, words, cwd, ok in cases}, repeat)
    heavy = {label: imports_of(words, cwd, env, ok) for label, words, cwd, ok in cases}
    base = samples['python -c "from mlflow import MlflowClient"']
    empty_list = samples["invoke --list (empty tasks.py)"]
    rows = []
    for label, *_ in cases:
        target = ""
        if label == "invoke --list (this tasks.py)":
            target = "vs empty tasks.py: " + verdict(ratio(samples[label], empty_list), 1.5)
        elif label.startswith(("python -m registry", "input error")):
            target = "vs import MlflowClient: " + verdict(ratio(samples[label], base), 0.25)
        rows.append([label, ms(samples[label]), heavy[label], target])
    note = "(`invoke` run as `python -m invoke`, without the pyenv shim; input errors point at a closed port)"
    table = tabulate(rows, headers=["command", "ms median [min-max]", "heavy imports", "target"])
    return f"{table}\n{note}"


def naive_list(client: Any, model: str) -> tuple[list[tuple[int, list[str]]], int]:
    """The per-version alias method: search, then get_model_version for every version."""
    requests_made = 1
    found = client.search_model_versions(f"name='{model}'", max_results=10_000)
    rows = []
    for mv in found:
        full = client.get_model_version(model, mv.version)
        requests_made += 1
        rows.append((int(full.version), list(full.aliases)))
    return rows, requests_made


def model_search(name: str) -> dict[str, Any]:
    """The parameters of the `registered-models/search` the tool reads a model with (MLflow's client
    adds the clause that leaves prompts out)."""
    return {"filter": f"name = '{name}' AND tag.`mlflow.prompt.is_prompt` != 'true'", "max_results": 1}


def rest_floor(url: str, model: str) -> Callable[[], Any]:
    """The same two requests as `versions`, done with a bare requests Session (JSON parsed)."""
    import requests

    session = requests.Session()

    def call() -> Any:
        params = {"filter": f"name='{model}'", "max_results": 10_000, "order_by": "version_number DESC"}
        search = session.get(f"{url}{API}/model-versions/search", params=params, timeout=60)
        search.raise_for_status()
        got = session.get(f"{url}{API}/registered-models/search", params=model_search(model), timeout=60)
        got.raise_for_status()
        return search.json(), got.json()

    return call


def short(breakdown: dict[str, int]) -> str:
    return "; ".join(f"{k} ×{v}" for k, v in breakdown.items()) or "-"


def versions(
    url: str, work: Path, sizes: list[int], repeat: int, settle: Callable[[], None]
) -> tuple[str, str, dict[int, str]]:
    from mlflow import MlflowClient

    from registry.versions import list_versions

    registry = registry_for(url)
    client = MlflowClient(url, registry_uri=url)
    env = cli_env(url)
    rows, whole_rows, models = [], [], {}
    for n in sizes:
        model = models[n] = f"bench_v{n}_{uuid.uuid4().hex[:6]}"
        start = time.perf_counter()
        create_versions(url, model, n)
        set_aliases(url, model, n)
        settle()
        made = time.perf_counter() - start
        listed = list_versions(registry, model)
        assert len(listed) == n and listed[0].aliases == ["prod"], "list_versions gave a wrong answer"
        with CountingProxy(url) as proxy:
            list_versions(registry_for(proxy.url), model)
            counted, breakdown = proxy.count(), proxy.breakdown()
        timing = compare(
            {"ours": lambda m=model: list_versions(registry, m), "floor": rest_floor(url, model)},
            IN_PROCESS_RUNS * repeat,
        )
        ours, floor = timing["ours"], timing["floor"]
        naive_samples = timed(lambda m=model: naive_list(client, m), repeat if n <= 100 else 1)
        naive_rows, naive_requests = naive_list(client, model) if n <= 100 else (None, 1 + n)
        if naive_rows is not None:
            assert {v: sorted(a) for v, a in naive_rows if a} == {
                r.version: sorted(r.aliases) for r in listed if r.aliases
            }, "naive and ours disagree"
        rows.append([
            f"{n:,}", f"{counted} ({short(breakdown)})",
            ms(ours), ms(floor), verdict(ratio(ours, floor), 1.5), f"{min(ours) / min(floor):.2f}×",
            f"{naive_requests:,}", ms(naive_samples), f"{ratio(naive_samples, ours):,.0f}×",
            f"{made:.1f} s",
        ])  # fmt: skip
        argv = [sys.executable, "-m", "registry", "versions", "--model", model]
        whole = compare(
            {"cmd": command(argv, work, env), "import": command(IMPORT_CLIENT, work, env)}, repeat
        )
        limit = 1.2 if n <= 1000 else 1.5
        whole_rows.append([
            f"{n:,}", ms(whole["cmd"]), ms(whole["import"]),
            verdict(ratio(whole["cmd"], whole["import"]), limit),
        ])  # fmt: skip
    table = tabulate(
        rows,
        headers=["N", "requests (ours)", "ours in-process ms", "REST floor ms", "ours / floor",
                 "best / best", "naive requests", "naive per-version ms", "naive / ours", "setup"],
    )  # fmt: skip
    note = (
        f"(in-process: {IN_PROCESS_RUNS}× the repeats, as the server's own time varies up to 3× between "
        "runs of the same search; naive: search, then get_model_version per version for its aliases, "
        "1 timed run when N > 100)"
    )
    whole_table = tabulate(
        whole_rows,
        headers=["N", "`python -m registry versions` ms", "import MlflowClient ms", "command / import"],
    )
    return f"{table}\n{note}", whole_table, models


def mutation_variants() -> list[tuple[str, dict[str, str]]]:
    """The settings mutations are measured with: the defaults, and with the lock off if there is one."""
    from registry.config import Settings

    variants: list[tuple[str, dict[str, str]]] = [("defaults", {})]
    if "lock" in Settings.__dataclass_fields__:
        variants = [("REGISTRY_LOCK=true", {"REGISTRY_LOCK": "true"}),
                    ("REGISTRY_LOCK=false", {"REGISTRY_LOCK": "false"})]  # fmt: skip
    return variants


@contextlib.contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def mutations(url: str, repeat: int) -> list[tuple[str, str]]:
    """One table per settings variant: requests and their breakdown (counted through the proxy in
    the first cycle) and in-process time (direct, later cycles) of each command."""
    tables = []
    for label, values in mutation_variants():
        with environment(values):
            tables.append((label, mutation_table(url, repeat)))
    return tables


# Versions made from "fake:/model" cannot load, so the Production gates (and the protected `prod`
# alias) refuse them: those steps run with --force --reason when the CLI has gates (marked "forced").
MUTATION_STEPS: list[tuple[str, list[Any], bool]] = [
    ("stage v1 → Staging (first change: creates ledger)",
     ["stage", "--version", 1, "--stage", "Staging"], False),
    ("stage v2 → Staging (archives v1; v2 not the latest in None)",
     ["stage", "--version", 2, "--stage", "Staging"], False),
    ("stage v4 → Staging (archives v2; the latest in None)",
     ["stage", "--version", 4, "--stage", "Staging"], False),
    ("stage v4 → Production (none to archive)", ["stage", "--version", 4, "--stage", "Production"], True),
    ("stage v3 → Production --alias prod (archives v4)",
     ["stage", "--version", 3, "--stage", "Production", "--alias", "prod"], True),
    ("stage v3 → Production again (no-op)", ["stage", "--version", 3, "--stage", "Production"], True),
    ("alias champion → v3 (new alias)", ["alias", "--name", "champion", "--version", 3], False),
    ("alias champion → v4 (move)", ["alias", "--name", "champion", "--version", 4], False),
    ("alias champion → v4 again (no-op)", ["alias", "--name", "champion", "--version", 4], False),
    ("alias champion --delete", ["alias", "--name", "champion", "--delete"], False),
    ("rollback (to v4, moves prod)", ["rollback"], True),
    ("stage --stage Prod (input error)", ["stage", "--version", 1, "--stage", "Prod"], False),
]  # fmt: skip
FORCE = ["--force", "--reason", "bench: fake versions cannot pass the load gate"]


def has_gates() -> bool:
    """True when the CLI gates Production (it then has --force)."""
    import inspect

    from registry import promote

    return "force" in inspect.signature(promote.stage).parameters


def mutation_table(url: str, repeat: int) -> str:
    gated = has_gates()
    counts: dict[str, tuple[int, dict[str, int]]] = {}
    times: dict[str, Samples] = {label: [] for label, _, _ in MUTATION_STEPS}
    for cycle in range(repeat + 1):
        model = f"bench_mut_{uuid.uuid4().hex[:6]}"
        create_versions(url, model, 4)
        proxy = CountingProxy(url).start() if cycle == 0 else None
        try:
            target = proxy.url if proxy else url
            for label, words, forced in MUTATION_STEPS:
                if proxy:
                    proxy.reset()
                extra = FORCE if forced and gated and "input error" not in label else []
                start = time.perf_counter()
                code = cli_main(target, *words, *extra, "--model", model)
                elapsed = time.perf_counter() - start
                expected = 2 if "input error" in label else 0
                if code != expected:
                    raise RuntimeError(f"{label}: exit {code}, expected {expected}")
                if proxy:
                    counts[label] = (proxy.count(), proxy.breakdown())
                else:
                    times[label].append(elapsed)
        finally:
            if proxy:
                proxy.stop()
    rows = [
        [label + (" [forced]" if forced and gated else ""), counts[label][0], ms(times[label]),
         short(counts[label][1])]
        for label, _, forced in MUTATION_STEPS
    ]  # fmt: skip
    return tabulate(rows, headers=["command (in-process, CLI main)", "requests", "ms", "breakdown"])


def history_floor(url: str, model: str) -> Callable[[], Any]:
    """The ledger's requests done with a bare requests Session (JSON parsed): the search for the
    ledger model with its packs, then the search pages of the versions written since the last pack."""
    import requests

    from registry.ledger import packed_through

    session = requests.Session()

    def call() -> list[Any]:
        get = f"{url}{API}/registered-models/search"
        answer = session.get(get, params=model_search(f"{model}.ledger"), timeout=60)
        answer.raise_for_status()
        body = answer.json()
        tags = {tag["key"]: tag["value"] for tag in body["registered_models"][0].get("tags", [])}
        pages, token = [body], None
        while True:
            params: dict[str, Any] = {
                "filter": f"name='{model}.ledger' AND version_number > {packed_through(tags)}",
                "max_results": 10_000, "order_by": "version_number ASC",
            }  # fmt: skip
            if token:
                params["page_token"] = token
            answer = session.get(f"{url}{API}/model-versions/search", params=params, timeout=60)
            answer.raise_for_status()
            body = answer.json()
            pages.append(body)
            token = body.get("next_page_token")
            if not token:
                return pages

    return call


def history(url: str, work: Path, events: int, repeat: int, settle: Callable[[], None]) -> str:
    from registry import ledger
    from registry.ledger import events as ledger_events

    registry = registry_for(url)
    env = cli_env(url)
    rows = []
    for count in sorted({100, events}):
        model = f"bench_hist_{count}_{uuid.uuid4().hex[:6]}"
        start = time.perf_counter()
        create_versions(url, model + ".ledger", count, event_tags)
        created = time.perf_counter()
        for through in range(ledger.PACK_EVERY, count + 1, ledger.PACK_EVERY):
            ledger.pack(registry, model, through)  # what the writer of every PACK_EVERY-th event does
        settle()
        setup = f"{created - start:.1f} s + packing {time.perf_counter() - created:.1f} s"
        found = ledger_events(registry, model)
        assert len(found) == count, f"history gave {len(found)} events, expected {count}"
        with CountingProxy(url) as proxy:
            ledger_events(registry_for(proxy.url), model)
            counted, breakdown = proxy.count(), proxy.breakdown()
        inproc = compare(
            {"ours": lambda m=model: ledger_events(registry, m), "floor": history_floor(url, model)}, repeat
        )
        history_argv = [sys.executable, "-m", "registry", "history", "--model", model]
        whole = compare(
            {
                "table": command(history_argv, work, env),
                "json": command([*history_argv, "--json"], work, env),
                "import": command(IMPORT_CLIENT, work, env),
            },
            repeat,
        )
        rows.append([
            f"{count:,}", f"{counted} ({short(breakdown)})",
            ms(inproc["ours"]), ms(inproc["floor"]), f"{ratio(inproc['ours'], inproc['floor']):.1f}×",
            ms(whole["table"]), ms(whole["json"]), ms(whole["import"]),
            f"{ratio(whole['table'], whole['import']):.2f}×",
            f"{'ok' if med(whole['table']) <= 2 else 'OVER'} (≤ 2 s)", setup,
        ])  # fmt: skip
    return tabulate(
        rows,
        headers=["events", "requests", "events() in-process ms", "REST floor ms", "ours / floor",
                 "`history` ms", "`history --json` ms", "import MlflowClient ms", "`history` / import",
                 "target", "setup"],
    )  # fmt: skip


TUTORIAL = '''"""log_and_register.py as MLflow's tutorials write it: default log_model arguments."""
import sys

import mlflow
from mlflow.models import infer_signature
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score
from sklearn.model_selection import train_test_split

mlflow.set_tracking_uri(sys.argv[1])
mlflow.set_experiment("bench_tutorial")
X, y = load_iris(return_X_y=True, as_frame=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=42, stratify=y)
params = {"C": 1.0, "max_iter": 200, "random_state": 42}
with mlflow.start_run():
    mlflow.log_params(params)
    lr = LogisticRegression(**params).fit(X_train, y_train)
    mlflow.log_metric("accuracy", accuracy_score(y_test, lr.predict(X_test)))
    signature = infer_signature(X_train, lr.predict(X_train))
    mlflow.sklearn.log_model(
        sk_model=lr,
        name="model",
        signature=signature,
        input_example=X_train.head(5),
        registered_model_name=sys.argv[2],
    )
'''


def train(url: str, work: Path, repeat: int) -> str:
    env = cli_env(url)
    script = work / "log_and_register.py"
    script.write_text(TUTORIAL)
    model = f"bench_train_{uuid.uuid4().hex[:6]}"
    ours_argv = [sys.executable, "-m", "registry", "train", "--model", model]
    tutorial_argv = [sys.executable, str(script), url, f"bench_tutorial_{uuid.uuid4().hex[:6]}"]
    timing = compare(
        {"ours": command(ours_argv, work, env), "tutorial": command(tutorial_argv, work, env)}, repeat
    )
    ours, tutorial = timing["ours"], timing["tutorial"]
    counted = []
    for argv in (ours_argv, tutorial_argv):
        with CountingProxy(url) as proxy:
            via_proxy = [proxy.url if word == url else word for word in argv]
            run(via_proxy, work, cli_env(proxy.url))
            counted.append((proxy.count(), proxy.breakdown()))
    rows = [
        ["python -m registry train", ms(ours), counted[0][0], verdict(ratio(ours, tutorial), 0.6),
         short(counted[0][1])],
        ["tutorial log_and_register.py", ms(tutorial), counted[1][0], "", short(counted[1][1])],
    ]  # fmt: skip
    return tabulate(rows, headers=["end to end", "ms", "requests", "ours / tutorial", "breakdown"])


def per_request(url: str, path: str, count: int, reuse: bool) -> Samples:
    """Seconds per GET `path`, on one kept-alive connection (`reuse`) or a new one each time."""
    import http.client

    host, port = url.split("//", 1)[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    samples = []
    try:
        for _ in range(count + 2):
            if not reuse:
                conn.close()
                conn = http.client.HTTPConnection(host, int(port), timeout=30)
            start = time.perf_counter()
            conn.request("GET", path)
            answer = conn.getresponse()
            answer.read()
            samples.append(time.perf_counter() - start)
            if answer.status != 200:
                raise RuntimeError(f"GET {path}: {answer.status}")
    finally:
        conn.close()
    return samples[2:]  # the first two warm the worker up


def workers(main: MlflowServer, work: Path, repeat: int, requests_each: int, model: str | None) -> str:
    from registry.versions import list_versions

    if model is None:
        model = f"bench_w_{uuid.uuid4().hex[:6]}"
        create_versions(main.url, model, 1000)
        set_aliases(main.url, model, 1000)
    count = len(list_versions(registry_for(main.url), model))
    path = f"{API}/registered-models/get?name={model}"
    rows = []
    with MlflowServer(work / "server-4", workers=4, backend=main.backend) as four:
        servers = (main, four)
        registries = {str(s.workers): registry_for(s.url) for s in servers}
        listing = compare({key: lambda r=r: list_versions(r, model) for key, r in registries.items()}, repeat)
        for server in servers:
            kept = per_request(server.url, path, requests_each, reuse=True)
            fresh = per_request(server.url, path, requests_each, reuse=False)
            rows.append(
                [f"--workers {server.workers}", ms(kept), ms(fresh), ms(listing[str(server.workers)])]
            )
    return tabulate(
        rows,
        headers=["local server", "GET, reused connection ms", "GET, new connection ms",
                 f"versions N={count:,} in-process ms (2 requests)"],
    )  # fmt: skip


# ---------------------------------------------------------------- main


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/run.py", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes and fewer repeats")
    parser.add_argument("--repeat", type=int, help="timed runs per measurement (default 5, quick 3)")
    parser.add_argument("--sizes", help="comma-separated N for `versions` (default 10,100,1000,3000)")
    parser.add_argument("--events", type=int, help="ledger events for `history` (default 10000, quick 1000)")
    parser.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated, of {SECTIONS}")
    parser.add_argument(
        "--postgres-uri",
        default=os.environ.get("REGISTRY_TEST_POSTGRES_URI", ""),
        help="PostgreSQL server for a second run of versions/mutations/history (REGISTRY_TEST_POSTGRES_URI)",
    )
    parser.add_argument("--out", type=Path, help="also write the tables to this Markdown file")
    args = parser.parse_args(argv)
    args.repeat = args.repeat or (3 if args.quick else 5)
    default_sizes = "10,100,1000" if args.quick else "10,100,1000,3000"
    args.sizes = [int(x) for x in (args.sizes or default_sizes).split(",") if x.strip()]
    args.events = args.events or (1000 if args.quick else 10_000)
    args.sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = set(args.sections) - set(SECTIONS)
    if unknown or args.repeat < 1 or not args.sizes or min(args.sizes) < 1:
        parser.error(f"bad --sections {sorted(unknown)} / --repeat / --sizes")
    if args.out:
        args.out = args.out.resolve()
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    began = time.perf_counter()
    out: list[str] = []

    def emit(title: str, body: str) -> None:
        print(f"\n## {title}\n\n{body}\n", flush=True)
        out.append(f"\n### {title}\n\n```\n{body}\n```\n")

    backends = ["SQLite"] + (["PostgreSQL"] if args.postgres_uri else [])
    emit("Machine", tabulate(machine(backends), tablefmt="plain"))
    emit(
        "Run",
        f"repeats {args.repeat}, N {args.sizes}, ledger events {args.events:,}; ms = median [min-max] "
        "of the repeats, compared cases timed round-robin in a new order each round; local server "
        "`--workers 1` (the tool's default)",
    )
    with tempfile.TemporaryDirectory(prefix="registry-bench-") as tmp:
        work = Path(tmp)
        os.chdir(work)  # the commands measured read no .env of the repository
        if "startup" in args.sections:
            emit("Startup (no server)", startup(work, args.repeat))
        with MlflowServer(work / "sqlite", workers=1) as server:
            models = backend_sections(server.url, "SQLite", work, args, emit)
            if "train" in args.sections:
                emit("train end to end (SQLite)", train(server.url, work, max(2, args.repeat // 2)))
            if "workers" in args.sections:
                model = models.get(1000) or next(iter(models.values()), None)
                table = workers(server, work, args.repeat, 20 if args.quick else 50, model)
                emit("Local server workers (SQLite)", table)
        if args.postgres_uri:
            with (
                PostgresDatabase(args.postgres_uri) as db,
                MlflowServer(work / "postgres", workers=1, backend=db.uri) as server,
            ):
                backend_sections(server.url, "PostgreSQL", work, args, emit, db.analyze)
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    emit("Done", f"whole run {time.perf_counter() - began:.0f} s; load average at the end {load}")
    if args.out:
        args.out.write_text("".join(out))
    return 0


def backend_sections(
    url: str,
    name: str,
    work: Path,
    args: argparse.Namespace,
    emit: Any,
    settle: Callable[[], None] = lambda: None,
) -> dict[int, str]:
    """The sections run on every backend; returns the `versions` models by N. `settle` runs after
    each bulk setup (PostgreSQL: ANALYZE, as autovacuum does a minute or so after a real load)."""
    models: dict[int, str] = {}
    if "versions" in args.sections:
        table, whole, models = versions(url, work, args.sizes, args.repeat, settle)
        emit(f"versions: requests and in-process time ({name})", table)
        emit(f"versions: whole command ({name})", whole)
    if "mutations" in args.sections:
        for variant, table in mutations(url, args.repeat):
            emit(f"Mutations: requests per command, {variant} ({name})", table)
    if "history" in args.sections:
        emit(f"history ({name})", history(url, work, args.events, args.repeat, settle))
    return models


if __name__ == "__main__":
    raise SystemExit(main())
