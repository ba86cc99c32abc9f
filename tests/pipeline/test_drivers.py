"""Snakemake and DVC declare the same stages, inputs, outputs, params and commands.

Snakemake's graph comes from its dry run (`-n --forceall --printshellcmds`), DVC's from the
dvc.yaml that workflow/stages.py generates; the committed dvc.yaml must be that file.
"""

import json
import re
import subprocess
import sys

import pytest
import yaml

from hqm.config import deep_merge

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[2] / "workflow"))
import stages  # noqa: E402

LOG_REDIRECT = re.compile(r" > \S+ 2>&1$")


def snakemake_jobs(repo, env, *extra):
    """{stage name: job} from a forced dry run; job = rule, inputs, outputs, shell."""
    out = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--forceall", "--printshellcmds", "--cores", "1", *extra],
        cwd=repo, env=env, capture_output=True, text=True, check=True,
    ).stdout
    jobs, current = {}, None
    for line in out.splitlines():
        if m := re.match(r"^(?:local)?rule (\w+):$", line):
            current = {"rule": m.group(1), "input": [], "output": [], "wildcards": {}}
        elif current is not None and (m := re.match(r"^    (input|output|wildcards): (.*)$", line)):
            items = [x.strip() for x in m.group(2).split(", ")]
            if m.group(1) == "wildcards":
                current["wildcards"] = dict(item.split("=", 1) for item in items)
            else:
                current[m.group(1)] = items
        elif current is not None and line.startswith("Shell command: "):
            current["shell"] = line[len("Shell command: "):]
            if current["rule"] != "all":
                jobs[stage_name(current)] = current
            current = None
    return jobs


def stage_name(job):
    parts = [job["rule"]]
    for key, value in job["wildcards"].items():
        parts.append({"seed": f"seed{value}", "path": value.replace("/", "_")}.get(key, value))
    return "-".join(parts)


def dvc_paths(entries):
    return sorted(next(iter(e)) if isinstance(e, dict) else e for e in entries or [])


def flat_keys(tree, prefix=""):
    keys = set()
    for key, value in tree.items():
        if isinstance(value, dict) and key in ("datasets", "variants", "hard_queries"):
            keys |= {f"{key}.{k}" for k in value}
        else:
            keys.add(prefix + key)
    return keys


def fill_templates(cmd, params):
    def value(match):
        node = params
        for part in match.group(1).split("."):
            node = node[part]
        return str(node)

    return re.sub(r"\$\{([\w.]+)\}", value, cmd)


def compare(snake, dvc_stages, params):
    assert set(snake) == set(dvc_stages)
    for name, stage in dvc_stages.items():
        job = snake[name]
        assert sorted(job["input"]) == sorted(stage.get("deps", [])), name
        outs = dvc_paths(stage.get("outs")) + dvc_paths(stage.get("metrics")) + dvc_paths(stage.get("plots"))
        assert sorted(job["output"]) == sorted(outs), name
        shell = LOG_REDIRECT.sub("", job["shell"])
        shell = re.sub(r" --overlay \S+", "", shell)
        cmd = fill_templates(stage["cmd"], params)
        if job["rule"] == "resolve_config":
            m = re.search(r"--params-json '([^']*)'", shell)
            assert flat_keys(json.loads(m.group(1))) == set(stage["params"]), name
            shell = shell.replace(m.group(0), "--params params.yaml")
        assert " ".join(shell.split()) == " ".join(cmd.split()), name
        if job["rule"] == "train":
            assert stage["params"] == dvc_stages[name.replace("train-", "resolve_config-", 1)]["params"]


def test_committed_dvc_yaml_is_generated(repo, params_data):
    assert (repo / "dvc.yaml").read_text() == stages.render(params_data)


def test_demo_graphs_match(repo, params_data, tool_env):
    dvc = yaml.safe_load((repo / "dvc.yaml").read_text())["stages"]
    snake = snakemake_jobs(repo, tool_env)
    compare(snake, dvc, params_data)
    assert sum(j["rule"] == "train" for j in snake.values()) == 8
    train = dvc["train-synthetic_vcoco-hqm-seed42"]
    assert "hard_queries.gbs" in train["params"] and "variants.hqm" in train["params"]
    assert dvc_paths(train["metrics"]) == ["runs/synthetic_vcoco/hqm/seed42/metrics.json"]
    assert any(p.endswith(".png") for p in dvc_paths(dvc["plots-synthetic_hico"]["plots"]))


def test_paper_graphs_match(repo, params_data, tool_env, tmp_path):
    """The paper overlay plus stand-in dataset artefacts (their url/sha256 are filled in elsewhere)."""
    fake = {"artefacts": {
        "hico_20160224_det": {"url": "u", "sha256": "0" * 64, "path": "downloads/hico.tar.gz", "extract_to": "raw"},
        "vcoco_data": {"url": "u", "sha256": "1" * 64, "path": "downloads/vcoco.zip", "extract_to": "vcoco_raw"},
        "vcoco_prior": {"url": "u", "sha256": "2" * 64, "path": "downloads/prior.pickle"},
    }}
    overlay = tmp_path / "fake.yaml"
    overlay.write_text(yaml.safe_dump(fake))
    paper = yaml.safe_load((repo / "config/paper.yaml").read_text())
    merged = deep_merge(deep_merge(params_data, paper), fake)
    snake = snakemake_jobs(repo, tool_env, "--configfile", "config/paper.yaml", str(overlay), "--resources", "gpu=8")
    dvc = stages.build_stages(merged)
    compare(snake, dvc, merged)
    assert "--nproc 8" in dvc["train-hico_det-hqm-seed42"]["cmd"]
    assert dvc["train-vcoco-hqm-seed42"]["deps"][-1] == "data/weights/detr_r50_vcoco_hqm.pth"
    assert dvc["train-vcoco-qpic-seed42"]["deps"][-1] == "data/weights/detr_r50_vcoco_qpic.pth"


def test_snakemake_lint_is_clean(repo, tool_env):
    result = subprocess.run([sys.executable, "-m", "snakemake", "--lint"], cwd=repo, env=tool_env,
                            capture_output=True, text=True)
    assert result.returncode == 0 and "Lints for" not in result.stdout + result.stderr


@pytest.mark.parametrize("key", ["variants.gbs"])
def test_config_override_reaches_the_cli(repo, tool_env, key):
    """`--config` changes the JSON handed to resolve-config, for that variant only."""
    snake = snakemake_jobs(repo, tool_env, "--config", "variants={gbs: {method: gbs, train: {lr: 0.5}}}")
    gbs = snake["resolve_config-synthetic_hico-gbs-seed42"]["shell"]
    qpic = snake["resolve_config-synthetic_hico-qpic-seed42"]["shell"]
    assert '"lr": 0.5' in gbs and '"lr": 0.5' not in qpic
