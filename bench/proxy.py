"""A small counting reverse proxy: forwards HTTP to one upstream server and records every request.

Standard library only (http.server + http.client), threaded, bound to 127.0.0.1. Used by the
benchmark and by tests/test_request_counts.py to count the requests a command makes:

    with CountingProxy("http://127.0.0.1:5000") as proxy:
        ...  # point the client at proxy.url
        print(proxy.count(), proxy.breakdown())
"""

from __future__ import annotations

import collections
import http.client
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

# Headers that describe one hop, not the message: never forwarded as they are.
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "content-length",
}
UPSTREAM_TIMEOUT = 120.0
_ID = re.compile(r"\bm-[0-9a-f]{32}\b")  # logged model ids
_ARTIFACT = re.compile(r"^(/api/2\.0/mlflow-artifacts/artifacts/).*")


class CountingProxy:
    """Forward every request to `upstream` (http://host:port) and remember method, path and status."""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"upstream {upstream!r} is not an http://host:port address")
        self.upstream_host = parts.hostname
        self.upstream_port = parts.port or 80
        self._lock = threading.Lock()
        self._records: list[tuple[str, str, int]] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> CountingProxy:
        self._thread = threading.Thread(target=self._server.serve_forever, name="counting-proxy", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> CountingProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def record(self, method: str, path: str, status: int) -> None:
        with self._lock:
            self._records.append((method, path, status))

    def reset(self) -> None:
        """Forget the requests seen so far."""
        with self._lock:
            self._records.clear()

    def requests(self) -> list[tuple[str, str, int]]:
        """(method, path without query, status) of every request since the last reset, in order."""
        with self._lock:
            return list(self._records)

    def count(self) -> int:
        with self._lock:
            return len(self._records)

    def breakdown(self) -> dict[str, int]:
        """`METHOD /path [status]` -> how many times, in order of first appearance."""
        counts: collections.Counter[str] = collections.Counter()
        for method, path, status in self.requests():
            short = _ID.sub("{id}", path.replace("/api/2.0/mlflow/", "/"))
            short = _ARTIFACT.sub(r"\1…", short)
            counts[f"{method} {short}" + ("" if status < 300 else f" [{status}]")] += 1
        return dict(counts)


def _handler_for(proxy: CountingProxy) -> type[BaseHTTPRequestHandler]:
    local = threading.local()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep the client's connection alive, like a real server

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _body(self) -> bytes | None:
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                chunks = []
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass
                        return b"".join(chunks)
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else None

        def _upstream(self, fresh: bool = False) -> http.client.HTTPConnection:
            conn = getattr(local, "conn", None)
            if conn is None or fresh:
                if conn is not None:
                    conn.close()
                conn = http.client.HTTPConnection(
                    proxy.upstream_host, proxy.upstream_port, timeout=UPSTREAM_TIMEOUT
                )
                local.conn = conn
            return conn

        def _forward(self) -> None:
            body = self._body()
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            headers["Host"] = f"{proxy.upstream_host}:{proxy.upstream_port}"
            if body is not None:
                headers["Content-Length"] = str(len(body))
            for attempt in (0, 1):  # a kept-alive upstream connection may have been closed
                conn = self._upstream(fresh=attempt == 1)
                try:
                    conn.request(self.command, self.path, body=body, headers=headers)
                    answer = conn.getresponse()
                    data = answer.read()
                    break
                except (http.client.HTTPException, ConnectionError):
                    if attempt == 1:
                        raise
            proxy.record(self.command, self.path.split("?", 1)[0], answer.status)
            self.send_response_only(answer.status, answer.reason)
            for key, value in answer.getheaders():
                if key.lower() not in HOP_BY_HOP:
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _forward

    return Handler
