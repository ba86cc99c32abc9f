"""Atomic writes and dataset-folder links."""

import os

import pytest

from hqm.errors import HqmError
from hqm.io import atomic_write, link_folder, read_json, write_json


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out" / "metrics.json"
    write_json(target, {"a": 1})
    with pytest.raises(RuntimeError):
        with atomic_write(target) as handle:
            handle.write("half")
            raise RuntimeError("crash")
    assert read_json(target) == {"a": 1}
    assert sorted(p.name for p in target.parent.iterdir()) == ["metrics.json"]


def test_read_json_names_file_and_position(tmp_path):
    bad = tmp_path / "test_hico.json"
    bad.write_text('[{"file_name": 1,}]')
    with pytest.raises(HqmError, match=r"test_hico.json: malformed JSON at line 1 column"):
        read_json(bad)


def test_link_folder_is_relative_idempotent_and_refuses_to_clobber(tmp_path):
    target = tmp_path / "raw" / "hico" / "images" / "train2015"
    target.mkdir(parents=True)
    (target / "a.jpg").write_bytes(b"x")
    link = tmp_path / "data" / "hico_det" / "images" / "train2015"
    link_folder(link, target)
    link_folder(link, target)  # second call: nothing to do
    assert (link / "a.jpg").read_bytes() == b"x" and not os.path.isabs(os.readlink(link))
    other = tmp_path / "raw" / "other"
    other.mkdir()
    with pytest.raises(HqmError, match="already exists and is not a link to"):
        link_folder(link, other)
    with pytest.raises(HqmError, match="folder not found"):
        link_folder(tmp_path / "x", tmp_path / "missing")


def test_outputs_follow_the_umask_for_a_shared_cluster(tmp_path):
    """mkstemp/mkdtemp create 0600/0700; a group-shared umask must give group-readable outputs."""
    import os
    import stat

    from hqm.io import make_temp_dir, write_json

    old = os.umask(0o002)
    try:
        write_json(tmp_path / "m.json", {"a": 1})
        folder = make_temp_dir(tmp_path / "out")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "m.json").stat().st_mode) == 0o664
    assert stat.S_IMODE(folder.stat().st_mode) == 0o775
