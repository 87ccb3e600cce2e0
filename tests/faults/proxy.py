"""A TCP proxy the test owns, to cut, drop or hang a server without touching the server.

The machine's PostgreSQL and Redis are shared: a fault test never stops them. It points a
client at a :class:`FaultProxy` instead and changes the proxy's mode:

- ``forward``: bytes pass both ways (the default);
- ``hang``: connections stay open but nothing is answered: what is sent is swallowed, and new
  connections are accepted and then left alone (a hung host, a stuck proxy);
- ``drop``: every connection is closed at once, and new ones are closed as soon as they are
  accepted (the server went away).

Going back to ``forward`` closes the connections that were hung (their bytes were lost, so
they cannot carry on); clients reconnect. One thread, one selector, only 127.0.0.1.
Also runnable as a script (``python -m tests.faults.proxy HOST:PORT``, modes read from
standard input) for the fault scripts in ``scripts/``.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import sys
import threading

FORWARD, HANG, DROP = "forward", "hang", "drop"


class FaultProxy:
    def __init__(self, *, upstream: tuple[str, int], port: int = 0) -> None:
        self.upstream = upstream
        self.mode = FORWARD
        self.listener = socket.create_server(("127.0.0.1", port))
        self.listener.setblocking(False)
        self.port = self.listener.getsockname()[1]
        self.accepted = 0
        self._peers: dict[socket.socket, socket.socket | None] = {}
        self._lock = threading.Lock()
        self._closed = False
        self._sel = selectors.DefaultSelector()
        self._sel.register(self.listener, selectors.EVENT_READ, "listen")
        self._wake_r, self._wake_w = socket.socketpair()
        self._sel.register(self._wake_r, selectors.EVENT_READ, "wake")
        self._thread = threading.Thread(target=self._loop, name="fault-proxy", daemon=True)
        self._thread.start()

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    # --- modes ---------------------------------------------------------------------------------

    def set_mode(self, mode: str) -> None:
        assert mode in (FORWARD, HANG, DROP), mode
        with self._lock:
            previous, self.mode = self.mode, mode
            if mode == DROP or (mode == FORWARD and previous == HANG):
                for sock in list(self._peers):
                    self._close(sock)
        self._wake_w.send(b"x")

    def forward(self) -> None:
        self.set_mode(FORWARD)

    def hang(self) -> None:
        self.set_mode(HANG)

    def drop(self) -> None:
        self.set_mode(DROP)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            for sock in list(self._peers):
                self._close(sock)
        self._wake_w.send(b"x")
        self._thread.join(timeout=5)
        self.listener.close()

    # --- the loop ------------------------------------------------------------------------------

    def _loop(self) -> None:
        while True:
            with self._lock:
                if self._closed:
                    return
            for key, _ in self._sel.select(timeout=0.5):
                with self._lock:
                    if key.data == "listen":
                        self._accept()
                    elif key.data == "wake":
                        self._wake_r.recv(4096)
                    elif key.fileobj in self._peers:
                        self._pump(key.fileobj)

    def _accept(self) -> None:
        try:
            client, _ = self.listener.accept()
        except BlockingIOError:
            return
        self.accepted += 1
        if self.mode == DROP:
            client.close()
            return
        upstream = None
        if self.mode == FORWARD:
            try:
                upstream = socket.create_connection(self.upstream, timeout=2)
            except OSError:
                client.close()
                return
            upstream.setblocking(True)
            self._peers[upstream] = client
            self._sel.register(upstream, selectors.EVENT_READ, "peer")
        client.setblocking(True)
        self._peers[client] = upstream
        self._sel.register(client, selectors.EVENT_READ, "peer")

    def _pump(self, sock: socket.socket) -> None:
        try:
            data = sock.recv(65536)
        except OSError:
            data = b""
        if not data:
            self._close(sock)
            return
        peer = self._peers.get(sock)
        if self.mode != FORWARD or peer is None:
            return  # hung: swallowed, nothing answered
        try:
            peer.sendall(data)
        except OSError:
            self._close(sock)

    def _close(self, sock: socket.socket) -> None:
        peer = self._peers.pop(sock, None)
        for one in (sock, peer):
            if one is None:
                continue
            self._peers.pop(one, None)
            with contextlib.suppress(KeyError, ValueError):
                self._sel.unregister(one)
            one.close()


def main() -> None:
    """``python -m tests.faults.proxy HOST:PORT [LISTEN_PORT]``: prints the port, then reads
    ``forward`` / ``hang`` / ``drop`` lines from standard input until it closes."""
    host, _, port = sys.argv[1].rpartition(":")
    listen = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    proxy = FaultProxy(upstream=(host, int(port)), port=listen)
    print(proxy.port, flush=True)
    for line in sys.stdin:
        if line.strip():
            proxy.set_mode(line.strip())
            print(f"mode {proxy.mode}", flush=True)
    proxy.close()


if __name__ == "__main__":
    main()
