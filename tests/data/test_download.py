"""Fetching against a local HTTP server on 127.0.0.1 (Range, interruptions, checksums, 404, Drive)."""

from __future__ import annotations

import hashlib
import http.server
import io
import tarfile
import threading
from urllib.parse import parse_qs, urlparse

import pytest

from hqm.config import ArtefactConfig
from hqm.data.download import fetch_all, fetch_artefact
from hqm.errors import HqmError

PAYLOAD = bytes(range(256)) * 1200  # 300 kB
SHA = hashlib.sha256(PAYLOAD).hexdigest()


class _State:
    def __init__(self):
        self.requests: list[tuple[str, str | None]] = []
        self.cut_next = 0  # number of upcoming /flaky responses to cut mid-body


def _handler(state: _State):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # keep test output quiet
            pass

        def _send_body(self, data: bytes, cut: bool = False, content_type="application/octet-stream"):
            rng = self.headers.get("Range")
            start = int(rng.split("=")[1].split("-")[0]) if rng else 0
            if start >= len(data) and rng:
                self.send_response(416)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = data[start:]
            self.send_response(206 if rng else 200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            if rng:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.end_headers()
            if cut:
                self.wfile.write(body[: len(body) // 3])
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(2)
                return
            self.wfile.write(body)

        def do_GET(self):
            url = urlparse(self.path)
            state.requests.append((url.path, self.headers.get("Range")))
            if url.path == "/file.bin":
                self._send_body(PAYLOAD)
            elif url.path == "/flaky.bin":
                cut = state.cut_next > 0
                state.cut_next -= 1
                self._send_body(PAYLOAD, cut=cut)
            elif url.path == "/uc":
                query = parse_qs(url.query)
                if query.get("confirm") == ["t0k"] and query.get("id") == ["abc"]:
                    self._send_body(PAYLOAD)
                else:
                    page = (b'<html><form id="download-form" action="/uc" method="get">'
                            b'<input type="hidden" name="id" value="abc">'
                            b'<input type="hidden" name="export" value="download">'
                            b'<input type="hidden" name="confirm" value="t0k"></form></html>')  # fmt: skip
                    self._send_body(page, content_type="text/html; charset=utf-8")
            elif url.path == "/archive.tar.gz":
                self._send_body(_ARCHIVE)
            elif url.path == "/page.html":  # what a dead link or a Drive folder view serves
                self._send_body(b"<html><body>Sign in</body></html>", content_type="text/html")
            else:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()

    return Handler


def _make_archive() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("inner/hello.txt")
        data = b"hello"
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


_ARCHIVE = _make_archive()


@pytest.fixture()
def server():
    state = _State()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", state
    httpd.shutdown()
    httpd.server_close()


def _art(url, sha=SHA, **kw):
    return ArtefactConfig(url=url, sha256=sha, path="sub/file.bin", **kw)


def _fetch(name, art, tmp_path, **kw):
    return fetch_artefact(name, art, tmp_path, progress=False, sleep=lambda s: None, timeout=5, **kw)


def test_normal_download_lands_verified(server, tmp_path):
    base, state = server
    path = _fetch("f", _art(f"{base}/file.bin"), tmp_path)
    assert path.read_bytes() == PAYLOAD and not (tmp_path / "sub" / "file.bin.part").exists()
    assert state.requests == [("/file.bin", None)]


def test_interrupted_download_resumes_with_range(server, tmp_path):
    base, state = server
    state.cut_next = 2
    path = _fetch("f", _art(f"{base}/flaky.bin"), tmp_path, retries=3)
    assert path.read_bytes() == PAYLOAD
    ranges = [r for p, r in state.requests]
    assert ranges[0] is None and ranges[1] is not None and ranges[2] is not None
    starts = [int(r.split("=")[1].rstrip("-")) for r in ranges[1:]]
    assert 0 < starts[0] < starts[-1] < len(PAYLOAD)  # each retry resumed where the last stopped


def test_gives_up_after_retries_and_keeps_the_part(server, tmp_path):
    base, state = server
    state.cut_next = 10
    with pytest.raises(HqmError, match=r"artefact 'f': download .* failed after 2 attempts"):
        _fetch("f", _art(f"{base}/flaky.bin"), tmp_path, retries=1)
    assert (tmp_path / "sub" / "file.bin.part").exists() and not (tmp_path / "sub" / "file.bin").exists()
    state.cut_next = 0
    assert _fetch("f", _art(f"{base}/flaky.bin"), tmp_path).read_bytes() == PAYLOAD
    assert state.requests[-1][1] is not None  # the next run resumed the part


def test_wrong_checksum_is_an_error_and_leaves_nothing(server, tmp_path):
    base, _ = server
    with pytest.raises(HqmError, match=r"artefact 'f': checksum mismatch .* place it at .*file.bin"):
        _fetch("f", _art(f"{base}/file.bin", sha="0" * 64), tmp_path)
    assert list((tmp_path / "sub").iterdir()) == []


def test_404_is_an_error_naming_file_and_where_to_put_it(server, tmp_path):
    base, state = server
    with pytest.raises(HqmError, match=r"artefact 'f': HTTP 404 .*place it at .*sub/file.bin"):
        _fetch("f", _art(f"{base}/missing.bin"), tmp_path)
    assert len(state.requests) == 1  # a 404 is not retried


def test_file_placed_by_hand_is_used_without_network(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "file.bin").write_bytes(PAYLOAD)
    art = _art("http://127.0.0.1:9/never-contacted", sha=SHA[:8])  # DETR-style hash prefix
    assert _fetch("f", art, tmp_path).read_bytes() == PAYLOAD
    (tmp_path / "sub" / "file.bin").write_bytes(PAYLOAD[:-1])
    with pytest.raises(HqmError, match="exists but its sha256"):
        _fetch("f", art, tmp_path)


def test_offline_missing_file_says_where_to_put_it(tmp_path):
    with pytest.raises(HqmError, match=r"missing and network use is off; download .* place it there"):
        _fetch("f", _art("http://127.0.0.1:9/x"), tmp_path, offline=True)


def test_google_drive_confirmation_flow(server, tmp_path):
    base, state = server
    art = _art("https://drive.google.com/whatever", gdrive_id="abc")
    path = _fetch("g", art, tmp_path, gdrive_base=f"{base}/uc")
    assert path.read_bytes() == PAYLOAD
    assert [p for p, _ in state.requests] == ["/uc", "/uc"]


def test_archive_is_extracted_once(server, tmp_path):
    base, _ = server
    art = ArtefactConfig(url=f"{base}/archive.tar.gz", sha256=hashlib.sha256(_ARCHIVE).hexdigest(),
                         path="a.tar.gz", extract_to="unpacked")  # fmt: skip
    _fetch("a", art, tmp_path)
    assert (tmp_path / "unpacked" / "inner" / "hello.txt").read_text() == "hello"


def test_fetch_all_rejects_unknown_names(tmp_path):
    with pytest.raises(HqmError, match="unknown artefact"):
        fetch_all({}, ["nope"], tmp_path)


def test_bad_sha_in_params_is_refused(tmp_path):
    with pytest.raises(HqmError, match="sha256 must be"):
        _fetch("f", _art("http://127.0.0.1:9/x", sha="xyz"), tmp_path)


def test_fetch_command_verifies_a_hand_placed_file_offline(tmp_path, capsys):
    from hqm.cli import main

    (tmp_path / "data" / "sub").mkdir(parents=True)
    (tmp_path / "data" / "sub" / "file.bin").write_bytes(PAYLOAD)
    params = tmp_path / "params.yaml"
    params.write_text(f"experiment:\n  variants: []\nartefacts:\n  f:\n    url: http://127.0.0.1:9/x\n    sha256: {SHA}\n    path: sub/file.bin\n")
    assert main(["fetch", "f", "--params", str(params), "--data-dir", str(tmp_path / "data"), "--offline"]) == 0
    assert "sub/file.bin" in capsys.readouterr().out
    (tmp_path / "data" / "sub" / "file.bin").unlink()
    assert main(["fetch", "--params", str(params), "--data-dir", str(tmp_path / "data"), "--offline"]) == 2
    assert "artefact 'f'" in capsys.readouterr().err


def test_unpublished_checksum_is_pinned_on_first_download_then_enforced(server, tmp_path, capsys):
    base, state = server
    art = _art(f"{base}/file.bin", sha=None)
    _fetch("f", art, tmp_path)
    assert "pinned" in capsys.readouterr().err
    import json

    pins = json.loads((tmp_path / "checksums.json").read_text())
    assert pins["f"]["sha256"] == SHA
    _fetch("f", art, tmp_path)  # verified against the pin, no new request
    assert len(state.requests) == 1
    (tmp_path / "sub" / "file.bin").write_bytes(PAYLOAD[:-1] + b"x")
    with pytest.raises(HqmError, match=r"artefact 'f': .*file.bin exists but its sha256 is .*expected " + SHA):
        _fetch("f", art, tmp_path)


def test_a_web_page_instead_of_the_file_is_refused(server, tmp_path):
    base, _ = server
    with pytest.raises(HqmError, match=r"answered with a web page instead of the file; download it by hand and place it at .*file.bin"):
        _fetch("f", _art(f"{base}/page.html", sha=None), tmp_path)
    assert not (tmp_path / "checksums.json").exists() and not (tmp_path / "sub" / "file.bin").exists()
