"""Both drivers end to end with the real hqm on the CI overlay, 2 gloo ranks per training (slow).

Written against the run-folder contract (checkpoint_last.pth, curves.csv, metrics_last.json,
headline_last.json; hqm evaluate --eval-json / --eval-config): they need the engine's train and
evaluate commands of that contract.
"""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from hqm.config import deep_merge
from hqm.io import read_json
from hqm.pipeline.dvc import render
from hqm.pipeline.stages import checkpoints

from .conftest import CI_OVERLAY, REPO

SNAKEMAKE = [sys.executable, "-m", "snakemake"]
DVC = [str(Path(sys.executable).parent / "dvc")]


def run(cmd, cwd, env):
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout + result.stderr


def ci_kept():
    """Checkpoints evaluated per run on the CI overlay: last (+ best with train.select_best)."""
    params = deep_merge(yaml.safe_load((REPO / "params.yaml").read_text()), yaml.safe_load(CI_OVERLAY.read_text()))
    return len(checkpoints(params))


def check_results(root):
    for ext in ("md", "tex", "csv"):
        assert (root / f"results/tables/synthetic_hico.{ext}").stat().st_size > 0
    assert (root / "results/plots/synthetic_hico_curves.png").read_bytes()[:4] == b"\x89PNG"
    md = (root / "results/tables/synthetic_hico.md").read_text()
    assert md.count("(ours)") == 2 * ci_kept()  # per variant (QPIC, QPIC + HQM): last (+ best)
    for variant in ("qpic", "hqm"):
        run_dir = root / f"runs/synthetic_hico/{variant}/seed1"
        metrics = read_json(run_dir / "metrics_last.json")
        assert metrics["variant"] == variant and metrics["seed"] == 1 and metrics["checkpoint"] == "last"
        assert read_json(run_dir / "headline_last.json")
        assert (run_dir / "curves.csv").read_text().startswith("epoch,")
        assert yaml.safe_load((run_dir / "config.yaml").read_text())["provenance"]["world_size"] == 2
        assert "evaluation" not in yaml.safe_load((run_dir / "run_config.yaml").read_text())
        assert (root / f"results/gallery/synthetic_hico/{variant}.png").read_bytes()[:4] == b"\x89PNG"


def weights(path):
    return torch.load(path, map_location="cpu", weights_only=False)["model"]


@pytest.mark.slow
def test_snakemake_end_to_end(tool_env, tmp_path):
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    base = SNAKEMAKE + ["-s", str(REPO / "Snakefile"), "-d", str(tmp_path), "--cores", "2",
                        "--configfile", str(CI_OVERLAY)]
    run(base, REPO, tool_env)
    check_results(tmp_path)
    assert "Nothing to be done" in run(base + ["-n"], REPO, tool_env)
    run(base + ["--report", str(tmp_path / "report.html")], REPO, tool_env)  # offline, self-contained
    assert "synthetic_hico_curves.png" in (tmp_path / "report.html").read_text()
    out = run(base + ["-n", "--config", "evaluation={batch_size: 1}"], REPO, tool_env)
    stats = dict(re.findall(r"^(\w+)\s+(\d+)$", out.split("Job stats:")[1].split("Reasons:")[0], re.M))
    kept = ci_kept()
    assert stats == {"evaluate": str(2 * kept), "tables": "1", "plots": "1", "all": "1", "total": str(3 + 2 * kept)}

    # an interrupted run: Snakemake removes a failed job's outputs, never <run>/state; the
    # restarted pipeline resumes from it (here at its last step: same weights, no new training)
    run_dir = tmp_path / "runs/synthetic_hico/qpic/seed1"
    before = weights(run_dir / "checkpoint_last.pth")
    for path in run_dir.iterdir():  # every declared output; state/ and run_config.yaml stay
        if path.is_file() and path.name != "run_config.yaml":
            path.unlink()
    shutil.rmtree(tmp_path / "results")  # never made: the pipeline stopped in the training
    assert (run_dir / "state").is_dir()
    run(base, REPO, tool_env)
    after = weights(run_dir / "checkpoint_last.pth")
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)


@pytest.mark.slow
def test_dvc_end_to_end(tool_env, tmp_path):
    params = deep_merge(yaml.safe_load((REPO / "params.yaml").read_text()), yaml.safe_load(CI_OVERLAY.read_text()))
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (tmp_path / "dvc.yaml").write_text(render(params))
    run(DVC + ["init", "--no-scm", "-q"], tmp_path, tool_env)
    run(DVC + ["repro"], tmp_path, tool_env)
    check_results(tmp_path)
    assert "up to date" in run(DVC + ["status"], tmp_path, tool_env)
    assert "hico" in run(DVC + ["metrics", "show"], tmp_path, tool_env)
