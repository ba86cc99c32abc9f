"""The paper's real-data graph rehearsed offline (slow): fetch, convert, convert weights, train with
2 gloo ranks, evaluate, tables -- on tiny files in the real layouts served from 127.0.0.1.

The rehearsal overlay (tests/pipeline/rehearsal.py) is merged over config/paper.yaml; it only
changes parameters (artefact sources, model size, epochs), never code.
"""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from hqm.data.classes import VALID_COCO_IDS
from hqm.io import read_json

from .conftest import REPO
from .rehearsal import PINNED_IN_OVERLAY, SERVED, rehearsal_overlay, serve_files, sha256

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
from local_http import LocalServer, Reply  # noqa: E402

SNAKEMAKE = [sys.executable, "-m", "snakemake"]
RUNS = [(d, v) for d in ("hico_det", "vcoco") for v in ("qpic", "hqm")]


def run(cmd, cwd, env):
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return result.stdout + result.stderr


def model_of(path):
    return torch.load(path, map_location="cpu", weights_only=False)["model"]


def check_data(root, files):
    pins = read_json(root / "data/checksums.json")
    paper = yaml.safe_load((REPO / "config/paper.yaml").read_text())["artefacts"]
    for name, served in files.items():
        assert (root / "data" / paper[name]["path"]).read_bytes() == served.read_bytes()  # at the paper's path
        if name in PINNED_IN_OVERLAY:  # verified against the overlay's digest, nothing pinned
            assert name not in pins
        else:  # sha256 null: pinned on first use, every pin kept although the fetches ran in parallel
            assert pins[name]["sha256"] == sha256(served) and pins[name]["url"].endswith("/" + served.name)
    hico = read_json(root / "data/hico_det/annotations/trainval_hico.json")
    assert len(hico) == 6 and (root / "data/hico_det/images/test2015/HICO_test2015_00000001.jpg").is_file()
    vcoco = read_json(root / "data/vcoco/annotations/test_vcoco.json")
    assert len(vcoco) == 3 and any(h["object_id"] == -1 for e in vcoco for h in e["hoi_annotation"])
    assert (root / "data/vcoco/images/val2014" / vcoco[0]["file_name"]).is_file()
    detr = model_of(root / "data/downloads/detr-r50-e632da11.pth")
    hico_w = model_of(root / "data/weights/detr_r50_hico_qpic.pth")
    assert torch.equal(hico_w["obj_class_embed.bias"], detr["class_embed.bias"][[*VALID_COCO_IDS, 91]])
    vcoco_w = model_of(root / "data/weights/detr_r50_vcoco_hqm.pth")
    assert vcoco_w["transformer.decoder.obj_class_embed.bias"].shape == (82,)


def check_run(root, dataset, variant):
    run_dir = root / f"runs/{dataset}/{variant}/seed1"
    fmt = "hico" if dataset == "hico_det" else "vcoco"
    layout = "qpic" if variant == "qpic" else "hqm"
    resolved = yaml.safe_load((run_dir / "run_config.yaml").read_text())
    assert resolved["model"]["init_weights"] == f"data/weights/detr_r50_{fmt}_{layout}.pth"
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["provenance"]["world_size"] == 2
    # the backbone stem is frozen: the trained checkpoint still holds the DETR file's values
    detr = model_of(root / "data/downloads/detr-r50-e632da11.pth")
    trained = model_of(run_dir / "checkpoint_last.pth")
    key = "backbone.0.body.conv1.weight"
    assert torch.equal(trained[key], detr[key])
    metrics = read_json(run_dir / "metrics_last.json")
    assert metrics["checkpoint"] == "last" and metrics["num_images"] == 3
    if fmt == "hico":  # the heads predict the centre box, bicycle: true positives in image 1
        official = metrics["hico"]["official"]
        assert official["default"]["mAP"] > 0 and official["known_object"]["mAP"] > 0
        assert sum(c["num_gt"] for c in official["default"]["per_category"]) == 4  # the converted test HOIs
        assert 0 <= metrics["hico"]["qpic"]["default"]["mAP"] <= 1
    else:
        official = metrics["vcoco"]["official"]
        assert official["role_ap_s1_24"] > 0 and official["role_ap_s2_24"] > 0 and official["agent_ap"] > 0
        assert official["role_ap_per_pair_s1"]["ride-instr"] > 0  # the centre person rides the centre bicycle
        assert sum(metrics["vcoco"]["qpic"]["num_gt_per_verb"].values()) == 6
    return read_json(run_dir / "headline_last.json")


@pytest.mark.slow
def test_paper_chain_rehearsed_offline(tool_env, tmp_path):
    files = serve_files(tmp_path / "served")
    routes = {f"/{path.name}": Reply(path.read_bytes()) for path in files.values()}
    with LocalServer(routes) as server:
        overlay = tmp_path / "rehearsal.yaml"
        overlay.write_text(yaml.safe_dump(rehearsal_overlay(server.base, files), sort_keys=False))
        shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
        # the documented local command (docs/pipeline.md), on 2 cores and in tmp_path
        base = SNAKEMAKE + ["-s", str(REPO / "Snakefile"), "--profile", str(REPO / "profiles/local"),
                            "-d", str(tmp_path), "--cores", "2",
                            "--configfile", str(REPO / "config/paper.yaml"), str(overlay)]  # fmt: skip
        run(base, REPO, tool_env)
        assert sorted(server.paths()) == sorted(f"/{name}" for name in SERVED.values())  # each fetched once
    check_data(tmp_path, files)
    for fmt, root in (("hico", "data/hico_det"), ("vcoco", "data/vcoco")):  # the training rules, every image decoded
        run(["hqm", "check-dataset", "--format", fmt, "--root", root], tmp_path, tool_env)
    for dataset, variant in RUNS:
        headline = check_run(tmp_path, dataset, variant)
        key = "hico_default_full" if dataset == "hico_det" else "vcoco_role_ap_s1"
        table = (tmp_path / f"results/tables/{dataset}.md").read_text()
        name = "QPIC (ours)" if variant == "qpic" else "QPIC + HQM (ours)"
        row = next(line for line in table.splitlines() if line.startswith(f"| {name}") and "last" in line)
        assert f"{headline[key]:.2f}" in row, (row, headline)
    for dataset in ("hico_det", "vcoco"):
        for ext in ("md", "tex", "csv"):
            text = (tmp_path / f"results/tables/{dataset}.{ext}").read_text()
            assert "HQM" in text and ("resnet18" if ext == "csv" else "R18") in text
    assert "Nothing to be done" in run(base + ["-n"], REPO, tool_env)
    mirrored = yaml.safe_load(overlay.read_text())  # a mirror added to every artefact reruns nothing
    for entry in mirrored["artefacts"].values():
        entry["sources"].append("https://mirror.invalid/" + entry["sources"][0].rsplit("/", 1)[1])
    overlay.write_text(yaml.safe_dump(mirrored, sort_keys=False))
    assert "Nothing to be done" in run(base + ["-n"], REPO, tool_env)
    shutil.rmtree(tmp_path)  # 1.3 GB of weights and checkpoints; kept when an assertion failed
