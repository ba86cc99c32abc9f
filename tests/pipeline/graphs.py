"""Both drivers' graphs as {stage name: job}, for comparing them (tests/pipeline)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import yaml

from hqm.cli import main as hqm_main
from hqm.pipeline.dvc import render
from hqm.pipeline.params import pretrain_param_keys, select_params, train_param_keys

REPO = Path(__file__).resolve().parents[2]
LOG_REDIRECT = re.compile(r" > \S+ 2>&1$")
TABLE_RULES = {"resolve_config", "train", "evaluate", "evaluate_vcoco", "tables", "plots", "gallery"}


def snakemake_jobs(workdir, env, *extra) -> tuple[dict[str, dict], str]:
    """{DVC-style stage name: job} of a forced dry run in ``workdir``; job = rule, input, output,
    wildcards, resources, shell, local. Also the dry run's whole output."""
    out = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir), "-n",
         "--forceall", "--printshellcmds", "--cores", "1", *extra],
        cwd=workdir, env=env, capture_output=True, text=True, timeout=600,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    jobs, current = {}, None
    for line in out.stdout.splitlines():
        if m := re.match(r"^(local)?rule (\w+):$", line):
            current = {"rule": m.group(2), "local": bool(m.group(1)), "input": [], "output": [],
                       "wildcards": {}, "resources": {}}
        elif current is not None and (m := re.match(r"^    (input|output|wildcards|resources): (.*)$", line)):
            items = [x.strip() for x in m.group(2).split(", ")]
            if m.group(1) in ("wildcards", "resources"):
                current[m.group(1)] = dict(item.split("=", 1) for item in items)
            else:
                current[m.group(1)] = items
        elif current is not None and line.startswith("Shell command: "):
            current["shell"] = LOG_REDIRECT.sub("", line[len("Shell command: "):])
            if current["rule"] != "all":
                jobs[stage_name(current)] = current
            current = None
    return jobs, out.stdout


RULES_SCRIPT = """
import json, sys
from pathlib import Path
from snakemake.api import SnakemakeApi
from snakemake.settings.types import ConfigSettings, OutputSettings, ResourceSettings, StorageSettings
with SnakemakeApi(OutputSettings()) as api:
    wf = api.workflow(resource_settings=ResourceSettings(), config_settings=ConfigSettings(),
                      storage_settings=StorageSettings(), snakefile=Path(sys.argv[1]), workdir=Path(sys.argv[2]))
    print(json.dumps({r.name: r.name in wf._workflow._localrules for r in wf._workflow.rules}))
"""


def snakemake_localrules(workdir, env) -> dict[str, bool]:
    """{rule: declared a localrule} (what the dry run cannot show: it runs everything locally)."""
    out = subprocess.run([sys.executable, "-c", RULES_SCRIPT, str(REPO / "Snakefile"), str(workdir)],
                         cwd=workdir, env=env, capture_output=True, text=True, timeout=300, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def stage_name(job: dict) -> str:
    """dvc.yaml's name of a Snakemake job: ``<rule>-<dataset>[@<matrix values>]`` for the table's
    stages, ``<rule>-<wildcards>`` for the data stages."""
    wc = job["wildcards"]
    if job["rule"] in TABLE_RULES:
        grid = [wc[k] for k in ("variant", "seed", "which") if k in wc]
        return f"{job['rule']}-{wc['dataset']}" + (f"@{'-'.join(grid)}" if grid else "")
    return "-".join([job["rule"], *(v.replace("/", "_") for v in wc.values())])


def dvc_stages(workdir: Path, params: dict) -> dict[str, dict]:
    """dvc.yaml rendered for ``params`` in ``workdir`` and resolved by DVC itself (matrix, ${})."""
    from dvc.dependency.param import ParamsDependency
    from dvc.repo import Repo

    (workdir / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (workdir / "dvc.yaml").write_text(render(params))
    if not (workdir / ".dvc").exists():
        Repo.init(str(workdir), no_scm=True)
    repo = Repo(str(workdir))
    try:
        stages = {}
        for stage in repo.index.stages:
            deps = [d for d in stage.deps if not isinstance(d, ParamsDependency)]
            params_deps = [d for d in stage.deps if isinstance(d, ParamsDependency)]
            stages[stage.name] = {
                "cmd": stage.cmd,
                "deps": sorted(str(d.def_path) for d in deps),
                "outs": sorted(str(o.def_path) for o in stage.outs),
                "params": sorted(k for d in params_deps for k in d.params),
            }
        return stages
    finally:
        repo.close()


def expand_grid_calls(cmd: str, workdir: Path) -> str:
    """Run each ``$(hqm grid ...)`` of a DVC command (in ``workdir``) and put its output in place."""

    def run(match: re.Match) -> str:
        buffer = io.StringIO()
        cwd = os.getcwd()
        os.chdir(workdir)
        try:
            with contextlib.redirect_stdout(buffer):
                assert hqm_main(["grid", *shlex.split(match.group(1))]) == 0
        finally:
            os.chdir(cwd)
        return buffer.getvalue().strip()

    return re.sub(r"\$\(hqm grid ([^)]*)\)", run, cmd)


def normalise_snake_shell(job: dict, params: dict) -> str:
    """The Snakemake command with the JSON it hands over checked and replaced by DVC's file."""
    shell = job["shell"]
    if m := re.search(r"--params-json ('[^']*')", shell):
        wc = job["wildcards"]
        keys = (pretrain_param_keys(params) if job["rule"] == "pretrain_detr"
                else train_param_keys(params, wc["dataset"], wc["variant"]))
        expected = select_params(params, keys)
        assert json.loads(shlex.split(m.group(1))[0]) == expected, job
        shell = shell.replace(m.group(0), "--params params.yaml")
    if m := re.search(r"--eval-json ('[^']*')", shell):
        assert json.loads(shlex.split(m.group(1))[0]) == params["evaluation"], job
        shell = shell.replace(m.group(0), "--eval-config params.yaml")
    return " ".join(shell.split())


def compare(snake: dict[str, dict], dvc: dict[str, dict], params: dict, workdir: Path) -> None:
    """Same stages, inputs, outputs and commands in both drivers."""
    assert set(snake) == set(dvc), (set(snake) ^ set(dvc))
    runs = params["experiment"]["runs_dir"]
    for name, stage in dvc.items():
        job = snake[name]
        if job["rule"] in ("tables", "plots"):  # DVC: the runs folder, whose files the grid names
            assert stage["deps"] == [f"{runs}/{job['wildcards']['dataset']}"], name
            assert all(p.startswith(stage["deps"][0] + "/") for p in job["input"]), name
        else:
            assert sorted(job["input"]) == stage["deps"], name
        assert sorted(job["output"]) == stage["outs"], name
        cmd = " ".join(expand_grid_calls(stage["cmd"], workdir).split())
        assert normalise_snake_shell(job, params) == cmd, name
