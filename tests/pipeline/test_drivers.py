"""Snakemake and DVC run one graph: the stage table (hqm.pipeline.stages) rendered both ways.

Snakemake's graph comes from its forced dry run; DVC's from the dvc.yaml rendered from the same
params, resolved by DVC itself (matrix over experiment.variants x experiment.seeds, ${} values).
"""

import subprocess
import sys
from types import SimpleNamespace

import pytest
import yaml

from hqm.config import deep_merge
from hqm.pipeline.dvc import render
from hqm.pipeline.stages import checkpoints

from .graphs import compare, dvc_stages, snakemake_jobs, snakemake_localrules

PAPER_TRAININGS = {f"train-{ds}@{v}-42" for ds in ("hico_det", "vcoco") for v in ("qpic", "gbs", "amm", "hqm")}


def paper_params(repo, params_data, *more):
    data = deep_merge(params_data, yaml.safe_load((repo / "config/paper.yaml").read_text()))
    for extra in more:
        data = deep_merge(data, extra)
    return data


def test_committed_dvc_yaml_is_generated(repo, params_data):
    assert (repo / "dvc.yaml").read_text() == render(params_data)


def test_demo_graphs_match(repo, params_data, tool_env, tmp_path):
    dvc = dvc_stages(tmp_path, params_data)
    snake, _ = snakemake_jobs(tmp_path, tool_env)
    compare(snake, dvc, params_data, tmp_path)
    # experiment.dataset_variants: V-COCO trains QPIC and HQM only, HICO-DET all four variants
    trained = {(j["wildcards"]["dataset"], j["wildcards"]["variant"]) for j in snake.values() if j["rule"] == "train"}
    assert trained == {("synthetic_hico", v) for v in ("qpic", "gbs", "amm", "hqm")} | \
        {("synthetic_vcoco", v) for v in ("qpic", "hqm")}
    evaluations = 6 * len(checkpoints(params_data))  # last (+ best with train.select_best)
    assert sum(j["rule"].startswith("evaluate") for j in snake.values()) == evaluations
    assert {n for n in dvc if n.startswith("gallery-synthetic_vcoco")} == \
        {"gallery-synthetic_vcoco@qpic", "gallery-synthetic_vcoco@hqm"}
    assert "experiment.dataset_variants.synthetic_vcoco" in dvc["tables-synthetic_vcoco"]["params"]
    train = dvc["train-synthetic_vcoco@hqm-42"]
    assert train["params"] == []  # a training reads its run_config.yaml, whose content decides
    assert "variants.hqm" in dvc["resolve_config-synthetic_vcoco@hqm-42"]["params"]
    assert dvc["evaluate_vcoco-synthetic_vcoco@hqm-42-last"]["params"] == ["evaluation"]
    assert "runs/synthetic_vcoco/hqm/seed42/curves.csv" in train["outs"]
    # the DETR of pretrain.name: trained once on synthetic HICO-DET, converted per format and layout
    assert dvc["pretrain_detr"]["deps"] == ["data/synthetic_hico"]
    assert dvc["pretrain_detr"]["params"] == sorted(["pretrain", "model", "augment", "datasets.synthetic_hico"])
    assert "data/weights/detr_synthetic_vcoco_hqm.pth" in train["deps"]
    assert dvc["convert_weights-detr_synthetic-vcoco-hqm"]["deps"] == ["data/weights/detr_synthetic.pth"]
    assert not any(n.startswith("fetch") for n in dvc)  # nothing to download


def test_paper_graphs_match(repo, params_data, tool_env, tmp_path):
    merged = paper_params(repo, params_data)
    dvc = dvc_stages(tmp_path, merged)
    snake, _ = snakemake_jobs(tmp_path, tool_env)  # params.yaml in tmp_path is the merged one
    compare(snake, dvc, merged, tmp_path)
    assert {n for n in dvc if n.startswith("train-")} == PAPER_TRAININGS
    assert "data/weights/detr_r50_vcoco_hqm.pth" in dvc["train-vcoco@qpic-42"]["deps"]


def test_dvc_grid_follows_params(repo, params_data, tmp_path):
    """The run grid is DVC's matrix: more seeds or fewer variants in params.yaml, other stages."""
    edited = deep_merge(params_data, {"experiment": {"seeds": [42, 43, 44], "variants": ["qpic", "hqm"]}})
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(edited))
    stages = dvc_stages(tmp_path, edited)
    trains = {n for n in stages if n.startswith("train-synthetic_hico")}
    assert trains == {f"train-synthetic_hico@{v}-{s}" for v in ("qpic", "hqm") for s in (42, 43, 44)}
    # the same stages as for the committed params: nothing of the grid is written out in them
    assert yaml.safe_load(render(edited))["stages"] == yaml.safe_load(render(params_data))["stages"]


def test_paper_trainings_launch_on_one_node_with_8_gpus(repo, tool_env, tmp_path):
    """The README's SLURM command: every training one node, gres gpu:8, one task, 8 ranks."""
    (tmp_path / "params.yaml").write_text((repo / "params.yaml").read_text())
    snake, _ = snakemake_jobs(tmp_path, tool_env, "--profile", str(repo / "profiles/slurm"),
                                "--configfile", str(repo / "config/paper.yaml"))
    trains = {n: j for n, j in snake.items() if j["rule"] == "train"}
    assert set(trains) == PAPER_TRAININGS
    for job in trains.values():
        res = job["resources"]
        assert (res["gres"], res["nodes"], res["slurm_partition"], res["gpu"]) == ("gpu:8", "1", "gpu", "0")
        assert "tasks" not in res and "tasks_per_gpu" not in res
        assert " --nproc 8" in job["shell"] and "--nnodes" not in job["shell"]
        submit = sbatch_call(job)
        assert "--gres=gpu:8" in submit and "--nodes=1" in submit and "--cpus-per-task=32" in submit
        assert "--ntasks-per-gpu" not in submit and "--gpus=" not in submit and "-p gpu" in submit
    for job in snake.values():
        if job["rule"].startswith("evaluate"):
            assert (job["resources"]["gres"], job["resources"]["slurm_partition"]) == ("gpu:1", "gpu")
    local = snakemake_localrules(tmp_path, tool_env)  # light stages never reach the cluster
    assert {r for r, is_local in local.items() if not is_local} == {
        "train", "evaluate", "evaluate_vcoco", "convert_hico", "convert_vcoco", "convert_weights", "pretrain_detr"}


def test_runs_spanning_nodes(repo, tool_env, tmp_path):
    (tmp_path / "params.yaml").write_text((repo / "params.yaml").read_text())
    (tmp_path / "nodes.yaml").write_text("experiment: {nodes_per_run: 2}\n")
    snake, _ = snakemake_jobs(tmp_path, tool_env, "--profile", str(repo / "profiles/slurm"),
                              "--configfile", str(repo / "config/paper.yaml"), str(tmp_path / "nodes.yaml"))
    job = snake["train-hico_det@hqm-42"]
    assert (job["resources"]["gres"], job["resources"]["nodes"]) == ("gpu:4", "2")
    assert " --nproc 4 --nnodes 2" in job["shell"]
    assert "--gres=gpu:4" in sbatch_call(job) and "--nodes=2" in sbatch_call(job)


def test_local_gpu_runs_claim_their_gpus(repo, tool_env, tmp_path):
    (tmp_path / "params.yaml").write_text((repo / "params.yaml").read_text())
    snake, _ = snakemake_jobs(tmp_path, tool_env, "--configfile", str(repo / "config/paper.yaml"),
                              "--resources", "gpu=8")
    assert all(j["shell"].endswith("--nproc 8 --claim-gpus") for j in snake.values() if j["rule"] == "train")
    demo, _ = snakemake_jobs(tmp_path, tool_env)  # CPU: gloo ranks, nothing to claim
    assert not any("--claim-gpus" in j["shell"] for j in demo.values())


def test_no_default_profile(repo):
    """Snakemake loads profiles/default on top of any --profile: its settings would win."""
    assert not (repo / "profiles/default").exists()
    assert "--profile profiles/local" in (repo / "Makefile").read_text()


def sbatch_call(job: dict) -> str:
    """What snakemake-executor-plugin-slurm hands to sbatch for a job with these resources."""
    from snakemake_executor_plugin_slurm.submit_string import get_submit_command
    from snakemake_executor_plugin_slurm.utils import set_gres_string

    class Resources(dict):
        __getattr__ = dict.__getitem__

    res = Resources({k: int(v) if v.isdigit() else v for k, v in job["resources"].items()})
    fake = SimpleNamespace(resources=res, threads=int(res.get("_cores", 1)))
    params = {"run_uuid": "u", "slurm_logfile": "l", "comment_str": "c", "account": "",
              "partition": f"-p {res['slurm_partition']}", "workdir": None}
    return get_submit_command(fake, params) + set_gres_string(fake)


def test_snakemake_lint_is_clean(repo, tool_env):
    result = subprocess.run([sys.executable, "-m", "snakemake", "--lint"], cwd=repo, env=tool_env,
                            capture_output=True, text=True)
    assert result.returncode == 0 and "Lints for" not in result.stdout + result.stderr, result.stdout[-2000:]


@pytest.mark.parametrize("key", ["variants.gbs"])
def test_config_override_reaches_the_cli(repo, tool_env, tmp_path, key):
    """`--config` changes the JSON handed to resolve-config, for that variant only."""
    (tmp_path / "params.yaml").write_text((repo / "params.yaml").read_text())
    snake, _ = snakemake_jobs(tmp_path, tool_env, "--config", "variants={gbs: {method: gbs, train: {lr: 0.5}}}")
    gbs = snake["resolve_config-synthetic_hico@gbs-42"]["shell"]
    qpic = snake["resolve_config-synthetic_hico@qpic-42"]["shell"]
    assert '"lr": 0.5' in gbs and '"lr": 0.5' not in qpic
