"""A local Segment-compatible sink: the edge of the world for the push's tests.

A threaded HTTP server on 127.0.0.1 (random port) implementing ``POST /v1/batch`` like
Segment's Tracking API: Basic auth with the write key as user name (401 when wrong), gzip
bodies, and Segment's size limits answered with 400 (body over 500 KB, a message over 32 KB,
more than 2,500 messages). It records every message it accepted, and can be scripted to
answer the next N requests with 429 (+ Retry-After), 5xx, 401, 400, slowly, or by dropping
the connection without an answer.
"""

from __future__ import annotations

import base64
import gzip
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson

MAX_BODY_BYTES = 500 * 1024
MAX_MESSAGE_BYTES = 32 * 1024
MAX_MESSAGES = 2500


@dataclass
class Received:
    status: int
    messages: int
    body_bytes: int
    gzipped: bool
    action: str = ""


@dataclass
class Sink:
    write_key: str = "wk_test_123"
    messages: list[dict] = field(default_factory=list)
    requests: list[Received] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._script: deque[tuple[str, dict]] = deque()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- control -------------------------------------------------------------------------
    def start(self) -> Sink:
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # quiet test output
                pass

            def do_POST(self) -> None:
                sink._handle(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def script(self, action: str, *, times: int = 1, **options) -> None:
        """Answer the next ``times`` requests with ``action``: "429" (retry_after=seconds),
        "500", "503", "401", "400" (body=...), "slow" (delay=seconds, then normal) or "drop".
        """
        with self._lock:
            for _ in range(times):
                self._script.append((action, options))

    def reset(self) -> None:
        with self._lock:
            self.messages.clear()
            self.requests.clear()
            self._script.clear()

    # -- views ---------------------------------------------------------------------------
    def by_anonymous_id(self) -> dict[str, list[dict]]:
        out: dict[str, list[dict]] = {}
        for message in self.messages:
            out.setdefault(message.get("anonymousId"), []).append(message)
        return out

    def of_type(self, kind: str, event: str | None = None) -> list[dict]:
        return [
            m
            for m in self.messages
            if m.get("type") == kind and (event is None or m.get("event") == event)
        ]

    # -- the endpoint --------------------------------------------------------------------
    def _answer(self, handler, status: int, payload: dict, headers: dict | None = None) -> None:
        body = orjson.dumps(payload)
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(body)

    def _record(self, **kwargs) -> None:
        with self._lock:
            self.requests.append(Received(**kwargs))

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length)
        gzipped = handler.headers.get("Content-Encoding", "").lower() == "gzip"
        with self._lock:
            action, options = self._script.popleft() if self._script else ("", {})
        base = {"messages": 0, "body_bytes": len(raw), "gzipped": gzipped, "action": action}

        if action == "drop":
            # Read the request, then hang up without a status line: a dropped connection.
            self._record(status=0, **base)
            handler.close_connection = True
            return
        if action == "slow":
            time.sleep(options.get("delay", 1.0))
        if action in {"429", "500", "502", "503", "401", "403", "400"}:
            status = int(action)
            headers = {}
            if status == 429:
                headers["Retry-After"] = str(options.get("retry_after", 1))
            if status in {401, 403}:
                headers["WWW-Authenticate"] = "Basic"
            self._record(status=status, **base)
            self._answer(
                handler, status, {"success": False, "message": options.get("body", action)}, headers
            )
            return

        if handler.path.rstrip("/") != "/v1/batch":
            self._record(status=404, **base)
            self._answer(handler, 404, {"success": False, "message": "not found"})
            return
        if not self._authorised(handler.headers.get("Authorization", "")):
            self._record(status=401, **base)
            self._answer(
                handler,
                401,
                {"success": False, "message": "invalid write key"},
                {"WWW-Authenticate": "Basic"},
            )
            return
        try:
            body = gzip.decompress(raw) if gzipped else raw
        except OSError:
            self._record(status=400, **base)
            self._answer(handler, 400, {"success": False, "message": "bad gzip"})
            return
        base["body_bytes"] = len(body)
        if len(body) > MAX_BODY_BYTES:
            self._record(status=400, **base)
            self._answer(handler, 400, {"success": False, "message": "Request body too large"})
            return
        try:
            batch = orjson.loads(body)["batch"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            self._record(status=400, **base)
            self._answer(handler, 400, {"success": False, "message": "invalid JSON"})
            return
        base["messages"] = len(batch)
        if len(batch) > MAX_MESSAGES:
            self._record(status=400, **base)
            self._answer(handler, 400, {"success": False, "message": "too many messages"})
            return
        for message in batch:
            if len(orjson.dumps(message)) > MAX_MESSAGE_BYTES:
                self._record(status=400, **base)
                self._answer(handler, 400, {"success": False, "message": "Message too large"})
                return
        with self._lock:
            self.messages.extend(batch)
        self._record(status=200, **base)
        self._answer(handler, 200, {"success": True})

    def _authorised(self, header: str) -> bool:
        if not header.startswith("Basic "):
            return False
        try:
            decoded = base64.b64decode(header[6:]).decode()
        except (ValueError, UnicodeDecodeError):
            return False
        user, _, password = decoded.partition(":")
        return user == self.write_key and password == ""
