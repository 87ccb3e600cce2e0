"""A local webhook receiver on 127.0.0.1 for the notification tests.

It answers by path — ``/ok`` 200, ``/fail`` 500, ``/ratelimit`` 429 with ``Retry-After``,
``/slow`` after a delay longer than the client's timeout, ``/gone`` 410, ``/redirect`` 302,
``/flaky`` 500 the first time and 200 after — and verifies each call's ``X-Signature`` on
the receiving side, as a real receiver would: hex HMAC-SHA256 of the raw body with the
secret it shares with the sender.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    path: str
    headers: dict
    body: bytes
    signature_ok: bool

    @property
    def json(self) -> dict:
        return json.loads(self.body)


@dataclass
class Receiver:
    secret: str
    slow_seconds: float = 2.0
    retry_after: str = "120"
    calls: list[Received] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def calls_to(self, path: str) -> list[Received]:
        with self._lock:
            return [c for c in self.calls if c.path == path]

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep test output quiet
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                expected = hmac.new(receiver.secret.encode(), body, hashlib.sha256).hexdigest()
                given = self.headers.get("X-Signature", "")
                with receiver._lock:
                    receiver.calls.append(
                        Received(
                            self.path,
                            dict(self.headers),
                            body,
                            hmac.compare_digest(expected, given),
                        )
                    )
                    earlier = sum(1 for c in receiver.calls if c.path == self.path)
                path = self.path
                if path == "/slow":
                    time.sleep(receiver.slow_seconds)
                    self._answer(200, b"late")
                elif path == "/ok":
                    self._answer(200, b'{"ok":true}')
                elif path == "/fail":
                    self._answer(500, b"internal error")
                elif path == "/ratelimit":
                    self._answer(429, b"slow down", {"Retry-After": receiver.retry_after})
                elif path == "/gone":
                    self._answer(410, b"this hook was removed")
                elif path == "/redirect":
                    self._answer(302, b"", {"Location": "http://10.0.0.1/inside"})
                elif path == "/flaky":
                    self._answer(500 if earlier == 1 else 200, b"flaky")
                else:
                    self._answer(404, b"no such hook")

            def _answer(self, code: int, body: bytes, headers: dict | None = None) -> None:
                try:
                    self.send_response(code)
                    for key, value in (headers or {}).items():
                        self.send_header(key, value)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (the timeout case)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
