"""`serve`: MLflow's scoring protocol for the version an alias points at, following the alias.

The requests are answered by MLflow's own scoring code (`mlflow.pyfunc.scoring_server.invocations`:
the four JSON input formats, CSV, parameters, its error bodies), called with the model a `Follower`
holds at the moment the request arrives; around it a small ASGI app adds what following needs:
`X-Model-Version` / `X-Model-Alias` on every response, `GET /model`, `/ping` only once a model is
loaded, malformed input as 400 (never 500), and `POST /hooks`, where the MLflow server's signed
webhook deliveries make the follower read the alias at once instead of at its next poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import signal
import socket
import tempfile
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

from registry import hooks
from registry.config import Settings, load_settings
from registry.errors import BadInput, NotFound, RegistryError, first_line
from registry.follow import Follower, Loaded

log = logging.getLogger("registry.serve")
OPTIONS_ENV = "REGISTRY_SERVE_OPTIONS"  # how the worker processes get their options
JSON = b"application/json"
NOT_LOADED = (
    503,
    b'{"error_code": "TEMPORARILY_UNAVAILABLE", "message": "no model loaded yet: see GET /model"}',
    JSON,
)
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


@dataclasses.dataclass(frozen=True)
class Options:
    """What every worker process needs to know besides the settings."""

    model: str
    alias: str
    workers: int
    state: str  # a folder shared by the workers: downloads, the nudge file, accepted deliveries
    hook_secret: str  # empty: events are off


class App:
    """The ASGI application of one worker process (see the module's docstring)."""

    def __init__(self, settings: Settings, options: Options) -> None:
        from mlflow.environment_variables import MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT

        state = Path(options.state)
        self.options = options
        nudge = state / "nudge" if options.workers > 1 else None
        self.follower = Follower(
            settings, options.model, options.alias, state / f"models-{os.getpid()}", nudge
        )
        self.follower.events = "on" if options.hook_secret else "off"
        self.deliveries = hooks.Deliveries(state / "deliveries") if options.hook_secret else None
        self.timeout = float(MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT.get())  # type: ignore[no-untyped-call]
        self.alias_header = options.alias.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        loaded = self.follower.current  # this request's model, whatever happens to the alias meanwhile
        method, path = scope["method"], scope["path"]
        if path == "/invocations" and method == "POST":
            content_type = _header(scope, b"content-type")
            status, body, kind = await self._invocations(loaded, await _body(receive), content_type)
        elif path in ("/ping", "/health") and method == "GET":
            status, body, kind = (200, b"\n", JSON) if loaded else NOT_LOADED
        elif path == "/model" and method == "GET":
            status, body, kind = 200, json.dumps(self.follower.state(loaded)).encode(), JSON
        elif path == "/hooks" and method == "POST":
            status, body, kind = self._hook(scope, await _body(receive))
        elif path == "/version" and method == "GET":
            from mlflow.version import VERSION

            status, body, kind = 200, VERSION.encode(), JSON
        elif path in ("/invocations", "/ping", "/health", "/model", "/hooks", "/version"):
            status, body, kind = _error(405, "BAD_REQUEST", f"{method} is not allowed on {path}")
        else:
            status, body, kind = _error(404, "ENDPOINT_NOT_FOUND", f"no endpoint {path}")
        version = str(loaded.version).encode() if loaded else b"none"
        headers = [
            (b"content-type", kind),
            (b"content-length", str(len(body)).encode()),
            (b"x-model-version", version),
            (b"x-model-alias", self.alias_header),
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.follower.start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.follower.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _invocations(
        self, loaded: Loaded | None, data: bytes, content_type: str
    ) -> tuple[int, bytes, bytes]:
        """MLflow's scoring of `data` by `loaded`; any failure is MLflow's JSON error body, 4xx."""
        from mlflow.pyfunc.scoring_server import invocations

        if loaded is None:
            return NOT_LOADED
        work = asyncio.to_thread(invocations, data, content_type, loaded.model, loaded.input_schema)
        try:
            result = await asyncio.wait_for(work, self.timeout)
        except asyncio.TimeoutError:
            return 504, b"Request processing time exceeded limit", JSON  # as MLflow answers it
        except Exception as exc:  # MLflow's own errors carry their body; anything else is bad input
            return _scoring_error(exc)
        return result.status, result.response.encode(), result.mimetype.encode()

    def _hook(self, scope: Scope, body: bytes) -> tuple[int, bytes, bytes]:
        """A webhook delivery: verified, never seen before, then a nudge when it is about our alias."""
        if self.deliveries is None:
            return _error(404, "ENDPOINT_NOT_FOUND", "events are off here: SERVE_HOOK_URL is not set")
        headers: dict[str, str] = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            delivery = hooks.verify(self.options.hook_secret, headers, body)
        except hooks.Forged as exc:
            log.warning("refused a webhook delivery: %s", exc)
            return _error(401, "UNAUTHENTICATED", str(exc))
        if not self.deliveries.first_time(delivery):
            log.warning("refused a replayed webhook delivery %s", delivery)
            return _error(
                409, "RESOURCE_ALREADY_EXISTS", f"delivery {delivery} was accepted before: a replay"
            )
        try:
            payload = json.loads(body)
            data = payload.get("data") or {}
            ours = payload.get("entity") == "model_version_alias" and (
                data.get("name"),
                data.get("alias"),
            ) == (
                self.options.model,
                self.options.alias,
            )
        except (ValueError, AttributeError):
            return _error(400, "BAD_REQUEST", "the delivery is not a JSON object")
        if ours:
            self.follower.nudge()
        return 200, json.dumps({"accepted": delivery, "follows": ours}).encode(), JSON


def _error(status: int, code: str, message: str) -> tuple[int, bytes, bytes]:
    """MLflow's JSON error body."""
    return status, json.dumps({"error_code": code, "message": message}).encode(), JSON


def _scoring_error(exc: Exception) -> tuple[int, bytes, bytes]:
    """The response to a failed scoring: MLflow's error body, with a 4xx status (the input is at fault:
    MLflow already reports a failing model as 400)."""
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import BAD_REQUEST

    message = f"Failed to read the input: {type(exc).__name__}: {first_line(exc)}"
    error: Any = exc if isinstance(exc, MlflowException) else MlflowException(message, BAD_REQUEST)
    if error.get_http_status_code() >= 500:
        error = MlflowException(error.message, BAD_REQUEST)
    return error.get_http_status_code(), error.serialize_as_json().encode(), JSON


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return ""


async def _body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


# ---------------------------------------------------------------------- running


def hook_name(model: str, alias: str, url: str) -> str:
    """The name of `serve`'s own webhook: the same for the same model, alias and URL, so that a
    restarted `serve` updates its webhook instead of adding one."""
    digest = hashlib.sha256(f"{model}@{alias} {url}".encode()).hexdigest()[:10]
    slug = re.sub(r"[^A-Za-z0-9._-]", "-", f"{model}-{alias}")[:44]
    return f"serve-{slug}-{digest}"


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, or BadInput when the address is taken (before any request)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio turns Nagle off (TCP_NODELAY) only on connections of such a socket;
    # without it every answer on a kept-alive connection waits ~40 ms for the client's delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise BadInput(
            f"cannot listen on {host}:{port} ({exc.strerror}); pick another --port or SERVE_PORT"
        ) from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def serve(settings: Settings, model: str, alias: str, host: str, port: int, workers: int) -> None:
    """Serve `model@alias` on host:port until stopped (SIGTERM: return; Ctrl-C: KeyboardInterrupt).

    Unreachable at once when the MLflow server does not answer; the alias need not be set yet (the
    server answers /ping with 503 until it is, and a version loads)."""
    from registry.client import Registry

    sock = bind(host, port)
    state = Path(tempfile.mkdtemp(prefix="registry-serve-"))
    registry: Any = None
    subscribed = None
    try:
        registry = Registry(settings)
        with contextlib.suppress(NotFound):  # one real request: the server answers its API
            registry.version_by_alias(model, alias)
        secret = ""
        if settings.serve_hook_url:
            secret, subscribed = _subscribe(registry, settings, model, alias)
        options = Options(model, alias, workers, str(state), secret)
        mode = f"events at {settings.serve_hook_url}" if subscribed else "no events"
        log.info(
            "serving %s@%s on http://%s:%s (%s; reading the alias every %g s)",
            model, alias, host, port, mode, settings.serve_poll_seconds,
        )  # fmt: skip
        _run(settings, options, sock)
    finally:
        sock.close()
        if subscribed:
            with contextlib.suppress(RegistryError):
                hooks.unsubscribe(registry, subscribed)
        shutil.rmtree(state, ignore_errors=True)


def _subscribe(registry: Any, settings: Settings, model: str, alias: str) -> tuple[str, str | None]:
    """Subscribe `serve`'s own webhook to the alias events: (secret, hook name), or ("", None) with a
    warning when the server refuses (polling still follows the alias)."""
    url = hooks.hook_url(settings.serve_hook_url)
    name = hook_name(model, alias, url)
    secret = settings.serve_hook_secret or secrets.token_urlsafe(32)
    try:
        hooks.add(registry, url, name, secret, hooks.ALIAS_EVENTS)
    except RegistryError as exc:
        log.warning("events off, following by polling only: %s", first_line(exc))
        return "", None
    return secret, name


class _Stopped(Exception):
    """SIGTERM: stop serving, clean up, exit 0."""


def _stop(signum: int, frame: Any) -> None:
    raise _Stopped


def _run(settings: Settings, options: Options, sock: socket.socket) -> None:
    import uvicorn

    previous = signal.signal(signal.SIGTERM, _stop)  # uvicorn re-raises SIGTERM after its shutdown
    quiet: dict[str, Any] = {"log_level": "warning", "access_log": False, "server_header": False}
    try:
        if options.workers == 1:
            uvicorn.Server(uvicorn.Config(App(settings, options), lifespan="on", **quiet)).run(sockets=[sock])
        else:  # uvicorn's supervisor starts each worker process from worker_app, on our socket
            import inspect

            from uvicorn.supervisors import Multiprocess

            os.environ[OPTIONS_ENV] = json.dumps(dataclasses.asdict(options))
            config = uvicorn.Config(f"{__name__}:worker_app", factory=True, workers=options.workers, **quiet)
            server = uvicorn.Server(config)
            older = "target" in inspect.signature(Multiprocess).parameters  # older uvicorn wants it
            Multiprocess(config, sockets=[sock], **({"target": server.run} if older else {})).run()
    except _Stopped:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)


def worker_app() -> App:
    """The app of one worker process when `serve --workers N` runs several (uvicorn's factory)."""
    configure_logging()
    options = Options(**json.loads(os.environ[OPTIONS_ENV]))
    return App(load_settings(), options)


def configure_logging() -> None:
    """`serve`'s own lines on stderr, one per event, with the time."""
    if not log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s serve: %(message)s", "%Y-%m-%dT%H:%M:%S"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False
