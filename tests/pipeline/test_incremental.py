"""What an edit reruns, in both drivers, on the CI overlay with the stand-in hqm (fake_hqm.py):
evaluation.* reruns evaluation and the reports only; a variant's entry its runs only; the DVC grid
grows and shrinks with experiment.seeds / experiment.variants."""

import json
import re
import subprocess
import sys

import yaml

from hqm.config import deep_merge
from hqm.pipeline.dvc import render
from hqm.pipeline.stages import checkpoints

from .conftest import CI_OVERLAY, REPO

DVC = [str(REPO / ".venv/bin/dvc")] if (REPO / ".venv/bin/dvc").exists() else [sys.executable, "-m", "dvc"]


def run(cmd, cwd, env):
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout + result.stderr


def job_counts(dry_run_output):
    stats = dry_run_output.split("Job stats:")[1].split("Reasons:")[0]
    return {rule: int(n) for rule, n in re.findall(r"^(\w+)\s+(\d+)$", stats, re.M) if rule != "total"}


def ci_params():
    return deep_merge(yaml.safe_load((REPO / "params.yaml").read_text()), yaml.safe_load(CI_OVERLAY.read_text()))


def test_snakemake_edits_rerun_only_their_stages(fake_hqm_env, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    (work / "params.yaml").write_text(yaml.safe_dump(ci_params(), sort_keys=False))
    base = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(work), "--cores", "1"]
    run(base, work, fake_hqm_env)
    assert (work / "results/tables/synthetic_hico.md").exists()
    assert "Nothing to be done" in run(base + ["-n"], work, fake_hqm_env)
    run_cfg = yaml.safe_load((work / "runs/synthetic_hico/hqm/seed1/run_config.yaml").read_text())
    assert "evaluation" not in run_cfg and run_cfg["train"]["epochs"] == 1

    kept = len(checkpoints(ci_params()))  # last (+ best with train.select_best)
    out = run(base + ["-n", "--config", "evaluation={batch_size: 3}"], work, fake_hqm_env)
    assert job_counts(out) == {"evaluate": 2 * kept, "tables": 1, "plots": 1, "all": 1}
    out = run(base + ["-n", "--config", "variants={hqm: {method: hqm, train: {lr: 0.0002}}}"], work, fake_hqm_env)
    assert job_counts(out) == {"resolve_config": 1, "train": 1, "evaluate": kept, "tables": 1, "plots": 1,
                               "gallery": 1, "all": 1}
    assert "variant=qpic" not in out
    # an evaluation edit, run: the evaluations see the new settings, the trainings are untouched
    ckpt = work / "runs/synthetic_hico/qpic/seed1/checkpoint_last.pth"
    before = ckpt.stat().st_mtime_ns
    run(base + ["--config", "evaluation={batch_size: 3}"], work, fake_hqm_env)
    metrics = json.loads((work / "runs/synthetic_hico/qpic/seed1/metrics_last.json").read_text())
    assert json.loads(metrics["evaluation"])["batch_size"] == 3 and ckpt.stat().st_mtime_ns == before


def dvc_changed(status_output):
    return {line.rstrip(":").strip() for line in status_output.splitlines()
            if line.rstrip().endswith(":") and not line.startswith(("\t", " "))}


def dvc_work(tmp_path):
    """A folder with the CI params and the dvc.yaml rendered from them: (folder, params)."""
    work = tmp_path / "work"
    work.mkdir()
    params = ci_params()
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (work / "dvc.yaml").write_text(render(params))
    return work, params


def test_dvc_edits_rerun_only_their_stages(fake_hqm_env, tmp_path):
    work, params = dvc_work(tmp_path)
    run(DVC + ["init", "--no-scm", "-q"], work, fake_hqm_env)
    run(DVC + ["repro"], work, fake_hqm_env)
    assert (work / "results/tables/synthetic_hico.md").exists()
    assert "up to date" in run(DVC + ["status"], work, fake_hqm_env)

    edited = deep_merge(params, {"evaluation": {"batch_size": 3}})
    (work / "params.yaml").write_text(yaml.safe_dump(edited, sort_keys=False))
    assert dvc_changed(run(DVC + ["status"], work, fake_hqm_env)) == {
        f"evaluate-synthetic_hico@{v}-1-{w}" for v in ("qpic", "hqm") for w in checkpoints(params)}
    calls = tmp_path / "hqm_calls.jsonl"
    calls.write_text("")
    run(DVC + ["repro"], work, fake_hqm_env)
    commands = [json.loads(line)[0] for line in calls.read_text().splitlines()]
    assert "train" not in commands and commands.count("evaluate") == 2 * len(checkpoints(params))
    assert "tables" in commands

    # one more seed: DVC's matrix adds its runs, nothing else of the old runs reruns
    grown = deep_merge(edited, {"experiment": {"seeds": [1, 2]}})
    (work / "params.yaml").write_text(yaml.safe_dump(grown, sort_keys=False))
    changed = dvc_changed(run(DVC + ["status"], work, fake_hqm_env))
    assert {"train-synthetic_hico@qpic-2", "train-synthetic_hico@hqm-2"} <= changed
    assert not any("-1" in name and name.startswith(("train", "evaluate")) for name in changed)
    calls.write_text("")
    run(DVC + ["repro"], work, fake_hqm_env)
    trains = [json.loads(line) for line in calls.read_text().splitlines() if json.loads(line)[0] == "train"]
    assert sorted(argv[argv.index("--out") + 1] for argv in trains) == [
        "runs/synthetic_hico/hqm/seed2", "runs/synthetic_hico/qpic/seed2"]
    tables = [json.loads(line) for line in calls.read_text().splitlines() if json.loads(line)[0] == "tables"]
    assert len(tables) == 1 and sum("seed2" in a for a in tables[0]) == 2 * len(checkpoints(params))  # via hqm grid


def test_dvc_pull_gives_a_coauthor_the_results_without_training(fake_hqm_env, tmp_path):
    """`dvc push` to a local remote; a fresh checkout with `dvc pull` is up to date (no training)."""
    work, clone, remote = tmp_path / "work", tmp_path / "clone", tmp_path / "remote"
    work.mkdir()
    params = ci_params()
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (work / "dvc.yaml").write_text(render(params))
    for where in (work, clone):  # the committed .dvc/config: a default local-folder remote
        where.mkdir(exist_ok=True)
        run(DVC + ["init", "--no-scm", "-q"], where, fake_hqm_env)
        (where / ".dvc/config").write_text((REPO / ".dvc/config").read_text())
        run(DVC + ["config", "core.no_scm", "true"], where, fake_hqm_env)  # these copies have no git
        assert run(DVC + ["remote", "default"], where, fake_hqm_env).strip() == "local"
        run(DVC + ["remote", "modify", "--local", "local", "url", str(remote)], where, fake_hqm_env)
    run(DVC + ["repro"], work, fake_hqm_env)
    run(DVC + ["push"], work, fake_hqm_env)
    for name in ("params.yaml", "dvc.yaml", "dvc.lock"):
        (clone / name).write_text((work / name).read_text())
    calls = tmp_path / "hqm_calls.jsonl"
    calls.write_text("")
    run(DVC + ["pull"], clone, fake_hqm_env)
    for path in ("runs/synthetic_hico/hqm/seed1/checkpoint_last.pth", "runs/synthetic_hico/hqm/seed1/curves.csv",
                 "runs/synthetic_hico/qpic/seed1/metrics_last.json", "results/tables/synthetic_hico.md"):
        assert (clone / path).read_bytes() == (work / path).read_bytes(), path
    assert "up to date" in run(DVC + ["status"], clone, fake_hqm_env)
    run(DVC + ["repro", "--force", "--single-item", "tables-synthetic_hico"], clone, fake_hqm_env)
    commands = [json.loads(line)[0] for line in calls.read_text().splitlines()]
    assert "train" not in commands and "tables" in commands  # tables again, from pulled metrics


def test_dvc_exp_run_set_param_adds_and_drops_runs(fake_hqm_env, tmp_path):
    """`dvc exp run -S experiment.seeds=[...]` / `-S experiment.variants=[...]` change the runs."""
    work, params = dvc_work(tmp_path)
    git = ["git", "-c", "user.email=t@t", "-c", "user.name=t"]
    run(["git", "init", "-q"], work, fake_hqm_env)
    run(DVC + ["init", "-q"], work, fake_hqm_env)
    run(DVC + ["config", "core.analytics", "false"], work, fake_hqm_env)
    run(DVC + ["repro"], work, fake_hqm_env)
    run(git + ["add", "-A"], work, fake_hqm_env)
    run(git + ["commit", "-qm", "baseline"], work, fake_hqm_env)
    calls = tmp_path / "hqm_calls.jsonl"
    calls.write_text("")
    run(DVC + ["exp", "run", "-S", "experiment.seeds=[1,2]", "-S", "experiment.variants=[hqm]"], work, fake_hqm_env)
    argvs = [json.loads(line) for line in calls.read_text().splitlines()]
    trained = sorted(a[a.index("--out") + 1] for a in argvs if a[0] == "train")
    assert trained == ["runs/synthetic_hico/hqm/seed2"]  # seed 1 of hqm was already there
    tables = next(a for a in argvs if a[0] == "tables")
    metrics = tables[tables.index("--metrics") + 1:tables.index("--out-dir")]
    assert metrics == [f"runs/synthetic_hico/hqm/seed{s}/metrics_{w}.json" for s in (1, 2) for w in checkpoints(params)]
    assert tables[tables.index("--variants") + 1] == "hqm"
