"""A scripted HTTP server on 127.0.0.1 for the fetch tests, and a Google Drive stand-in.

Each route maps a path to a :class:`Reply` (or a function of the query returning one). Replies
can omit Content-Length, cut the body short, or serve a web page; static 200 replies honour
``Range``. :func:`drive_routes` imitates the three Drive endpoints gdown uses (``/uc`` with the
"cannot scan for viruses" confirmation, ``drive.usercontent.google.com/download`` and
``embeddedfolderview``); :func:`route_drive_to` sends gdown's requests for those hosts here and
refuses every other host, so no test can reach the network.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlparse

import requests
from requests.adapters import HTTPAdapter

DRIVE_HOSTS = ("drive.google.com", "docs.google.com", "drive.usercontent.google.com")


@dataclass
class Reply:
    body: bytes = b""
    status: int = 200
    content_type: str = "application/octet-stream"
    length: bool = True  # send Content-Length (False: the body ends when the connection closes)
    cut: int | None = None  # close the connection after this many body bytes
    headers: dict[str, str] = field(default_factory=dict)


Route = Reply | Callable[[dict[str, list[str]]], Reply]


class LocalServer:
    """``with LocalServer(routes) as srv``: ``srv.base`` is the URL, ``srv.requests`` the log."""

    def __init__(self, routes: dict[str, Route]):
        self.routes = routes
        self.requests: list[tuple[str, str, str | None]] = []  # (path, query, Range header)
        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.base = f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def __enter__(self) -> LocalServer:
        threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def paths(self) -> list[str]:
        return [p for p, _, _ in self.requests]

    def _handler(self):
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep test output quiet
                pass

            def do_GET(self):
                url = urlparse(self.path)
                server.requests.append((url.path, url.query, self.headers.get("Range")))
                route = server.routes.get(url.path, Reply(b"", status=404))
                reply = route(parse_qs(url.query)) if callable(route) else route
                self._send(reply)

            def _send(self, reply: Reply):
                body, status = reply.body, reply.status
                rng = self.headers.get("Range")
                if rng and status == 200 and reply.length:
                    start = int(rng.split("=")[1].split("-")[0])
                    if start >= len(body):
                        status, body = 416, b""
                    else:
                        status, body = 206, body[start:]
                        self._range = f"bytes {start}-{len(reply.body) - 1}/{len(reply.body)}"
                self.send_response(status)
                self.send_header("Content-Type", reply.content_type)
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                if status == 206:
                    self.send_header("Content-Range", self._range)
                if reply.length:
                    self.send_header("Content-Length", str(len(body)))
                else:
                    self.send_header("Connection", "close")
                    self.close_connection = True
                self.end_headers()
                if reply.cut is not None:
                    self.wfile.write(body[: reply.cut])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                self.wfile.write(body)

        return Handler


def drive_routes(files: dict[str, tuple[str, bytes]], folders: dict[str, tuple[str, list[str]]],
                 token: str = "t0k") -> dict[str, Route]:  # fmt: skip
    """Drive's endpoints: ``files`` id -> (name, bytes); ``folders`` id -> (title, file ids)."""

    def attachment(file_id: str) -> Reply:
        name, data = files[file_id]
        return Reply(data, headers={"Content-Disposition": f'attachment; filename="{name}"'})

    def uc(query) -> Reply:
        file_id = query.get("id", [""])[0]
        if file_id not in files:
            return Reply(b"<html><body><p>Not Found</p></body></html>", 404, "text/html; charset=utf-8")
        page = (  # the "cannot scan for viruses" page: a form that adds the confirm token
            '<html><body><form id="download-form" action="https://drive.usercontent.google.com/download"'
            f' method="get"><input type="hidden" name="id" value="{file_id}">'
            '<input type="hidden" name="export" value="download">'
            f'<input type="hidden" name="confirm" value="{token}"></form></body></html>'
        )
        return Reply(page.encode(), content_type="text/html; charset=utf-8")

    def usercontent(query) -> Reply:
        file_id = query.get("id", [""])[0]
        if query.get("confirm") != [token] or file_id not in files:
            return Reply(b"<html>denied</html>", 403, "text/html")
        return attachment(file_id)

    def folder_view(query) -> Reply:
        folder_id = query.get("id", [""])[0]
        if folder_id not in folders:
            return Reply(b"<html>no</html>", 404, "text/html")
        title, ids = folders[folder_id]
        links = "".join(f'<a href="https://drive.google.com/file/d/{i}/view">{files[i][0]}</a>' for i in ids)
        return Reply(f"<html><head><title>{title}</title></head><body>{links}</body></html>".encode(),
                     content_type="text/html; charset=utf-8")  # fmt: skip

    return {"/drive.google.com/uc": uc, "/drive.usercontent.google.com/download": usercontent,
            "/drive.google.com/embeddedfolderview": folder_view}  # fmt: skip


def route_drive_to(monkeypatch, base: str) -> None:
    """Send requests for Drive hosts to ``base``/<host>/<path>; any other non-local host fails."""
    original = HTTPAdapter.send

    def send(self, request, **kwargs):
        url = urlparse(request.url)
        if url.hostname in DRIVE_HOSTS:
            request.url = f"{base}/{url.hostname}{url.path}" + (f"?{url.query}" if url.query else "")
            kwargs["proxies"] = {}
        elif url.hostname != "127.0.0.1":
            raise requests.ConnectionError(f"tests never use the network ({request.url})")
        return original(self, request, **kwargs)

    monkeypatch.setattr(HTTPAdapter, "send", send)
