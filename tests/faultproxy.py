"""Reverse proxies on 127.0.0.1 that forward to an MLflow server and misbehave on purpose.

`fault_proxy` loses answers: `drop_answers` lists path suffixes; the first request to each is
forwarded (the server applies it) and then the connection is closed without an answer, as when a
response is lost on the network. `StallProxy` freezes one client for longer than its lock lease.
"""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


@contextmanager
def fault_proxy(upstream: str, drop_answers: tuple[str, ...] = ()) -> Iterator[str]:
    target = urlsplit(upstream)
    pending = list(drop_answers)
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def _forward(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            connection = http.client.HTTPConnection(target.hostname or "127.0.0.1", target.port, timeout=30)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
            connection.request(self.command, self.path, body=body, headers=headers)
            answer = connection.getresponse()
            payload = answer.read()
            with lock:
                drop = next((suffix for suffix in pending if self.path.split("?")[0].endswith(suffix)), None)
                if drop:
                    pending.remove(drop)
            if drop:
                self.close_connection = True
                return
            self.send_response(answer.status)
            for key, value in answer.getheaders():
                if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PATCH = do_DELETE = _forward

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class StallProxy:
    """A reverse proxy that slows every request by `delay` seconds (a distant server), and freezes its
    client: from a trigger request on, nothing passes for a while.

    `trigger(method, path, body)` picks the request where the freeze starts (the first match; paths
    without `/api/2.0/mlflow`). With `after=False` the trigger itself is held: it reaches the server
    only after the freeze, as a request delayed in flight. With `after=True` it is applied at once
    and the freeze starts before its answer goes back. While frozen, every request (the client's
    lease renewals too) waits, then goes on to the server. `pause` and `resume`, when given, are
    called as the freeze starts and ends (to stop the client's process itself, say). The freeze
    lasts at least `stall` seconds and until `thaw()` is called (at most `longest` seconds), so a
    test can let another client act meanwhile, deterministically; with `hold=False` requests are
    not held (the freeze is then only what `pause` does). `requests` lists `METHOD /path` of each
    request in order of arrival, `held` those that waited; `frozen` is set as the freeze starts.
    """

    def __init__(
        self,
        upstream: str,
        trigger: Callable[[str, str, bytes], bool] = lambda method, path, body: False,
        *,
        stall: float = 0.0,
        after: bool = False,
        hold: bool = True,
        delay: float = 0.0,
        pause: Callable[[], None] | None = None,
        resume: Callable[[], None] | None = None,
        longest: float = 60.0,
    ) -> None:
        self.target = urlsplit(upstream)
        self.trigger, self.stall, self.after, self.longest = trigger, stall, after, longest
        self.pause, self.resume, self.hold, self.delay = pause, resume, hold, delay
        self.requests: list[str] = []
        self.held: list[str] = []
        self.frozen = threading.Event()
        self._over = threading.Event()
        self._thawed = threading.Event()
        self._triggered = False
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="stall-proxy", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> StallProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.thaw()
        if self.frozen.is_set():
            self._over.wait(self.stall + 5)
        self._server.shutdown()
        self._server.server_close()

    def thaw(self) -> None:
        """End the freeze, once `stall` seconds have passed since it began."""
        self._thawed.set()

    def _freeze(self) -> None:
        if self.pause:
            self.pause()
        self.frozen.set()
        started = time.monotonic()

        def wait_out() -> None:
            self._thawed.wait(self.longest)
            time.sleep(max(0.0, started + self.stall - time.monotonic()))
            if self.resume:
                self.resume()
            self._over.set()

        threading.Thread(target=wait_out, name="stall-proxy-thaw", daemon=True).start()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                path = self.path.split("?")[0].replace("/api/2.0/mlflow/", "/")
                with proxy._lock:
                    proxy.requests.append(f"{self.command} {path}")
                    hit = not proxy._triggered and proxy.trigger(self.command, path, body)
                    proxy._triggered = proxy._triggered or hit
                    if hit and not proxy.after:
                        proxy._freeze()
                    hold = proxy.hold and proxy.frozen.is_set() and not proxy._over.is_set()
                    hold = hold and not (hit and proxy.after)
                    if hold:
                        proxy.held.append(f"{self.command} {path}")
                if hold:
                    proxy._over.wait()
                if proxy.delay:
                    time.sleep(proxy.delay)
                target = proxy.target
                connection = http.client.HTTPConnection(
                    target.hostname or "127.0.0.1", target.port, timeout=60
                )
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                connection.request(self.command, self.path, body=body, headers=headers)
                answer = connection.getresponse()
                payload = answer.read()
                connection.close()
                if hit and proxy.after:
                    with proxy._lock:
                        proxy._freeze()  # before the answer leaves: the client's next request is held
                self.send_response(answer.status)
                for key, value in answer.getheaders():
                    if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PATCH = do_DELETE = _forward

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler
