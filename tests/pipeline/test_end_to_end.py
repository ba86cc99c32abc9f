"""Both drivers end to end on a tiny overlay with 2 gloo ranks per training (slow: ~minutes)."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from hqm.io import read_json

SNAKEMAKE = [sys.executable, "-m", "snakemake"]
DVC = [str(Path(sys.executable).parent / "dvc")]


def run(cmd, cwd, env):
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout + result.stderr


def check_results(root):
    for ext in ("md", "tex", "csv"):
        assert (root / f"results/tables/synthetic_hico.{ext}").stat().st_size > 0
    assert (root / "results/plots/synthetic_hico_curves.png").read_bytes()[:4] == b"\x89PNG"
    md = (root / "results/tables/synthetic_hico.md").read_text()
    assert "| qpic" in md and "| hqm" in md and "29.07" in md
    for variant in ("qpic", "hqm"):
        metrics = read_json(root / f"runs/synthetic_hico/{variant}/seed1/metrics.json")
        assert metrics["variant"] == variant and metrics["seed"] == 1 and "hico" in metrics


@pytest.mark.slow
def test_snakemake_end_to_end(repo, tool_env, tmp_path):
    shutil.copy(repo / "params.yaml", tmp_path / "params.yaml")
    base = SNAKEMAKE + ["-s", str(repo / "Snakefile"), "-d", str(tmp_path), "--cores", "2",
                        "--configfile", str(repo / "tests/pipeline/ci_overlay.yaml")]
    run(base, repo, tool_env)
    check_results(tmp_path)
    run_cfg = yaml.safe_load((tmp_path / "runs/synthetic_hico/hqm/seed1/config.yaml").read_text())
    assert run_cfg["train"]["epochs"] == 1 and run_cfg["hard_queries"]["loss_weight"] == 0.8
    assert "Nothing to be done" in run(base + ["-n"], repo, tool_env)  # a second run does nothing
    run(base + ["--report", str(tmp_path / "report.html")], repo, tool_env)  # offline, self-contained
    html = (tmp_path / "report.html").read_text()
    assert "synthetic_hico_curves.png" in html and "synthetic_hico.md" in html
    # one variant's parameter reruns that variant and what reads its results, nothing else
    out = run(base + ["-n", "--config", "variants={hqm: {method: hqm, train: {lr: 0.0002}}}"], repo, tool_env)
    stats = out.split("Job stats:")[1].split("Reasons:")[0]
    jobs = dict(re.findall(r"^(\w+)\s+(\d+)$", stats, re.M))
    assert jobs == {"resolve_config": "1", "train": "1", "tables": "1", "plots": "1", "all": "1", "total": "5"}
    assert "wildcards: dataset=synthetic_hico, variant=qpic" not in out

    # an interrupted run: Snakemake removes a failed job's outputs, never <run>/state; the
    # restarted pipeline resumes from it (here at its last step: same weights, no new training)
    run_dir = tmp_path / "runs/synthetic_hico/qpic/seed1"
    before = weights(run_dir / "checkpoint.pth")
    for name in ("checkpoint.pth", "metrics.json", "log.jsonl", "config.yaml"):
        (run_dir / name).unlink()
    shutil.rmtree(tmp_path / "results")  # never made: the pipeline stopped in the training
    assert (run_dir / "state").is_dir()
    run(base, repo, tool_env)
    after = weights(run_dir / "checkpoint.pth")
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    # a changed parameter trains afresh, never resumes the state of the old configuration
    hqm_dir = tmp_path / "runs/synthetic_hico/hqm/seed1"
    old = weights(hqm_dir / "checkpoint.pth")
    run(base + ["--config", "variants={hqm: {method: hqm, train: {lr: 0.01}}}"], repo, tool_env)
    assert yaml.safe_load((hqm_dir / "config.yaml").read_text())["train"]["lr"] == 0.01
    new = weights(hqm_dir / "checkpoint.pth")
    assert any(not torch.equal(old[k], new[k]) for k in old)


def weights(path):
    return torch.load(path, map_location="cpu", weights_only=False)["model"]


@pytest.mark.slow
def test_dvc_end_to_end(repo, tool_env, tmp_path):
    shutil.copy(repo / "params.yaml", tmp_path / "params.yaml")
    run([sys.executable, str(repo / "workflow/stages.py"), "--params", str(tmp_path / "params.yaml"),
         "--overlay", str(repo / "tests/pipeline/ci_overlay.yaml"), "--merge-params",
         "--out", str(tmp_path / "dvc.yaml")], repo, tool_env)
    run(["git", "init", "-q"], tmp_path, tool_env)
    run(DVC + ["init", "-q"], tmp_path, tool_env)
    run(DVC + ["config", "core.analytics", "false"], tmp_path, tool_env)
    run(DVC + ["repro"], tmp_path, tool_env)
    check_results(tmp_path)
    assert "up to date" in run(DVC + ["status"], tmp_path, tool_env)
    params = yaml.safe_load((tmp_path / "params.yaml").read_text())
    params["variants"]["hqm"]["train"] = {"lr": 0.0002}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    status = run(DVC + ["status"], tmp_path, tool_env)
    changed = {line.rstrip(":").strip() for line in status.splitlines() if line.rstrip().endswith(":") and not line.startswith("\t")}
    assert changed == {"resolve_config-synthetic_hico-hqm-seed1", "train-synthetic_hico-hqm-seed1"}
