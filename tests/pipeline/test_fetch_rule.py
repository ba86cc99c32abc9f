"""Snakemake's fetch rule reruns when the file an artefact names changes, not when its sources do.

The rehearsal of the paper chain caught it: appending a mirror to ``sources`` (what
docs/data_sources.md recommends) made Snakemake delete the fetched archive, download it again and
rerun every conversion and training downstream.
"""

import hashlib
import shutil
import subprocess
import sys

import yaml

from .conftest import REPO
from .rehearsal import FIXTURES

sys.path.insert(0, str(REPO / "tests/data"))
from local_http import LocalServer, Reply  # noqa: E402

PRIOR = FIXTURES / "vcoco_eval/prior.pickle"


def snakemake(tmp_path, env, overlay, *extra):
    (tmp_path / "overlay.yaml").write_text(yaml.safe_dump(overlay))
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(tmp_path), "--cores", "1",
           "data/downloads/prior.pickle", *extra,
           "--configfile", str(REPO / "config/paper.yaml"), str(tmp_path / "overlay.yaml")]  # fmt: skip
    result = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout + result.stderr


def test_a_new_mirror_reruns_nothing_a_new_digest_refetches(tool_env, tmp_path):
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    digest = hashlib.sha256(PRIOR.read_bytes()).hexdigest()
    with LocalServer({"/prior.pickle": Reply(PRIOR.read_bytes())}) as server:
        entry = {"sources": [f"{server.base}/prior.pickle"], "sha256": digest}
        snakemake(tmp_path, tool_env, {"artefacts": {"vcoco_prior": entry}})
        assert server.paths() == ["/prior.pickle"]
    assert (tmp_path / "data/downloads/prior.pickle").read_bytes() == PRIOR.read_bytes()
    mirrored = {**entry, "sources": [*entry["sources"], "http://127.0.0.1:9/mirror/prior.pickle"]}
    out = snakemake(tmp_path, tool_env, {"artefacts": {"vcoco_prior": mirrored}}, "-n")
    assert "Nothing to be done" in out
    out = snakemake(tmp_path, tool_env, {"artefacts": {"vcoco_prior": {**mirrored, "sha256": digest[:8]}}}, "-n")
    assert "rule fetch" in out and "Params have changed" in out


def test_dvc_fetch_stages_track_what_names_the_file_not_its_sources():
    from hqm.config import deep_merge
    from hqm.pipeline.dvc import render

    params = deep_merge(yaml.safe_load((REPO / "params.yaml").read_text()),
                        yaml.safe_load((REPO / "config/paper.yaml").read_text()))  # fmt: skip
    stages = yaml.safe_load(render(params))["stages"]
    tracked = {p for name, stage in stages.items() if name.startswith("fetch-") for p in stage["params"]}
    assert "artefacts.hico_20160224_det.sha256" in tracked and "artefacts.vcoco_data.strip_top_folder" in tracked
    assert "artefacts.detr_r50.path" in tracked
    assert not [p for p in tracked if p.rsplit(".", 1)[1] in ("sources", "url", "gdrive_id", "manual")]
