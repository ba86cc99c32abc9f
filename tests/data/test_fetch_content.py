"""The content check that stands between a download and its pinned checksum."""

from __future__ import annotations

import argparse
import gzip
import io
import json
import pickle
import tarfile
import zipfile

import pytest
import torch

from hqm.data.content_check import ContentError, check_content, content_kind


def _write(tmp_path, name, data: bytes):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _tar_gz() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        data = bytes(range(256)) * 400  # incompressible enough that a cut hits the gzip stream
        info = tarfile.TarInfo("hico_20160224_det/anno_bbox.mat")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("train2014/COCO_train2014_000000000009.jpg", b"\xff\xd8" + b"x" * 3000)
    return buf.getvalue()


def _pth(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


@pytest.mark.parametrize("name, kind", [
    ("a.zip", "archive"), ("hico_20160224_det.tar.gz", "archive"), ("x.tgz", "archive"),
    ("detr-r50-e632da11.pth", "state_dict"), ("m.json", "json"), ("prior.pickle", "pickle"),
    ("anno_bbox.mat", "mat"), ("file.bin", None),
])  # fmt: skip
def test_the_check_follows_the_file_name(name, kind):
    assert content_kind(f"downloads/{name}") == kind


def test_a_declared_kind_overrides_the_name():
    assert content_kind("x.bin", "archive") == "archive" and content_kind("x.zip", "none") is None


GOOD = {
    "a.zip": _zip(),
    "a.tar.gz": _tar_gz(),
    "w.pth": _pth({"model": {"backbone.0.weight": torch.zeros(2, 2)}}),
    "released.pth": _pth({"model": {"w": torch.ones(1)}, "args": argparse.Namespace(lr=1e-4), "epoch": 149}),
    "plain.pth": _pth({"w": torch.ones(3)}),
    "m.json": json.dumps({"a": [1, 2]}).encode(),
    "p2.pickle": pickle.dumps({1: [0.5]}, protocol=2),
    "p0.pickle": pickle.dumps({1: [0.5]}, protocol=0),
    "a.mat": b"MATLAB 5.0 MAT-file, Platform: GLNXA64" + b" " * 90 + b"\x00" * 40,
}


@pytest.mark.parametrize("name", sorted(GOOD))
def test_sound_files_pass(tmp_path, name):
    check_content(_write(tmp_path, name, GOOD[name]), content_kind(name))


BAD = [
    ("cut.zip", _zip()[:-30], "the zip archive does not list"),
    ("cut.tar.gz", _tar_gz()[: len(_tar_gz()) // 2], "the archive does not list as a tar"),
    ("empty.tar.gz", gzip.compress(b"\x00" * 1024), "the archive is empty"),
    ("page.zip", b"\n  <!DOCTYPE html><html><title>Google Drive - Quota exceeded</title></html>", "is a web page"),
    ("junk.pth", b"PK\x03\x04 not really a checkpoint", "does not load as a torch state dict"),
    ("list.pth", _pth([1, 2, 3]), "holds no state dict of tensors"),
    ("cut.pth", _pth({"w": torch.ones(1000)})[:-200], "does not load as a torch state dict"),
    ("bad.json", b'{"a": [1, 2', "does not parse as JSON"),
    ("cut.pickle", pickle.dumps({1: [0.5] * 100}, protocol=2)[:-5], "no final STOP opcode"),
    ("text.pickle", b"prior probabilities\n", "does not start like a pickle"),
    ("a.mat", b"\x89HDF\r\n\x1a\n" + b"\x00" * 100, "no MATLAB MAT-file header"),
    ("empty.json", b"", "the file is empty"),
]


@pytest.mark.parametrize("name, data, reason", BAD, ids=[b[0] for b in BAD])
def test_damaged_or_wrong_files_fail_with_a_reason(tmp_path, name, data, reason):
    with pytest.raises(ContentError, match=reason) as info:
        check_content(_write(tmp_path, name, data), content_kind(name))
    assert "\n" not in str(info.value)


def test_a_pickle_payload_in_a_pth_is_never_executed(tmp_path):
    class Evil:
        def __reduce__(self):
            return (exec, ("open('pwned', 'w').write('x')",))

    path = _write(tmp_path, "evil.pth", _pth({"model": Evil()}))
    with pytest.raises(ContentError, match="does not load as a torch state dict"):
        check_content(path, "state_dict")
    assert not (tmp_path / "pwned").exists()
