"""Events: every change the tool makes reaches a subscribed receiver as a signed POST.

The issue's target is "within 2 s"; a test on a loaded 2-core machine cannot hold a wall-clock figure,
so the test waits up to DELIVERY_TIMEOUT (a hang, not a slow delivery) and prints the delays it saw;
the figure itself is measured in bench/serve.py (docs/serving.md).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from registry import hooks, localserver
from registry.errors import BadInput
from tests.conftest import Server, free_port

DELIVERY_TIMEOUT = 30.0

RECEIVER = """
import json, sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Receive(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        line = {"received": time.time(), "headers": dict(self.headers), "body": body.decode()}
        with open(sys.argv[2], "a") as out:
            out.write(json.dumps(line) + "\\n")
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass

ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Receive).serve_forever()
"""


class Receiver:
    """A real receiver process that writes down every POST it gets."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/events"
        self.file = folder / "received.jsonl"
        self.file.touch()
        script = folder / "receiver.py"
        script.write_text(RECEIVER)
        self.process = subprocess.Popen([sys.executable, str(script), str(self.port), str(self.file)])

    def deliveries(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.file.read_text().splitlines()]

    def wait(self, count: int, timeout: float) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(found := self.deliveries()) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return found


@pytest.fixture
def receiver(tmp_path: Path, server: Server) -> Iterator[Receiver]:
    """A receiver; afterwards no webhook points at it, even when its test failed (a webhook left on a
    dead address makes the server spend seconds of its delivery threads on every later event)."""
    from mlflow import MlflowClient

    started = Receiver(tmp_path)
    try:
        yield started
    finally:
        started.process.terminate()
        started.process.wait(timeout=10)
        client = MlflowClient(server.url, registry_uri=server.url)
        for hook in client.list_webhooks(max_results=1000):
            if hook.url == started.url:
                client.delete_webhook(hook.webhook_id)


def test_every_kind_of_change_reaches_the_receiver_signed(
    cli: Any,
    model: str,
    receiver: Receiver,
    make_versions: Any,
    monkeypatch: pytest.MonkeyPatch,
    server: Server,
) -> None:
    monkeypatch.setenv("REGISTRY_GATES", "false")  # gates are tested elsewhere; here, the events
    name = f"test-{model.replace('_', '-')}"
    added = cli("hooks", "add", "--url", receiver.url, "--name", name)
    assert added.code == 0, added.err
    secret = added.out.split("secret: ")[1].split()[0]
    listed = json.loads(cli("hooks", "list", "--json").out)
    mine = next(hook for hook in listed if hook["name"] == name)
    assert mine["url"] == receiver.url and set(mine["events"]) == set(hooks.REGISTRY_EVENTS)
    tried = cli("hooks", "test", "--name", name)
    assert tried.code == 0 and "HTTP 200" in tried.out, tried.err
    # The server keeps its list of webhooks per event for MLFLOW_WEBHOOK_CACHE_TTL: an event within
    # that time of `add` may go out to the list from before it (seen in CI: the ledger's baseline).
    time.sleep(float(localserver.SERVER_ENV["MLFLOW_WEBHOOK_CACHE_TTL"]) + 0.5)

    ledger = f"{model}.ledger"
    commands = [
        (["train", "--reason", "first"], {"train"}),
        (["stage", "--version", "1", "--stage", "Staging"], {"stage"}),
        (["stage", "--version", "1", "--stage", "Production", "--reason", "ship it"], {"stage", "alias"}),
        (["stage", "--version", "2", "--stage", "Production"], {"stage", "archive", "alias"}),
        (["alias", "--name", "champion", "--version", "2"], {"alias"}),
        (["rollback", "--reason", "back"], {"rollback", "archive", "alias"}),
    ]
    delays: list[float] = []
    for number, (args, actions) in enumerate(commands):
        if number == 1:
            make_versions(1)  # version 2, without training again
        count = len(receiver.deliveries())
        outcome = cli(*args, "--model", model)
        done = time.time()
        assert outcome.code == 0, (args, outcome.err)
        found: list[dict[str, Any]] = []
        deadline = time.monotonic() + DELIVERY_TIMEOUT
        while not {e["action"] for e in found} >= actions and time.monotonic() < deadline:
            time.sleep(0.02)
            found = [e for d in receiver.deliveries()[count:] for e in _ledger_events(d, secret, ledger)]
        assert {e["action"] for e in found} >= actions, (args, found, _webhook_log(server))
        delays.append(max(d["received"] for d in receiver.deliveries()[count:]) - done)
    print(f"deliveries arrived {min(delays):.2f}-{max(delays):.2f} s after each command returned")

    # MLflow delivers from a pool of threads, so in any order: every ledger event arrives, once.
    history = json.loads(cli("history", "--json", "--model", model).out)
    recorded = sorted(_key(e) for e in history)
    deadline = time.monotonic() + DELIVERY_TIMEOUT
    while True:
        events = [e for d in receiver.deliveries() for e in _ledger_events(d, secret, ledger)]
        received = sorted(_key(e) for e in events)
        if received == recorded or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert received == recorded
    rollback = next(e for e in events if e["action"] == "rollback")
    assert rollback == {
        "seq": rollback["seq"], "model": model, "action": "rollback", "version": 1, "from": "Archived",
        "to": "Production", "alias": None, "actor": "tester", "reason": "back", "result": "ok",
    }  # fmt: skip
    moved = next(e for e in events if e["action"] == "alias" and e["seq"] == rollback["seq"])
    assert (moved["alias"], moved["from"], moved["to"]) == ("prod", "2", "1")

    # Every delivery is signed with the hook's secret, and no other.
    deliveries = receiver.deliveries()
    assert deliveries and all(_verified(d, secret) for d in deliveries)
    with pytest.raises(hooks.Forged):
        hooks.verify("another secret", deliveries[0]["headers"], deliveries[0]["body"].encode())

    assert cli("hooks", "remove", "--name", name).code == 0
    assert name not in cli("hooks", "list").out
    assert cli("hooks", "remove", "--name", name).code == 4


def _webhook_log(server: Server) -> list[str]:
    """The server's lines about webhooks: why a delivery did not come."""
    log = server.settings.registry_home / "server.log"
    return [line for line in log.read_text(errors="replace").splitlines() if "webhook" in line.lower()][-20:]


def _verified(delivery: dict[str, Any], secret: str) -> bool:
    hooks.verify(secret, delivery["headers"], delivery["body"].encode(), now=delivery["received"])
    return True


def _key(event: dict[str, Any]) -> tuple[int, str, int, str]:
    return event["seq"], event["action"], event["version"] or 0, event["alias"] or ""


def _ledger_events(delivery: dict[str, Any], secret: str, ledger: str) -> list[dict[str, Any]]:
    _verified(delivery, secret)
    payload = json.loads(delivery["body"])
    return hooks.ledger_events(payload) if payload["data"].get("name") == ledger else []


def test_a_tampered_forged_stale_or_replayed_delivery_is_refused(tmp_path: Path) -> None:
    body = b'{"entity": "model_version", "action": "created", "data": {}}'
    now = time.time()
    stamp = str(int(now))
    headers = {
        hooks.DELIVERY_HEADER: "d-1",
        hooks.TIMESTAMP_HEADER: stamp,
        hooks.SIGNATURE_HEADER: hooks.sign("s", "d-1", stamp, body),
    }
    assert hooks.verify("s", headers, body, now=now) == "d-1"
    lower = {key.lower(): value for key, value in headers.items()}  # as ASGI servers hand them over
    assert hooks.verify("s", lower, body, now=now) == "d-1"
    for secret, sent, when in (("t", body, now), ("s", body + b" ", now), ("s", body, now + 301)):
        with pytest.raises(hooks.Forged):
            hooks.verify(secret, headers, sent, now=when)
    with pytest.raises(hooks.Forged):
        hooks.verify("s", {**headers, hooks.DELIVERY_HEADER: "d-2"}, body, now=now)  # id is signed too
    seen = hooks.Deliveries(tmp_path / "seen")
    assert seen.first_time("d-1") and not seen.first_time("d-1")
    assert hooks.Deliveries(tmp_path / "seen").first_time("d-1") is False  # another worker process


def test_a_server_that_refuses_the_url_says_what_it_allows(env: dict[str, str]) -> None:
    """MLflow's default: https only, public addresses only; the tool names both rules in one line."""
    from registry.client import Registry
    from registry.config import load_settings

    class Strict(BaseHTTPRequestHandler):
        def _answer(self, status: int, body: dict[str, str]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # the list of webhooks: none
            self._answer(200, {})

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            message = "Invalid webhook URL scheme: 'http'. Allowed schemes are: https."
            self._answer(400, {"error_code": "INVALID_PARAMETER_VALUE", "message": message})

        def log_message(self, *args: Any) -> None:
            pass

    with ThreadingHTTPServer(("127.0.0.1", 0), Strict) as strict:
        threading.Thread(target=strict.serve_forever, daemon=True).start()
        uri = f"http://127.0.0.1:{strict.server_address[1]}"
        registry = Registry(load_settings({**env, "MLFLOW_TRACKING_URI": uri}, env_file=None))
        with pytest.raises(BadInput) as refused:
            hooks.add(registry, "http://127.0.0.1:9/events", "strict-test")
        strict.shutdown()
    message = str(refused.value)
    assert f"the MLflow server at {uri} refuses http://127.0.0.1:9/events" in message
    assert "Allowed schemes are: https" in message and "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS" in message


def test_hook_input_is_checked_before_any_request(cli: Any) -> None:
    for args in (
        ["hooks", "add", "--url", "ftp://host/x"],
        ["hooks", "add", "--url", "http://host/x", "--name", "-bad-"],
        ["hooks", "add", "--url", "http://host/x", "--events", "model_version.exploded"],
        ["hooks", "remove", "--name", "a b"],
        ["hooks"],
    ):
        outcome = cli(*args, "--tracking-uri", "http://127.0.0.1:9")
        assert (outcome.code, outcome.err.count("\n")) == (2, 1), (args, outcome.err)
