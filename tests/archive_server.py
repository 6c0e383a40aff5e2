"""A real HTTP server on 127.0.0.1 that plays a TAP archive: it serves saved real answers, or fails.

``behaviour`` is one of ``serve`` (answer every query with ``answer``, a saved VOTable),
``error`` (HTTP 500) or ``slow`` (answer after ``delay`` seconds, past the client's timeout).
``refused_url()`` names a port where nothing listens. Every request is counted and its form
fields kept, so tests see exactly what the client asked and how often.
"""

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs


class ArchiveServer:
    def __init__(self, behaviour: str = "serve", answer: Path | bytes | None = None, delay: float = 2.0):
        self.behaviour = behaviour
        self.answer = answer.read_bytes() if isinstance(answer, Path) else answer
        self.delay = delay
        self.requests: list[dict] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                fields = parse_qs(self.rfile.read(length).decode())
                server.requests.append({"path": self.path, **{k: v[0] for k, v in fields.items()}})
                if server.behaviour == "error":
                    self.send_error(500, "Internal Server Error")
                    return
                if server.behaviour == "slow":
                    time.sleep(server.delay)
                self.send_response(200)
                self.send_header("Content-Type", "application/x-votable+xml")
                self.send_header("Content-Length", str(len(server.answer)))
                self.end_headers()
                self.wfile.write(server.answer)

            do_GET = do_POST

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/tap"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def refused_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (the port was free a moment ago)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/tap"
