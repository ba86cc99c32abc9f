"""`snakemake --profile profiles/slurm` on the CI overlay through a stand-in SLURM (fake_slurm.py):
what each sbatch asked for, which rules stayed local, how many ranks each training started.

The overlay asks 2 GPUs per run: SLURM is asked for gres gpu:2 and `hqm train --nproc 2` starts two
ranks (gloo on this CPU-only machine). With the stand-in hqm the graph and the sbatch calls are
checked in seconds; the slow test runs the real hqm (needs the engine's train/evaluate contract).
"""

import json
import os
import stat
import subprocess
import sys

import pytest
import yaml

from hqm.config import deep_merge
from hqm.pipeline.stages import checkpoints

from .conftest import CI_OVERLAY, REPO

TOOLS = ("sbatch", "srun", "sacct", "squeue", "sacctmgr", "sinfo", "scontrol")
SLURM_OVERLAY = {"experiment": {"gpus_per_run": 2}}


def slurm_env(env, tmp_path):
    """``env`` with the stand-in SLURM tools first on PATH."""
    bin_dir, state = tmp_path / "slurm_bin", tmp_path / "slurm_state"
    bin_dir.mkdir()
    state.mkdir()
    for tool in TOOLS:
        script = bin_dir / tool
        script.write_text(
            f'#!/bin/sh\nFAKE_SLURM_TOOL={tool} exec "{sys.executable}" "{REPO / "tests/pipeline/fake_slurm.py"}" "$@"\n')
        script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return dict(env, PATH=f"{bin_dir}{os.pathsep}{env['PATH']}", FAKE_SLURM_DIR=str(state)), state


def run_slurm_pipeline(env, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    params = deep_merge(deep_merge(yaml.safe_load((REPO / "params.yaml").read_text()),
                                   yaml.safe_load(CI_OVERLAY.read_text())), SLURM_OVERLAY)
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env, state = slurm_env(env, tmp_path)
    cmd = [sys.executable, "-m", "snakemake", "--profile", str(REPO / "profiles/slurm"), "-s", str(REPO / "Snakefile"),
           "-d", str(work), "--slurm-init-seconds-before-status-checks", "1", "--latency-wait", "5",
           "--jobs", "4", "--retries", "0"]
    result = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=1800)
    logs = "\n".join(p.read_text()[-2000:] for p in sorted(state.glob("*.log")))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:] + logs
    sbatch = [json.loads(line) for line in (state / "sbatch.jsonl").read_text().splitlines()]
    srun = [json.loads(line) for line in (state / "srun.jsonl").read_text().splitlines()]
    return work, sbatch, srun, len(checkpoints(params))


def rule_of(argv):
    """The rule a job runs: the plugin names it in the sbatch comment (`rule_<name>_wildcards_...`)."""
    comment = argv[argv.index("--comment") + 1]
    return comment.split("rule_", 1)[1].split("_wildcards", 1)[0] if "rule_" in comment else comment


def check_sbatch(sbatch, kept):
    by_rule = {}
    for argv in sbatch:
        by_rule.setdefault(rule_of(argv), []).append(argv)
    # light stages are localrules: only the runs, their evaluations and the weights were submitted
    assert set(by_rule) == {"train", "evaluate", "pretrain_detr", "convert_weights"}, set(by_rule)
    assert len(by_rule["train"]) == 2 and len(by_rule["evaluate"]) == 2 * kept  # last (+ best)
    assert len(by_rule["pretrain_detr"]) == 1 and len(by_rule["convert_weights"]) == 2  # hico x 2 layouts
    (pretrain,) = by_rule["pretrain_detr"]
    assert "--gres=gpu:1" in pretrain and pretrain[pretrain.index("-p") + 1] == "gpu"
    assert all(argv[argv.index("-p") + 1] == "cpu" for argv in by_rule["convert_weights"])
    for argv in by_rule["train"]:
        assert {"--gres=gpu:2", "--nodes=1", "--cpus-per-task=32", "-p"} <= set(argv), argv
        assert argv[argv.index("-p") + 1] == "gpu"
        assert not any(a.startswith(("--ntasks-per-gpu", "--gpus")) for a in argv), argv
    for argv in by_rule["evaluate"]:
        assert "--gres=gpu:1" in argv and argv[argv.index("-p") + 1] == "gpu"


def test_slurm_profile_submits_runs_only(fake_hqm_env, tmp_path):
    work, sbatch, srun, kept = run_slurm_pipeline(fake_hqm_env, tmp_path)
    check_sbatch(sbatch, kept)
    assert (work / "results/tables/synthetic_hico.md").exists()
    calls = [json.loads(line) for line in (tmp_path / "hqm_calls.jsonl").read_text().splitlines()]
    trains = [argv for argv in calls if argv[0] == "train"]
    assert len(trains) == 2 and all(argv[-2:] == ["--nproc", "2"] for argv in trains)  # no --claim-gpus
    # each job ran as one SLURM step of one task (the plugin's `srun -n1`)
    assert all("-n1" in argv for argv in srun)


@pytest.mark.slow
def test_slurm_profile_end_to_end(tool_env, tmp_path):
    """The real hqm under the stand-in SLURM: each training starts 2 ranks (needs the merged engine)."""
    work, sbatch, _, kept = run_slurm_pipeline(tool_env, tmp_path)
    check_sbatch(sbatch, kept)
    for variant in ("qpic", "hqm"):
        run = work / f"runs/synthetic_hico/{variant}/seed1"
        provenance = yaml.safe_load((run / "config.yaml").read_text())["provenance"]
        assert provenance.get("world_size") == 2, provenance
        assert (run / "metrics_last.json").exists()
    assert (work / "results/tables/synthetic_hico.md").stat().st_size > 0
