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


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        """Clients that drop a kept-alive connection are normal here, not errors to print."""


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
                server.requests.append(
                    {"path": self.path, "agent": self.headers.get("User-Agent", "")}
                    | {k: v[0] for k, v in fields.items()}
                )
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

        self.httpd = _Server(("127.0.0.1", 0), Handler)
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


class StaticServer:
    """Files of a directory over HTTP on 127.0.0.1, with byte ranges (as object stores serve them).

    ``down()`` makes every later request fail with 503, as a storage outage would.
    """

    def __init__(self, root: Path):
        self.root = Path(root)
        self.failing = False
        self.requests = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self, head=False):
                server.requests += 1
                path = (server.root / self.path.split("?")[0].lstrip("/")).resolve()
                if server.failing:
                    self.send_error(503, "Service Unavailable")
                    return
                if server.root.resolve() not in path.parents or not path.is_file():
                    self.send_error(404, "Not Found")
                    return
                data = path.read_bytes()
                first, last = 0, len(data) - 1
                ranged = self.headers.get("Range", "").startswith("bytes=")
                if ranged:
                    start, _, end = self.headers["Range"][6:].partition("-")
                    if start:
                        first, last = int(start), min(int(end) if end else last, last)
                    else:
                        first = max(len(data) - int(end), 0)
                self.send_response(206 if ranged else 200)
                self.send_header("Accept-Ranges", "bytes")
                if ranged:
                    self.send_header("Content-Range", f"bytes {first}-{last}/{len(data)}")
                self.send_header("Content-Length", str(last - first + 1))
                self.end_headers()
                if not head:
                    self.wfile.write(data[first : last + 1])

            def do_HEAD(self):
                self.do_GET(head=True)

            def log_message(self, *args):
                pass

        self.httpd = _Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, relative: str) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/{relative}"

    def down(self) -> None:
        self.failing = True

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
