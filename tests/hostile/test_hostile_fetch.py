"""Hostile inputs and faults for ``hqm fetch``, against a scripted server on 127.0.0.1.

Every row: non-zero exit, one stderr line naming the artefact (and its file or URL), nothing
half-written under the data dir (no file, no ``.part``, no pin), inputs untouched.
"""

from __future__ import annotations

import io
import os
import pickle
import resource
import shutil
import subprocess
import sys
import tarfile
from functools import cache
from pathlib import Path

import pytest
from hostile_harness import Case, check_case, parametrize

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
from local_http import LocalServer, Reply  # noqa: E402


def _tar_gz() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        data = os.urandom(200_000)  # incompressible: a cut lands inside the gzip stream
        info = tarfile.TarInfo("hico_20160224_det/images/a.jpg")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


TAR = _tar_gz()
BIG = os.urandom(600_000)
ROUTES = {
    "/h.tar.gz": Reply(TAR),
    "/page-as-octets.tar.gz": Reply(b"<!DOCTYPE html><html><title>Sign in</title></html>"),
    "/page.tar.gz": Reply(b"<html>Google Drive - Virus scan warning</html>", content_type="text/html"),
    "/short.tar.gz": Reply(TAR[: len(TAR) // 2], length=False),
    "/cut.tar.gz": Reply(TAR, cut=5000),
    "/junk.zip": Reply(b"PK\x03\x04" + os.urandom(4000)),
    "/junk.pth": Reply(os.urandom(5000)),
    "/cut.pickle": Reply(pickle.dumps({i: [0.1] * 50 for i in range(50)}, protocol=2)[:-10]),
    "/big.bin": Reply(BIG),
}


@cache
def _base() -> str:
    """The one server of this module (started on first use, a daemon thread)."""
    return LocalServer(ROUTES).__enter__().base


DEST = "data/downloads/h.tar.gz"
NOTHING = (DEST, DEST + ".part", "data/checksums.json", "data/raw")


def _params(sources: list[str], path: str = "downloads/h.tar.gz", sha256: str = "null", extra: str = ""):
    def setup(tmp: Path) -> None:
        srcs = ", ".join(s.replace("{base}", _base()) for s in sources)
        (tmp / "params.yaml").write_text(
            "experiment:\n  variants: []\n  data_dir: data\nartefacts:\n  h:\n"
            f"    sources: [{srcs}]\n    sha256: {sha256}\n    path: {path}\n    extract_to: raw\n{extra}"
        )

    return setup


def _placed(data: bytes, path: str):
    def setup(tmp: Path) -> None:
        _params(["{base}/h.tar.gz"], path=path)(tmp)
        (tmp / "data" / path).parent.mkdir(parents=True)
        (tmp / "data" / path).write_bytes(data)

    return setup


def _read_only(tmp: Path) -> None:
    _params(["{base}/h.tar.gz"])(tmp)
    (tmp / "data").mkdir()
    if os.geteuid() == 0:  # root writes through modes: make the folder immutable instead
        if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(tmp / "data")]).returncode:
            pytest.skip("root without chattr: cannot make a read-only folder here")
    else:
        (tmp / "data").chmod(0o555)


FETCH = ("fetch", "h", "--params", "params.yaml", "--retries", "1", "--timeout", "5", "--no-progress")

CASES = [
    Case("404-on-every-source", _params(["{base}/gone1.tar.gz", "{base}/gone2.tar.gz"]), FETCH,
         ("artefact 'h': no source delivered the file", "/gone1.tar.gz: HTTP 404", "/gone2.tar.gz: HTTP 404",
          "place it at data/downloads/h.tar.gz"), NOTHING),
    Case("html-page-as-octet-stream", _params(["{base}/page-as-octets.tar.gz"]), FETCH,
         ("artefact 'h'", "/page-as-octets.tar.gz: content check failed: the file is a web page"), NOTHING),
    Case("html-content-type", _params(["{base}/page.tar.gz"]), FETCH,
         ("artefact 'h'", "/page.tar.gz: answered with a web page instead of the file"), NOTHING),
    Case("truncated-without-content-length", _params(["{base}/short.tar.gz"]), FETCH,
         ("artefact 'h'", "/short.tar.gz: content check failed: the archive does not list as a tar"), NOTHING),
    Case("truncated-below-content-length", _params(["{base}/cut.tar.gz"]), FETCH,
         ("artefact 'h'", "/cut.tar.gz: failed after 2 attempts", "connection lost"), NOTHING),
    Case("wrong-checksum", _params(["{base}/h.tar.gz"], sha256="0123456789abcdef"), FETCH,
         ("artefact 'h'", "/h.tar.gz: checksum mismatch", "expected 0123456789abcdef"), NOTHING),
    Case("unknown-artefact-name", _params(["{base}/h.tar.gz"]), ("fetch", "nope", "--params", "params.yaml"),
         ("params.yaml: unknown artefact(s) nope (defined: h)",), NOTHING),
    Case("zip-that-does-not-list", _params(["{base}/junk.zip"], path="downloads/a.zip"), FETCH,
         ("artefact 'h'", "/junk.zip: content check failed: the zip archive does not list"),
         ("data/downloads/a.zip", "data/downloads/a.zip.part", "data/checksums.json")),
    Case("pth-that-is-not-a-state-dict", _params(["{base}/junk.pth"], path="downloads/w.pth"), FETCH,
         ("artefact 'h'", "/junk.pth: content check failed: it does not load as a torch state dict"),
         ("data/downloads/w.pth", "data/downloads/w.pth.part", "data/checksums.json")),
    Case("truncated-pickle", _params(["{base}/cut.pickle"], path="downloads/prior.pickle"), FETCH,
         ("artefact 'h'", "/cut.pickle: content check failed: the pickle has no final STOP opcode"),
         ("data/downloads/prior.pickle", "data/downloads/prior.pickle.part", "data/checksums.json")),
    Case("hand-placed-web-page-is-not-pinned", _placed(b"<html>login</html>", "downloads/h.tar.gz"), FETCH,
         ("artefact 'h'", "data/downloads/h.tar.gz exists but fails the content check", "/h.tar.gz"),
         ("data/checksums.json", "data/raw")),
    Case("no-fetchable-source", _params([], extra="    manual: Baidu Netdisk folder HQM\n"), FETCH,
         ("artefact 'h'", "no source can be fetched automatically", "(Baidu Netdisk folder HQM)",
          "data/downloads/h.tar.gz"), NOTHING),
    Case("malformed-source", _params(["ftp://example.org/h.tar.gz"]), FETCH,
         ("artefact 'h': source 'ftp://example.org/h.tar.gz' is neither an http(s) URL nor gdrive:<id>",), NOTHING),
    Case("read-only-data-dir", _read_only, FETCH,
         ("artefact 'h': cannot write", "data/downloads", "{base}/h.tar.gz"), NOTHING, rc=1),
    Case("disk-full", _params(["{base}/big.bin"], path="downloads/big.bin"), FETCH,
         ("artefact 'h': cannot write", "File too large", "/big.bin"),
         ("data/downloads/big.bin", "data/downloads/big.bin.part", "data/checksums.json"), rc=1),
]

FILE_LIMIT = 128 * 1024  # "disk-full": RLIMIT_FSIZE makes writes past it fail (EFBIG), inherited by hqm


@parametrize(CASES)
def test_hostile_fetch(case, tmp_path):
    if "{base}" in "".join(case.message):  # the server's port is known only now
        case = Case(case.id, case.setup, case.argv, tuple(m.replace("{base}", _base()) for m in case.message),
                    case.outputs, case.rc, case.mutable, case.env, case.timeout)  # fmt: skip
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    try:
        if case.id == "disk-full":
            resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_LIMIT, hard))
        check_case(case, tmp_path)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        if case.id == "read-only-data-dir" and os.geteuid() == 0:
            subprocess.run(["chattr", "-i", str(tmp_path / "data")], check=False)
        elif case.id == "read-only-data-dir":
            (tmp_path / "data").chmod(0o755)
