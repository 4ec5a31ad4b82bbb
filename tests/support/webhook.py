"""Local HTTP servers for tests of the webhook and the health check (127.0.0.1 only)."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def local_server(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[tuple[str, list]]:
    """Serve `handler` (a subclass with a `received` list) on a free port of 127.0.0.1.

    Yields (url of /hook, the list the handler appends what it received to); each use gets a
    fresh list. Stopped, and its thread joined, on exit.
    """
    fresh = type("Handler", (handler,), {"received": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), fresh)
    server.timeout = 1
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", fresh.received
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
