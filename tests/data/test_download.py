"""Fetching one artefact over plain HTTP from a local server on 127.0.0.1 (Range, retries,
checksums, pins, hand-placed files, extraction)."""

from __future__ import annotations

import hashlib
import io
import json
import multiprocessing
import tarfile
import zipfile

import pytest
from local_http import LocalServer, Reply

from hqm.config import ArtefactConfig
from hqm.data.download import fetch_all, fetch_artefact
from hqm.errors import HqmError

PAYLOAD = bytes(range(256)) * 1200  # 300 kB, no content check (.bin)
SHA = hashlib.sha256(PAYLOAD).hexdigest()


def _tar_gz(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


ARCHIVE = _tar_gz({"inner/hello.txt": b"hello"})


class Flaky:
    """Cut the first ``cuts`` answers a third of the way through the body."""

    def __init__(self, cuts: int):
        self.cuts = cuts

    def __call__(self, query) -> Reply:
        self.cuts -= 1
        return Reply(PAYLOAD, cut=len(PAYLOAD) // 3 if self.cuts >= 0 else None)


@pytest.fixture()
def server():
    routes = {"/file.bin": Reply(PAYLOAD), "/archive.tar.gz": Reply(ARCHIVE),
              "/page.html": Reply(b"<html><body>Sign in</body></html>", content_type="text/html")}  # fmt: skip
    with LocalServer(routes) as srv:
        yield srv


def _art(url, sha=SHA, **kw):
    return ArtefactConfig(sources=[url], sha256=sha, path="sub/file.bin", **kw)


def _fetch(name, art, tmp_path, **kw):
    return fetch_artefact(name, art, tmp_path, progress=False, sleep=lambda s: None, timeout=5, **kw)


def test_normal_download_lands_verified(server, tmp_path):
    path = _fetch("f", _art(f"{server.base}/file.bin"), tmp_path)
    assert path.read_bytes() == PAYLOAD and not (tmp_path / "sub" / "file.bin.part").exists()
    assert server.requests == [("/file.bin", "", None)]


def test_interrupted_download_resumes_with_range(server, tmp_path):
    server.routes["/flaky.bin"] = Flaky(cuts=2)
    path = _fetch("f", _art(f"{server.base}/flaky.bin"), tmp_path, retries=3)
    assert path.read_bytes() == PAYLOAD
    ranges = [r for _, _, r in server.requests]
    assert ranges[0] is None and ranges[1] is not None and ranges[2] is not None
    starts = [int(r.split("=")[1].rstrip("-")) for r in ranges[1:]]
    assert 0 < starts[0] < starts[-1] < len(PAYLOAD)  # each retry resumed where the last stopped


def test_gives_up_after_retries_and_leaves_nothing(server, tmp_path):
    server.routes["/flaky.bin"] = Flaky(cuts=10)
    with pytest.raises(HqmError, match=r"artefact 'f': no source delivered the file \(http://127\.0\.0\.1:\d+/flaky\.bin: "
                       r"failed after 2 attempts .*\); download it by hand and place it at .*sub/file\.bin"):
        _fetch("f", _art(f"{server.base}/flaky.bin"), tmp_path, retries=1)
    assert list((tmp_path / "sub").iterdir()) == []
    assert len(server.requests) == 2


def test_wrong_checksum_is_an_error_and_leaves_nothing(server, tmp_path):
    with pytest.raises(HqmError, match=r"artefact 'f': .*file\.bin: checksum mismatch: sha256 \w+, expected 0{64}\); "
                       r"download it by hand and place it at .*file.bin"):
        _fetch("f", _art(f"{server.base}/file.bin", sha="0" * 64), tmp_path)
    assert list((tmp_path / "sub").iterdir()) == []


def test_404_is_an_error_naming_the_url_and_where_to_put_the_file(server, tmp_path):
    with pytest.raises(HqmError, match=r"artefact 'f': .*missing\.bin: HTTP 404\); .*place it at .*sub/file.bin"):
        _fetch("f", _art(f"{server.base}/missing.bin"), tmp_path)
    assert len(server.requests) == 1  # a 404 is not retried


def test_file_placed_by_hand_is_used_without_network(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "file.bin").write_bytes(PAYLOAD)
    art = _art("http://127.0.0.1:9/never-contacted", sha=SHA[:8])  # DETR-style hash prefix
    assert _fetch("f", art, tmp_path).read_bytes() == PAYLOAD
    (tmp_path / "sub" / "file.bin").write_bytes(PAYLOAD[:-1])
    with pytest.raises(HqmError, match="exists but its sha256"):
        _fetch("f", art, tmp_path)


def test_offline_missing_file_says_where_to_put_it(tmp_path):
    with pytest.raises(HqmError, match=r"missing and network use is off; download it by hand and place it at .*"
                       r"file.bin \(from http://127.0.0.1:9/x\)"):
        _fetch("f", _art("http://127.0.0.1:9/x"), tmp_path, offline=True)


def test_archive_is_extracted_once(server, tmp_path):
    art = ArtefactConfig(sources=[f"{server.base}/archive.tar.gz"], sha256=hashlib.sha256(ARCHIVE).hexdigest(),
                         path="a.tar.gz", extract_to="unpacked")  # fmt: skip
    _fetch("a", art, tmp_path)
    assert (tmp_path / "unpacked" / "inner" / "hello.txt").read_text() == "hello"
    (tmp_path / "unpacked" / "inner" / "hello.txt").write_text("edited")
    _fetch("a", art, tmp_path)  # the folder marks completion: not unpacked again
    assert (tmp_path / "unpacked" / "inner" / "hello.txt").read_text() == "edited"


def test_github_archive_top_folder_is_stripped(server, tmp_path):
    data = _zip({"v-coco-489cc4db/data/splits/a.ids": b"1\n", "v-coco-489cc4db/README.md": b"r"})
    server.routes["/v.zip"] = Reply(data)
    art = ArtefactConfig(sources=[f"{server.base}/v.zip"], sha256=None, path="v.zip",
                         extract_to="raw/vcoco/v-coco-master", strip_top_folder=True)  # fmt: skip
    _fetch("v", art, tmp_path)
    assert (tmp_path / "raw/vcoco/v-coco-master/data/splits/a.ids").read_text() == "1\n"
    assert sorted(p.name for p in (tmp_path / "raw/vcoco").iterdir()) == ["v-coco-master"]


def test_strip_top_folder_refuses_an_archive_with_two_top_entries(server, tmp_path):
    server.routes["/two.zip"] = Reply(_zip({"a/x": b"1", "b/y": b"2"}))
    art = ArtefactConfig(sources=[f"{server.base}/two.zip"], sha256=None, path="two.zip", extract_to="out",
                         strip_top_folder=True)  # fmt: skip
    with pytest.raises(HqmError, match=r"artefact 't': .*two.zip has 2 top-level entries"):
        _fetch("t", art, tmp_path)
    assert not (tmp_path / "out").exists()


def test_fetch_all_rejects_unknown_names(tmp_path):
    with pytest.raises(HqmError, match=r"params.yaml: unknown artefact\(s\) nope \(defined: a\)"):
        fetch_all({"a": _art("http://127.0.0.1:9/x")}, ["nope"], tmp_path, where="params.yaml")


def test_bad_sha_in_params_is_refused(tmp_path):
    with pytest.raises(HqmError, match="sha256 must be"):
        _fetch("f", _art("http://127.0.0.1:9/x", sha="xyz"), tmp_path)


def test_fetch_command_verifies_a_hand_placed_file_offline(tmp_path, capsys):
    from hqm.cli import main

    (tmp_path / "data" / "sub").mkdir(parents=True)
    (tmp_path / "data" / "sub" / "file.bin").write_bytes(PAYLOAD)
    params = tmp_path / "params.yaml"
    params.write_text(f"experiment:\n  variants: []\nartefacts:\n  f:\n    sources: [http://127.0.0.1:9/x]\n"
                      f"    sha256: {SHA}\n    path: sub/file.bin\n")  # fmt: skip
    assert main(["fetch", "f", "--params", str(params), "--data-dir", str(tmp_path / "data"), "--offline"]) == 0
    assert "sub/file.bin" in capsys.readouterr().out
    (tmp_path / "data" / "sub" / "file.bin").unlink()
    assert main(["fetch", "--params", str(params), "--data-dir", str(tmp_path / "data"), "--offline"]) == 2
    assert "artefact 'f'" in capsys.readouterr().err


def test_unpublished_checksum_is_pinned_on_first_download_then_enforced(server, tmp_path, capsys):
    art = _art(f"{server.base}/file.bin", sha=None)
    _fetch("f", art, tmp_path)
    assert "pinned" in capsys.readouterr().err
    pins = json.loads((tmp_path / "checksums.json").read_text())
    assert pins["f"] == {"sha256": SHA, "url": f"{server.base}/file.bin", "path": "sub/file.bin"}
    _fetch("f", art, tmp_path)  # verified against the pin, no new request
    assert len(server.requests) == 1
    (tmp_path / "sub" / "file.bin").write_bytes(PAYLOAD[:-1] + b"x")
    with pytest.raises(HqmError, match=r"artefact 'f': .*file.bin exists but its sha256 is .*expected " + SHA):
        _fetch("f", art, tmp_path)


def test_a_web_page_instead_of_the_file_is_refused(server, tmp_path):
    with pytest.raises(HqmError, match=r"page\.html: answered with a web page instead of the file\); download it by "
                       r"hand and place it at .*file.bin"):
        _fetch("f", _art(f"{server.base}/page.html", sha=None), tmp_path)
    assert not (tmp_path / "checksums.json").exists() and not (tmp_path / "sub" / "file.bin").exists()


def _place_and_fetch(args: tuple[str, str]) -> None:
    name, data_dir = args
    fetch_artefact(name, ArtefactConfig(sha256=None, path=f"{name}.bin"), data_dir, offline=True)


def test_concurrent_fetches_keep_every_pin(tmp_path):
    """Snakemake runs fetch jobs in parallel: each one's pin survives the others' (the offline
    rehearsal fetched 5 unpinned artefacts at once; before the lock some pins were lost)."""
    names = [f"art{i}" for i in range(8)]
    for name in names:
        (tmp_path / f"{name}.bin").write_bytes(name.encode() * 100)
    with multiprocessing.get_context("fork").Pool(8) as pool:
        pool.map(_place_and_fetch, [(name, str(tmp_path)) for name in names])
    pins = json.loads((tmp_path / "checksums.json").read_text())
    assert sorted(pins) == names
    assert all(pins[n]["sha256"] == hashlib.sha256(n.encode() * 100).hexdigest() for n in names)


def test_a_replaced_archive_is_unpacked_again(server, tmp_path):
    """The unpacked folder remembers its archive's sha256: when the file changes (a new digest in
    the params, Snakemake fetching again), the folder is unpacked again instead of kept stale."""
    art = ArtefactConfig(sources=[f"{server.base}/archive.tar.gz"], sha256=hashlib.sha256(ARCHIVE).hexdigest(),
                         path="a.tar.gz", extract_to="unpacked")  # fmt: skip
    _fetch("a", art, tmp_path)
    newer = _tar_gz({"inner/hello.txt": b"hello again"})
    (tmp_path / "a.tar.gz").write_bytes(newer)
    _fetch("a", ArtefactConfig(**{**vars(art), "sha256": hashlib.sha256(newer).hexdigest()}), tmp_path)
    assert (tmp_path / "unpacked" / "inner" / "hello.txt").read_text() == "hello again"
    (tmp_path / "byhand").mkdir()  # a folder unpacked by hand (no mark) is used as it is
    (tmp_path / "byhand" / "mine.txt").write_text("mine")
    _fetch("a", ArtefactConfig(**{**vars(art), "sha256": hashlib.sha256(newer).hexdigest(), "extract_to": "byhand"}),
           tmp_path)  # fmt: skip
    assert [p.name for p in (tmp_path / "byhand").iterdir()] == ["mine.txt"]
