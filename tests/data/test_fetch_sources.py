"""Ordered sources: fallback after 404, a web page, a short body or a bad file; Google Drive
files and folders through the real gdown code, routed to a local server (never to Google)."""

from __future__ import annotations

import hashlib
import io
import json
import pickle
import zipfile
from pathlib import Path

import pytest
from local_http import LocalServer, Reply, drive_routes, route_drive_to

from hqm.config import ArtefactConfig, load_params
from hqm.data.download import fetch_artefact
from hqm.data.sources import DriveError, GdownDrive, artefact_sources, parse_source
from hqm.errors import HqmError

REPO = Path(__file__).resolve().parents[2]


def _zip_bytes() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("inner/a.txt", "a" * 5000)
    return buf.getvalue()


ZIP = _zip_bytes()
PRIOR = pickle.dumps({1: [0.5, 0.5]}, protocol=2)
FILE_ID = "1AbCdEfGhIjKlMnOpQrStUvWxYz0123"  # Drive ids are >= 25 characters
OTHER_ID = "1ZyXwVuTsRqPoNmLkJiHgFeDcBa9876"
FOLDER_ID = "10uuzvMUCVVv95-xAZg5KS94QXm7QXZW4"


@pytest.fixture()
def server(monkeypatch):
    files = {FILE_ID: ("archive.zip", ZIP), OTHER_ID: ("prior.pickle", PRIOR)}
    routes = {"/good.zip": Reply(ZIP), "/page.zip": Reply(b"<!DOCTYPE html><html>quota</html>"),
              "/short.zip": Reply(ZIP[: len(ZIP) // 2], length=False),
              **drive_routes(files, {FOLDER_ID: ("VSGNet priors", [FILE_ID, OTHER_ID])})}  # fmt: skip
    with LocalServer(routes) as srv:
        route_drive_to(monkeypatch, srv.base)
        yield srv


def _fetch(art, tmp_path, name="a", **kw):
    return fetch_artefact(name, art, tmp_path, progress=False, sleep=lambda s: None, timeout=5, retries=1, **kw)


def _pins(tmp_path):
    path = tmp_path / "checksums.json"
    return json.loads(path.read_text()) if path.exists() else {}


def test_404_then_the_next_source_is_used_and_pinned(server, tmp_path):
    art = ArtefactConfig(sources=[f"{server.base}/gone.zip", f"{server.base}/good.zip"], sha256=None, path="d/a.zip")
    assert _fetch(art, tmp_path).read_bytes() == ZIP
    assert server.paths() == ["/gone.zip", "/good.zip"]
    assert _pins(tmp_path)["a"]["url"] == f"{server.base}/good.zip"


@pytest.mark.parametrize("route, reason", [
    ("/short.zip", r"content check failed: the zip archive does not list"),  # no Content-Length, cut short
    ("/page.zip", r"content check failed: the file is a web page"),  # HTML sent as octet-stream
])  # fmt: skip
def test_a_bad_body_is_never_pinned_and_the_next_source_wins(server, tmp_path, route, reason):
    bad = ArtefactConfig(sources=[f"{server.base}{route}"], sha256=None, path="d/a.zip")
    with pytest.raises(HqmError, match=rf"artefact 'a': no source delivered the file \(.*{route}: {reason}"):
        _fetch(bad, tmp_path)
    assert _pins(tmp_path) == {} and list((tmp_path / "d").iterdir()) == []
    both = ArtefactConfig(sources=[f"{server.base}{route}", f"{server.base}/good.zip"], sha256=None, path="d/a.zip")
    assert _fetch(both, tmp_path).read_bytes() == ZIP
    assert _pins(tmp_path)["a"]["sha256"] == hashlib.sha256(ZIP).hexdigest()


def test_a_body_shorter_than_its_content_length_is_retried_then_dropped(server, tmp_path):
    server.routes["/cut.zip"] = Reply(ZIP, cut=100)
    art = ArtefactConfig(sources=[f"{server.base}/cut.zip"], sha256=None, path="d/a.zip")
    with pytest.raises(HqmError, match=r"cut\.zip: failed after 2 attempts"):
        _fetch(art, tmp_path)
    assert _pins(tmp_path) == {} and list((tmp_path / "d").iterdir()) == []


def test_drive_file_goes_through_gdown_and_its_confirmation_page(server, tmp_path):
    art = ArtefactConfig(sources=[f"gdrive:{FILE_ID}"], sha256=None, path="d/a.zip")
    assert _fetch(art, tmp_path).read_bytes() == ZIP
    assert server.paths() == ["/drive.google.com/uc", "/drive.usercontent.google.com/download"]
    assert "confirm=t0k" in server.requests[1][1]
    assert _pins(tmp_path)["a"]["url"] == f"https://drive.google.com/uc?id={FILE_ID}"
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == ["a.zip"]  # gdown's temporaries are gone


def test_dead_drive_id_falls_back_to_the_older_one(server, tmp_path):
    dead = "1QZcJmGVlF9f4h-XLWe9Gkmnmj2z1gSnk"
    art = ArtefactConfig(sources=[f"gdrive:{dead}", f"https://drive.google.com/open?id={FILE_ID}"], sha256=None,
                         path="d/a.zip")  # fmt: skip
    assert _fetch(art, tmp_path).read_bytes() == ZIP
    assert server.requests[0][1] == f"id={dead}"


def test_drive_folder_member_is_listed_then_downloaded(server, tmp_path):
    art = ArtefactConfig(sources=[f"https://drive.google.com/drive/folders/{FOLDER_ID}"], sha256=None,
                         path="downloads/prior.pickle")  # fmt: skip
    assert _fetch(art, tmp_path, name="vcoco_prior").read_bytes() == PRIOR
    assert server.paths()[0] == "/drive.google.com/embeddedfolderview"
    assert f"id={OTHER_ID}" in server.requests[1][1]  # only the member, not the whole folder


def test_drive_folder_without_the_member_names_what_it_holds(server, tmp_path):
    art = ArtefactConfig(sources=[f"gdrive-folder:{FOLDER_ID}/missing.pickle"], sha256=None, path="p.pickle")
    with pytest.raises(HqmError, match=r"folders/10uuzv\S+: the folder holds no 'missing.pickle' \(it holds "
                       r"archive.zip, prior.pickle\)"):
        _fetch(art, tmp_path)


class FakeDrive:
    """A DriveClient that fails every call, recording it."""

    def __init__(self):
        self.calls = []

    def download_file(self, file_id, out, timeout, retries):
        self.calls.append(("file", file_id))
        raise DriveError("Too many users have viewed or downloaded this file recently")

    def download_folder_member(self, folder_id, member, out, timeout, retries):
        self.calls.append(("folder", folder_id, member))
        raise DriveError("the folder does not list")


def test_drive_quota_falls_back_to_an_http_mirror_through_a_swapped_client(server, tmp_path):
    fake = FakeDrive()
    art = ArtefactConfig(sources=[f"gdrive:{FILE_ID}", f"gdrive-folder:{FOLDER_ID}", f"{server.base}/good.zip"],
                         sha256=hashlib.sha256(ZIP).hexdigest(), path="d/hico.zip")  # fmt: skip
    assert _fetch(art, tmp_path, drive=fake).read_bytes() == ZIP
    assert fake.calls == [("file", FILE_ID), ("folder", FOLDER_ID, "hico.zip")]


def test_every_source_failing_lists_each_url_and_reason(server, tmp_path):
    art = ArtefactConfig(sources=[f"gdrive:{FILE_ID}", f"{server.base}/gone.zip"], sha256=None, path="d/a.zip",
                         manual="ask the dataset authors")  # fmt: skip
    with pytest.raises(HqmError) as info:
        _fetch(art, tmp_path, drive=FakeDrive())
    message = str(info.value)
    assert "\n" not in message and message.startswith("artefact 'a': no source delivered the file (")
    assert f"https://drive.google.com/uc?id={FILE_ID}: Too many users" in message
    assert f"{server.base}/gone.zip: HTTP 404" in message
    assert message.endswith(f"download it by hand (ask the dataset authors) and place it at {tmp_path}/d/a.zip")


def test_real_gdown_client_reports_a_missing_file_as_one_line(server, tmp_path):
    with pytest.raises(DriveError) as info:
        GdownDrive().download_file("1QZcJmGVlF9f4h-XLWe9Gkmnmj2z1gSnk", tmp_path / "x", 5, 0)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "x").exists()


def test_an_artefact_with_no_source_says_how_to_get_it(tmp_path):
    art = ArtefactConfig(sources=[], sha256=None, path="released/hqm.pth", manual="Baidu Netdisk, folder HQM")
    with pytest.raises(HqmError, match=r"artefact 'hqm': .*hqm.pth is missing and no source can be fetched "
                       r"automatically; download it by hand \(Baidu Netdisk, folder HQM\) and place it at"):
        _fetch(art, tmp_path, name="hqm")


def test_source_strings_parse_and_older_keys_come_after_sources():
    art = ArtefactConfig(sources=["gdrive:1dUByzVzM6z1Oq4gENa1-t0FLhr0UtDaS"], sha256=None, path="h.tar.gz",
                         gdrive_id="1QZcJmGVlF9f4h-XLWe9Gkmnmj2z1gSnk", url="https://example.org/h.tar.gz")  # fmt: skip
    kinds = [(s.kind, s.ref) for s in artefact_sources("h", art)]
    assert kinds == [("gdrive", "1dUByzVzM6z1Oq4gENa1-t0FLhr0UtDaS"), ("gdrive", "1QZcJmGVlF9f4h-XLWe9Gkmnmj2z1gSnk"),
                     ("http", "https://example.org/h.tar.gz")]  # fmt: skip
    folder = parse_source("https://drive.google.com/drive/folders/10uuzvMUCVVv95-xAZg5KS94QXm7QXZW4", "p", "prior.pickle")
    assert (folder.kind, folder.member) == ("gdrive_folder", "prior.pickle")
    view = parse_source("https://drive.google.com/file/d/1dUByzVzM6z1Oq4gENa1-t0FLhr0UtDaS/view", "h", "x")
    assert (view.kind, view.ref) == ("gdrive", "1dUByzVzM6z1Oq4gENa1-t0FLhr0UtDaS")
    for bad in ("ftp://x/y", "gdrive:", "gdrive:bad id!"):
        with pytest.raises(HqmError, match=r"artefact 'h': source "):
            parse_source(bad, "h", "x")


def test_paper_artefacts_list_pinned_sources_for_every_file():
    params = load_params(REPO / "params.yaml", [REPO / "config" / "paper.yaml"])
    arts = params.artefacts
    assert artefact_sources("hico_20160224_det", arts["hico_20160224_det"])[0].ref == "1dUByzVzM6z1Oq4gENa1-t0FLhr0UtDaS"
    vcoco = artefact_sources("vcoco_data", arts["vcoco_data"])[0].url
    assert "/archive/489cc4db74f2f10ab4b134f67da3874afbf245ab.zip" in vcoco and "master" not in vcoco
    assert artefact_sources("vcoco_prior", arts["vcoco_prior"])[0].kind == "gdrive_folder"
    for name in ("qpic_r50_hico", "qpic_r101_hico", "qpic_r50_vcoco", "qpic_r101_vcoco"):
        assert "hitachi-rd-cv/qpic/releases/download/v1.0/" in artefact_sources(name, arts[name])[0].url
    for name, art in arts.items():
        assert artefact_sources(name, art) or art.manual, name
