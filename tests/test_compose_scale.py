"""The scale-out stack for real: compose.scale.yaml through `invoke`, as a user switches it on.

PostgreSQL, the S3 object store, two tracking servers behind the balancer, and the trainer, in one
throwaway Compose project on a free port (one stack for the module; the first run builds the images).
Needs a container engine and skips with the reason when none answers; the tests at the end check
`invoke up`'s scale options and the file's defaults without one.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

import tasks
from registry.config import declared, load_settings
from tests.compose_stack import ROOT, STEP_TIMEOUT, UP_TIMEOUT, compose_cli, skip_reason
from tests.conftest import free_port

MODEL = "iris_scale_test"
RACE_MODEL = "iris_scale_race"  # versions made without `train`: kept off MODEL, whose doctor must be clean
SERVERS = 2
# The one line of a command that could not look up the balancer (registry.connection: the probe, or
# MLflow's client after its retries).
DNS_FAILED = re.compile(
    r"error: cannot reach the MLflow server at http://mlflow:5000 "
    r"\((unknown host|temporary failure in name resolution)\)"
)
# The tests on the stack are opt-in (`.ci/run` sets it): they take 6-10 min on a loaded machine
# (PostgreSQL, the object store and three servers in containers):
#   REGISTRY_TEST_SCALE=1 python -m pytest -m compose tests/test_compose_scale.py
SCALE_OFF = pytest.mark.skipif(
    os.environ.get("REGISTRY_TEST_SCALE") != "1", reason="the scale-out stack runs with REGISTRY_TEST_SCALE=1"
)


def on_the_stack(test: Any) -> Any:
    """A test of the running stack: marker compose, and skipped unless REGISTRY_TEST_SCALE=1."""
    return pytest.mark.compose(SCALE_OFF(test))


# Secrets of this stack: URL-special characters in the password exercise its quoting into the URI.
POSTGRES_PASSWORD = f"pw@/:%{secrets.token_hex(8)}"
S3_SECRET = secrets.token_hex(16)

# Run in the trainer (stdin of `python -`): CLIENTS processes forked after importing mlflow, released
# together, each running `stage ... Production` against its own address: the balancer or one server.
RACE = r"""
import contextlib, io, json, multiprocessing, os, socket, sys, time
from mlflow import MlflowClient
from registry.cli import main

model, source_version, clients, trials = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
for attempt in range(15):  # the engine's DNS may fail for a while (see S3_KEYS)
    try:
        found = socket.getaddrinfo("tracking", 5000, proto=socket.IPPROTO_TCP)
        break
    except socket.gaierror:
        if attempt == 14:
            raise
        time.sleep(1)
servers = sorted({info[4][0] for info in found})
addresses = ["http://mlflow:5000", *(f"http://{ip}:5000" for ip in servers)]
client = MlflowClient("http://mlflow:5000")
source = client.get_model_version(os.environ["MODEL_NAME"], source_version)
model_id = source.model_id or source.source.removeprefix("models:/")  # MLflow 3 may leave model_id unset
with contextlib.suppress(Exception):
    client.create_registered_model(model)

def racer(barrier, results, number, address):
    os.environ["MLFLOW_TRACKING_URI"] = address
    argv = ["stage", "--model", model, "--version", str(number), "--stage", "Production", "--alias", "prod"]
    barrier.wait(timeout=60)
    errors = io.StringIO()
    with contextlib.redirect_stderr(errors), contextlib.redirect_stdout(io.StringIO()):
        code = main(argv)
    results.put((number, address, code, errors.getvalue()))

context = multiprocessing.get_context("fork")
report = []
for _ in range(trials):
    numbers = [
        int(client.create_model_version(
            model, source.source, run_id=source.run_id, model_id=model_id
        ).version)
        for _ in range(clients)
    ]
    barrier, results = context.Barrier(clients), context.Queue()
    processes = [
        context.Process(target=racer, args=(barrier, results, n, addresses[i % len(addresses)]))
        for i, n in enumerate(numbers)
    ]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=240) for _ in processes]
    for process in processes:
        process.join(timeout=60)
    versions = client.search_model_versions(f"name='{model}'")
    report.append({
        "numbers": numbers,
        "outcomes": outcomes,
        "production": [int(v.version) for v in versions if v.current_stage == "Production"],
        "aliases": {a: int(v) for a, v in client.get_registered_model(model).aliases.items()},
    })
print(json.dumps({"servers": servers, "trials": report}))
"""

# Run in a tracking server (its environment holds the store's keys): every key of the bucket. The engine's
# DNS may not answer for tens of seconds after containers start or stop (measured: up to ~50 s under
# load), and the server's environment allows boto3 one attempt: this check of the store waits it out.
S3_KEYS = r"""
import json, time, boto3, botocore.exceptions
s3 = boto3.client("s3", endpoint_url="http://objectstore:9000", region_name="us-east-1")
deadline = time.monotonic() + 120
while True:
    try:
        keys = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket="mlflow-artifacts"):
            keys += [item["Key"] for item in page.get("Contents", [])]
        break
    except botocore.exceptions.EndpointConnectionError:  # a failed lookup or connection
        if time.monotonic() > deadline:
            raise
        time.sleep(1)
print(json.dumps(keys))
"""


class Stack:
    """The module's Compose project: `invoke`, `docker compose` and checks, with every output kept."""

    def __init__(self, env: dict[str, str], cli: list[str]) -> None:
        self.env, self.cli, self.outputs = env, cli, []
        self.seconds = 0.0  # how long the last `invoke` took (its last run)
        self.dns_failures: list[str] = []  # commands run again: the engine's DNS failed them (below)

    def run(self, words: list[str], timeout: float = STEP_TIMEOUT, stdin: str | None = None) -> Any:
        done = subprocess.run(
            words, cwd=ROOT, env=self.env, input=stdin, capture_output=True, text=True, timeout=timeout
        )
        self.outputs += [done.stdout, done.stderr]
        return done

    def invoke(self, *args: str, timeout: float = STEP_TIMEOUT, check: bool = True) -> Any:
        """`invoke ARGS` as a user runs it; with `check`, fail the test on a non-zero exit.

        A command that the engine's DNS failed (exit 3: the trainer could not look up `mlflow`) is run
        again, as a user would, up to twice, and noted: while containers stop and start under load,
        podman's DNS server does not answer for up to ~50 s, and at the end of such a stall the host's
        resolver, next in the containers' resolv.conf, answered once that `mlflow` does not exist."""
        for attempt in range(3):
            started = time.monotonic()
            done = self.run([sys.executable, "-m", "invoke", *args], timeout)
            self.seconds = time.monotonic() - started
            if done.returncode != 3 or not DNS_FAILED.match(done.stderr) or attempt == 2:
                break
            self.dns_failures.append(f"{' '.join(args)}: {done.stderr.strip()}")
            print(f"run again: {self.dns_failures[-1]}")
            time.sleep(5)
        if check:
            assert done.returncode == 0, f"invoke {' '.join(args)} exited {done.returncode}:\n{done.stderr}"
        return done

    def compose(self, *args: str, stdin: str | None = None) -> Any:
        done = self.run([*self.cli, *args], stdin=stdin)
        assert done.returncode == 0, f"{' '.join(args)} exited {done.returncode}:\n{done.stderr}"
        return done

    def json_of(self, *args: str) -> Any:
        return json.loads(self.invoke(*args).stdout)

    def balanced(self) -> dict[str, str]:
        """The balancer's view: server slot -> status (UP, DOWN, ...), for the slots that have a server.
        Asked inside the balancer's container, on 127.0.0.1: no lookup that the engine's DNS could stall."""
        url = "http://127.0.0.1:8404/stats;csv"
        stats = f"import urllib.request as u; print(u.urlopen({url!r}).read().decode())"
        rows = self.compose("exec", "-T", "mlflow", "python", "-c", stats).stdout.splitlines()
        fields = [row.split(",") for row in rows if row.startswith("tracking,tracking")]
        return {f[1]: f[17] for f in fields if not f[17].startswith("MAINT")}

    def wait_until_balanced(self, count: int, timeout: float = 120) -> None:
        """Until the balancer has `count` servers UP."""
        deadline = time.monotonic() + timeout
        while sum(status == "UP" for status in self.balanced().values()) != count:
            assert time.monotonic() < deadline, f"the balancer shows {self.balanced()}, not {count} UP"
            time.sleep(1)

    def server_ids(self) -> list[str]:
        return self.compose("ps", "-q", "tracking").stdout.split()

    def s3_keys(self) -> list[str]:
        return list(
            json.loads(self.compose("exec", "-T", "--index=1", "tracking", "python", "-c", S3_KEYS).stdout)
        )


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    """The scale-out stack, up: compose runner, both Compose files, secrets of its own, free port."""
    env = dict(os.environ)
    env.pop("MLFLOW_TRACKING_URI", None)
    env.update(
        REGISTRY_RUNNER="compose",
        COMPOSE_FILE="compose.yaml:compose.scale.yaml",
        COMPOSE_PROJECT_NAME=f"registryscale{uuid.uuid4().hex[:8]}",
        MLFLOW_PORT=str(free_port()),
        MODEL_NAME=MODEL,
        MLFLOW_SERVERS=str(SERVERS),
        POSTGRES_PASSWORD=POSTGRES_PASSWORD,
        AWS_ACCESS_KEY_ID="scale-test",
        AWS_SECRET_ACCESS_KEY=S3_SECRET,
        BACKEND_STORE_URI="",
        ARTIFACTS_DESTINATION="",
        MLFLOW_S3_ENDPOINT_URL="",
    )
    reason = skip_reason(env) or (None if shutil.which("docker") else "no `docker` CLI to kill one container")
    if reason:
        pytest.skip(reason)
    cli = compose_cli(env)
    assert cli is not None
    running = Stack(env, cli)
    try:
        up = running.invoke("up", timeout=UP_TIMEOUT)
        assert f"MLflow UI: http://127.0.0.1:{env['MLFLOW_PORT']}" in up.stdout
        running.wait_until_balanced(SERVERS)
        yield running
    finally:
        print(f"commands run again after the engine's DNS failed them: {len(running.dns_failures)}")
        down = running.invoke("down", "--volumes", check=False)
        assert down.returncode == 0, f"invoke down --volumes failed:\n{down.stdout}\n{down.stderr}"


@pytest.fixture(scope="module")
def trained(stack: Stack) -> int:
    """Version 1 of MODEL, trained through the balancer and promoted with @prod."""
    assert "version 1" in stack.invoke("train").stdout
    stack.invoke("stage", "--version", "1", "--stage", "Production", "--alias", "prod")
    return 1


@on_the_stack
def test_a_versions_artifacts_are_in_the_object_store_not_on_a_server(stack: Stack, trained: int) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(f"http://127.0.0.1:{stack.env['MLFLOW_PORT']}")
    version = client.get_model_version(MODEL, str(trained))
    model_id = version.model_id or version.source.removeprefix("models:/")  # MLflow 3 may leave it unset
    location = client.get_logged_model(model_id).artifact_location
    assert location.startswith("mlflow-artifacts:/")  # proxied: clients need no S3 credentials
    prefix = location.removeprefix("mlflow-artifacts:/").strip("/")
    keys = stack.s3_keys()
    assert {f"{prefix}/MLmodel", f"{prefix}/model.skops"} <= set(keys), keys
    assert "predictions: [" in stack.invoke("predict", "--alias", "prod").stdout
    logs = stack.compose("logs", "--no-color", "tracking").stdout
    assert "/mlflow-artifacts/artifacts/" in logs and "/presigned/" not in logs  # proxied, both ways
    for container in stack.server_ids():
        found = stack.run(
            ["docker", "exec", container, "find", "/", "/data", "-xdev", "-path", f"*{model_id}*"]
        )
        assert found.stdout == "", f"artifacts on a server's disk: {found.stdout}"


@on_the_stack
def test_racing_promoters_spread_over_the_servers_leave_one_production(stack: Stack, trained: int) -> None:
    done = stack.compose(
        "exec", "-T", "-e", "REGISTRY_GATES=false", "-e", "REGISTRY_ACTOR=racer", "trainer", "python", "-",
        RACE_MODEL, str(trained), "8", "3", stdin=RACE,
    )  # fmt: skip
    report = json.loads(done.stdout)
    assert len(report["servers"]) == SERVERS
    for trial in report["trials"]:
        outcomes = trial["outcomes"]
        assert [code for _, _, code, _ in outcomes] == [0] * 8, outcomes
        assert {address for _, address, _, _ in outcomes} == {
            "http://mlflow:5000",
            *(f"http://{ip}:5000" for ip in report["servers"]),
        }
        assert len(trial["production"]) == 1 and trial["production"][0] in trial["numbers"], trial
        assert trial["aliases"] == {"prod": trial["production"][0]}, trial


@on_the_stack
def test_killing_a_server_during_commands_loses_and_doubles_nothing(stack: Stack, trained: int) -> None:
    names = [f"kill{i}" for i in range(4)]
    before = stack.json_of("history", "--json", "--limit", "0")
    results: list[Any] = []
    seconds: list[float] = []

    def commands() -> None:
        for name in names:
            results.append(stack.invoke("alias", "--name", name, "--version", str(trained), check=False))
            seconds.append(stack.seconds)

    series = threading.Thread(target=commands)
    series.start()
    while not results:  # kill while the second command runs
        time.sleep(0.2)
    victim = stack.server_ids()[-1]
    time.sleep(1)
    assert stack.run(["docker", "kill", victim]).returncode == 0
    series.join(timeout=STEP_TIMEOUT * len(names))
    print("alias commands, a server killed during the second:", ", ".join(f"{s:.1f} s" for s in seconds))
    assert [(r.returncode, r.stderr) for r in results] == [(0, "")] * len(names)
    running = stack.run(["docker", "inspect", "--format", "{{.State.Running}}", victim]).stdout.strip()
    if running == "false":  # not restarted by the engine: the balancer has taken it out
        assert sum(status == "UP" for status in stack.balanced().values()) == SERVERS - 1

    after = stack.json_of("history", "--json", "--limit", "0")
    assert [(e["action"], e["alias"]) for e in after[len(before) :]] == [("alias", name) for name in names]
    versions = stack.json_of("versions", "--json")
    assert [v["version"] for v in versions] == [trained]
    assert set(versions[0]["aliases"]) == {"prod", *names}
    assert stack.invoke("doctor", check=False).returncode == 0
    assert stack.run(["docker", "start", victim]).returncode == 0  # back, and the balancer finds it
    stack.wait_until_balanced(SERVERS)


@on_the_stack
def test_down_and_up_keep_versions_aliases_ledger_and_artifacts(stack: Stack, trained: int) -> None:
    versions = stack.json_of("versions", "--json")
    events = stack.json_of("history", "--json", "--limit", "0")
    keys = stack.s3_keys()
    stack.invoke("down")
    stack.invoke("up", timeout=UP_TIMEOUT)
    assert stack.json_of("versions", "--json") == versions
    assert stack.json_of("history", "--json", "--limit", "0") == events
    assert stack.s3_keys() == keys
    predicted = stack.invoke("predict", "--alias", "prod").stdout
    assert f"-> version {trained}" in predicted and "predictions: [" in predicted


def _failure_budget(stack: Stack) -> float:
    """Seconds a command may take to fail beyond a healthy run, by the trainer's settings (.env, shell,
    defaults, as Compose passes them): the probe retries a stalled lookup of `mlflow` for up to
    MLFLOW_HTTP_REQUEST_TIMEOUT; then MLflow's client makes 1 + MLFLOW_HTTP_REQUEST_MAX_RETRIES attempts
    and the tool one more, un-retried, for the server's words (registry.connection.server_failure), each
    within that timeout (a server's own lookups, 8 s at most with dns_opt, and PostgreSQL's
    connect_timeout, 3 s, fit in it); MLflow's client sleeps before the n-th retry (n >= 2) the backoff
    factor times 2^(n-1) plus its jitter, up to 1 s (urllib3's Retry). A hang takes STEP_TIMEOUT."""
    settings = load_settings(stack.env, env_file=ROOT / ".env")
    retries, timeout = settings.http_max_retries, settings.http_timeout
    sleeps = sum(settings.http_backoff_factor * 2 ** (n - 1) + 1 for n in range(2, retries + 1))
    return float(timeout * (retries + 3) + sleeps)


def _fails_fast_then_recovers(stack: Stack, service: str, command: list[str], unaffected: str = "") -> None:
    """Without `service`, `command` fails with exit 3 and one line, within the client's retry budget
    (_failure_budget) of the slower of two healthy runs, before and after: this machine may be loaded,
    and one run can take several times another; once `service` is back, it works again."""
    stack.invoke(*command)
    healthy = stack.seconds
    stack.compose("stop", service)
    try:
        failed = stack.invoke(*command, check=False)
        elapsed = stack.seconds
        if unaffected:
            stack.invoke(unaffected)
    finally:
        stack.compose("start", service)
    assert failed.returncode == 3, failed.stderr
    assert len(failed.stderr.strip().splitlines()) == 1 and failed.stderr.startswith("error: "), failed.stderr
    started = time.monotonic()  # the engine's DNS may stall after the start (~50 s), and a run take 20 s
    while (again := stack.invoke(*command, check=False)).returncode != 0:
        assert time.monotonic() < started + 120, f"still failing after {service} came back: {again.stderr}"
        time.sleep(2)
    recovered, healthy_after = time.monotonic() - started, stack.seconds
    bound = max(healthy, healthy_after) + _failure_budget(stack)
    print(
        f"{' '.join(command)}: {healthy:.1f} s and {healthy_after:.1f} s; without {service} exit 3 after "
        f"{elapsed:.1f} s (bound {bound:.0f} s); works again {recovered:.1f} s after its start; "
        f"{failed.stderr.strip()}"
    )
    assert elapsed < bound, (
        f"{command} took {elapsed:.0f} s to fail, {healthy:.0f} s and {healthy_after:.0f} s to succeed "
        f"(bound {bound:.0f} s)"
    )


@on_the_stack
def test_losing_the_object_store_fails_fast_with_exit_3_and_recovers(stack: Stack, trained: int) -> None:
    _fails_fast_then_recovers(stack, "objectstore", ["predict", "--alias", "prod"], unaffected="versions")


@on_the_stack
def test_losing_postgresql_fails_fast_with_exit_3_and_recovers(stack: Stack, trained: int) -> None:
    _fails_fast_then_recovers(stack, "postgres", ["versions"])


@on_the_stack
def test_no_secret_is_ever_printed(stack: Stack, trained: int) -> None:
    stack.invoke("logs")
    stack.invoke("history", "--json", "--limit", "0")
    printed = "\n".join(stack.outputs)
    for secret in (POSTGRES_PASSWORD, S3_SECRET):
        assert secret not in printed


# Without an engine: what `invoke up` asks Compose for, and the file's defaults.

# What `config` prints, abridged: four services, and a volume that shares a service's name.
SCALE_CONFIG = """services:
  mlflow:
    image: x
  objectstore:
    image: y
  postgres:
    image: y
  tracking:
    image: z
volumes:
  tracking: {}
"""


def test_up_scales_the_tracking_servers_only_with_the_scale_file() -> None:
    services = tasks._service_names(SCALE_CONFIG)
    assert services == {"mlflow", "objectstore", "postgres", "tracking"}
    defaults = load_settings({}, env_file=None)
    assert tasks._scale_options(defaults, services) == " --scale tracking=2"
    assert tasks._scale_options(defaults, tasks._service_names("services:\n  mlflow:\n  trainer:\n")) == ""


def test_your_own_database_and_s3_leave_the_bundled_ones_out() -> None:
    own = load_settings(
        {
            "MLFLOW_SERVERS": "3",
            "BACKEND_STORE_URI": "postgresql+psycopg2://u:p@db.example/mlflow",
            "ARTIFACTS_DESTINATION": "s3://bucket/mlflow",
        },
        env_file=None,
    )
    options = tasks._scale_options(own, tasks._service_names(SCALE_CONFIG))
    assert options == " --scale tracking=3 --scale postgres=0 --scale objectstore=0"


def test_the_scale_file_defaults_are_the_declared_settings() -> None:
    text = (ROOT / "compose.scale.yaml").read_text(encoding="utf-8")
    yaml.safe_load(text)
    defaults = {field.metadata["key"]: field.default for field in declared()}
    used = re.findall(r"\$\{(\w+):-([^}]*)\}", text)
    assert used
    for key, default in used:
        if key in ("BASE_IMAGE", "MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY"):  # compose.yaml's, passed on
            continue
        assert key in defaults, f"{key} is not declared in registry/config.py"
        assert default == str(defaults[key]), f"{key}: compose.scale.yaml says {default!r}"


# Without an engine: the CLI's probe of the server when name resolution stalls, as the engine's DNS did
# under load while a server was killed (a command exited 3 with "unknown host" for `mlflow`). Real glibc
# lookups, nothing mocked: the child runs in a private mount namespace (`unshare --mount`, root only) whose
# /etc/resolv.conf names a DNS server on 127.x.y.z that never answers (a UDP socket this test holds: each
# lookup times out, EAI_AGAIN, as in a stall) and whose /etc/hosts the test fills in when the stall ends.

PROBE = r"""
import sys
from registry.config import load_settings
from registry.connection import probe
settings = load_settings({"MLFLOW_TRACKING_URI": sys.argv[1], "MLFLOW_HTTP_REQUEST_TIMEOUT": "30"}, None)
print("probing", flush=True)
probe(settings)
print("reached", flush=True)
"""
STALLED_NAME = "registry-probe-test"
HANG = 30  # seconds: far above any lookup here; only a hang or a retry of what must not be retried takes it


class StalledResolver:
    """A private resolver for child processes: a DNS server that never answers, and an /etc/hosts."""

    def __init__(self, folder: Path) -> None:
        import socket

        self.dns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for _ in range(20):  # a free 127.x.y.z:53 (other runs of this test may hold theirs)
            address = f"127.{secrets.randbelow(200) + 20}.{secrets.randbelow(250) + 1}.53"
            try:
                self.dns.bind((address, 53))
                break
            except OSError:
                continue
        else:
            self.dns.close()
            pytest.skip("no free 127.x.y.z:53 for the stalled DNS server")
        self.hosts = folder / "hosts"
        self.hosts.write_text("127.0.0.1 localhost\n", encoding="utf-8")
        resolv, switch = folder / "resolv.conf", folder / "nsswitch.conf"
        resolv.write_text(f"nameserver {address}\noptions timeout:1 attempts:1\n", encoding="utf-8")
        switch.write_text("hosts: files dns\n", encoding="utf-8")
        mounts = 'mount --bind "$1" /etc/resolv.conf && mount --bind "$2" /etc/hosts'
        mounts += ' && mount --bind "$3" /etc/nsswitch.conf && shift 3 && exec "$@"'
        files = [str(resolv), str(self.hosts), str(switch)]
        self.prefix = ["unshare", "--mount", "sh", "-c", mounts, "sh", *files]
        # The child runs in `folder` (no .env) without this process's MLflow and registry settings.
        self.cwd = folder
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "REGISTRY_"))}

    def resolves(self, name: str) -> None:
        """The stall ends: `name` is found (written in place: the bind mount keeps the file's inode)."""
        with self.hosts.open("a", encoding="utf-8") as hosts:
            hosts.write(f"127.0.0.1 {name}\n")

    def queries(self) -> int:
        """How many queries reached the DNS server so far (each lookup asks twice: A and AAAA)."""
        self.dns.setblocking(False)
        count = 0
        while True:
            try:
                self.dns.recv(4096)
            except BlockingIOError:
                return count
            count += 1

    def close(self) -> None:
        self.dns.close()


@pytest.fixture
def stalled(tmp_path: Path) -> Iterator[StalledResolver]:
    if sys.platform != "linux" or os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("a private resolver needs Linux, root and `unshare` (util-linux)")
    resolver = StalledResolver(tmp_path)
    trial = subprocess.run([*resolver.prefix, "true"], capture_output=True, text=True, timeout=60)
    if trial.returncode != 0:
        resolver.close()
        pytest.skip(f"cannot bind-mount a private resolver: {trial.stderr.strip()}")
    yield resolver
    resolver.close()


def versions_through(
    stalled: StalledResolver, env: dict[str, str], timeout: float
) -> tuple[subprocess.CompletedProcess[str], float]:
    """`python -m registry versions` behind the private resolver: the finished process and its seconds."""
    started = time.monotonic()
    done = subprocess.run(
        [*stalled.prefix, sys.executable, "-m", "registry", "versions", "--model", "m"],
        cwd=stalled.cwd, env=env, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    return done, time.monotonic() - started


def test_a_stalled_name_lookup_is_retried_until_the_name_resolves(stalled: StalledResolver) -> None:
    import socket

    with socket.create_server(("127.0.0.1", 0)) as server:
        uri = f"http://{STALLED_NAME}:{server.getsockname()[1]}"
        child = subprocess.Popen(
            [*stalled.prefix, sys.executable, "-c", PROBE, uri],
            cwd=stalled.cwd, env=stalled.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert child.stdout is not None
        assert child.stdout.readline() == "probing\n"
        time.sleep(2.5)  # at least two lookups time out meanwhile (1 s each, 0.25 s and 0.5 s apart)
        stalled.resolves(STALLED_NAME)
        out, err = child.communicate(timeout=HANG)
    assert (child.returncode, out, err) == (0, "reached\n", "")
    assert stalled.queries() >= 4  # two lookups or more went to the stalled server: retried


def test_a_lookup_that_stays_stalled_fails_with_exit_3_and_one_line(stalled: StalledResolver) -> None:
    env = dict(stalled.env, MLFLOW_TRACKING_URI=f"http://{STALLED_NAME}:5000")
    env["MLFLOW_HTTP_REQUEST_TIMEOUT"] = "3"
    done, elapsed = versions_through(stalled, env, HANG * 2)
    assert done.returncode == 3, done.stderr
    assert done.stderr.count("\n") == 1 and "(temporary failure in name resolution)" in done.stderr
    assert stalled.queries() >= 4  # retried within MLFLOW_HTTP_REQUEST_TIMEOUT (3 s)
    assert elapsed < 3 + HANG, f"a stalled lookup reported after {elapsed:.1f} s"


def test_an_unknown_host_is_not_retried(tmp_path: Path, stalled: StalledResolver) -> None:
    switch = tmp_path / "nsswitch.conf"
    switch.write_text("hosts: files\n", encoding="utf-8")  # no DNS: the name is not found, EAI_NONAME
    env = dict(stalled.env, MLFLOW_TRACKING_URI=f"http://{STALLED_NAME}:5000")
    env["MLFLOW_HTTP_REQUEST_TIMEOUT"] = "60"
    done, elapsed = versions_through(stalled, env, HANG * 3)
    assert done.returncode == 3 and done.stderr.count("\n") == 1 and "(unknown host)" in done.stderr
    assert elapsed < HANG, f"an unknown host reported after {elapsed:.1f} s (MLFLOW_HTTP_REQUEST_TIMEOUT=60)"
