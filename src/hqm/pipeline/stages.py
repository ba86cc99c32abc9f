"""The one table of the per-run and per-dataset stages, rendered for both drivers.

Each :class:`Stage` is a command template over the grid wildcards ``{dataset}``, ``{variant}``,
``{seed}``, ``{which}`` (checkpoint ``last`` / ``best``) plus dataset properties (``{root}``,
``{format}``). The Snakefile's rules take their inputs, outputs and shell command from here
(:func:`snake_shell`, :func:`expand_paths`); ``dvc.yaml`` is rendered from the same table
(:mod:`hqm.pipeline.dvc`) with DVC's own ``matrix:`` over ``${experiment.variants}`` and
``${experiment.seeds}``, so ``dvc exp run -S experiment.seeds=[...]`` adds and drops runs.
Lists of run files that DVC cannot template (tables, plots) come from ``hqm grid`` at run time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hqm.pipeline.params import (
    dataset_variants,
    detr_file,
    pretrain_param_keys,
    pretrained_detr,
    variants_key,
    weights_file,
)

RUN = "{runs}/{dataset}/{variant}/seed{seed}"
# the grid axes of each kind of stage (DVC matrix keys; Snakemake wildcards besides dataset)
AXES = {"dataset": (), "run": ("variant", "seed"), "eval": ("variant", "seed", "which"), "gallery": ("variant",)}


@dataclass(frozen=True)
class Out:
    """One output pattern and the dvc.yaml section it goes to."""

    path: str
    kind: str = "outs"  # outs | metrics | plots (DVC's sections); DVC caches (and pushes) them all


@dataclass(frozen=True)
class Stage:
    """One stage: Snakemake rule ``name``, DVC stage ``<name>-<dataset>`` (matrix over its grid).

    Besides the grid wildcards, ``cmd`` holds tokens each driver fills in: ``{params}`` (the run's
    params: JSON from Snakemake, params.yaml for DVC), ``{evaluation}``, ``{claim}`` (GPU pinning),
    ``{variants}`` and, for the dataset-wide stages, one token per ``deps`` key (the grid's files).
    """

    name: str
    grid: str  # a key of AXES
    cmd: str
    deps: dict[str, list[str]]
    outs: dict[str, Out]
    dvc_params: tuple[str, ...] = ()
    formats: tuple[str, ...] = ("hico", "vcoco")  # dataset formats the stage exists for


def checkpoints(params: dict) -> list[str]:
    """``last``, plus ``best`` when training selects a best epoch (train.select_best)."""
    return ["last", "best"] if params["train"].get("select_best") else ["last"]


def launch_flags(params: dict) -> str:
    """``--nproc N [--nnodes M] [--claim-gpus]`` of ``hqm train`` (N processes per node).

    ``{claim}`` stays a token: Snakemake claims GPU ids locally only (SLURM allocates them).
    """
    exp = params["experiment"]
    nodes = exp.get("nodes_per_run", 1)
    if exp["gpus_per_run"] > 0:
        flags = f"--nproc {exp['gpus_per_run'] // nodes}"
    else:
        flags = f"--nproc {exp['cpu_procs_per_run']}"
    if nodes > 1:
        flags += f" --nnodes {nodes}"
    return flags + "{claim}"


def dataset_ready(params: dict, dataset: str) -> str:
    """What marks a dataset as built: the synthetic root, or a real dataset's converted annotations."""
    ds = params["datasets"][dataset]
    return ds["root"] if ds["source"] == "synthetic" else f"{ds['root']}/annotations"


def init_weights_deps(params: dict, dataset: str) -> list[str]:
    """The converted DETR weights a run of ``dataset`` may load: both head layouts of its format.

    resolve-config picks the variant's layout; listing both keeps the grid a DVC matrix (the
    layout follows the method, which DVC templating cannot look up).
    """
    exp = params["experiment"]
    if exp["backbone_weights"] == "none":
        return []
    fmt = params["datasets"][dataset]["format"]
    return [weights_file(exp["data_dir"], exp["backbone_weights"], fmt, layout) for layout in ("qpic", "hqm")]


def pretrain_stage(params: dict) -> dict | None:
    """``hqm pretrain-detr`` when the runs start from ``pretrain.name``, else None: its command
    (``{params}``: each driver's params argument), input, outputs (weights, record) and params."""
    name = pretrained_detr(params)
    if name is None:
        return None
    out = detr_file(params, name)
    return {"cmd": f"hqm pretrain-detr {{params}} --out {out} --no-progress",
            "deps": [dataset_ready(params, params["pretrain"]["dataset"])], "outs": [out, f"{out}.json"],
            "params": pretrain_param_keys(params)}


def _run_stages(params: dict, dataset: str, run: str) -> list[Stage]:
    """resolve-config and train of one run (wildcards variant, seed)."""
    outs = {"checkpoint": Out(f"{run}/checkpoint_last.pth"), "log": Out(f"{run}/log.jsonl"),
            "curves": Out(f"{run}/curves.csv", "plots"), "config": Out(f"{run}/config.yaml"),
            "summary": Out(f"{run}/train_summary.json")}
    if "best" in checkpoints(params):
        outs["best"] = Out(f"{run}/checkpoint_best.pth")
    return [
        Stage(
            "resolve_config", "run",
            f"hqm resolve-config {{params}} --dataset {{dataset}} --variant {{variant}} --seed {{seed}} "
            f"--out {run}/run_config.yaml",
            deps={}, outs={"config": Out(f"{run}/run_config.yaml")},
            # coarse on purpose: the file's content decides whether a training reruns
            dvc_params=("experiment.data_dir", "experiment.backbone_weights", f"datasets.{dataset}", "model",
                        "loss", "augment", "train", "hard_queries", "variants.${item.variant}"),
        ),
        Stage(
            "train", "run",
            f"hqm train --config {run}/run_config.yaml --out {run} {launch_flags(params)}",
            deps={"config": [f"{run}/run_config.yaml"], "data": [dataset_ready(params, dataset)],
                  "weights": init_weights_deps(params, dataset)},
            outs=outs,
        ),
    ]


def _eval_stages(params: dict, dataset: str, run: str) -> list[Stage]:
    """evaluate (HICO-DET format) and evaluate_vcoco (+ the official pickle) of one checkpoint."""
    outs = {"metrics": Out(f"{run}/metrics_{{which}}.json", "metrics"),
            "headline": Out(f"{run}/headline_{{which}}.json", "metrics")}
    cmd = (f"hqm evaluate --checkpoint {run}/checkpoint_{{which}}.pth --dataset-root {{root}} --format {{format}} "
           f"--out {run}/metrics_{{which}}.json --headline-out {run}/headline_{{which}}.json{{pickle}} {{evaluation}}")
    deps = {"checkpoint": [f"{run}/checkpoint_{{which}}.pth"], "data": [dataset_ready(params, dataset)]}
    return [
        Stage("evaluate", "eval", cmd.replace("{pickle}", ""), deps=deps, outs=outs,
              dvc_params=("evaluation",), formats=("hico",)),
        Stage("evaluate_vcoco", "eval", cmd.replace("{pickle}", f" --vcoco-pickle {run}/vcoco_{{which}}.pkl"),
              deps=deps, outs={**outs, "pickle": Out(f"{run}/vcoco_{{which}}.pkl")},
              dvc_params=("evaluation",), formats=("vcoco",)),
    ]


def _report_stages(params: dict, dataset: str, run: str) -> list[Stage]:
    """tables and plots over the dataset's runs, a gallery per variant (its first seed)."""
    res = params["experiment"]["results_dir"]
    synthetic = params["datasets"][dataset]["source"] == "synthetic"
    plots = {f"{kind}_{ext}": Out(f"{res}/plots/{{dataset}}_{kind}.{ext}")
             for kind in ("curves", "categories") for ext in ("png", "pdf")}
    plots["csv"] = Out(f"{res}/plots/{{dataset}}_curves.csv")
    return [
        Stage(
            "tables", "dataset",
            f"hqm tables --metrics {{metrics}} --out-dir {res}/tables --dataset {{dataset}} "
            f"--backbone {params['model']['backbone']} --variants {{variants}}" + (" --synthetic" if synthetic else ""),
            deps={"metrics": [f"{run}/metrics_{w}.json" for w in checkpoints(params)]},
            outs={ext: Out(f"{res}/tables/{{dataset}}.{ext}") for ext in ("md", "tex", "csv")},
            dvc_params=("model.backbone", variants_key(params, dataset)),  # the rows
        ),
        Stage(
            "plots", "dataset",
            f"hqm plots --logs {{logs}} --metrics {{last}} --out-dir {res}/plots --dataset {{dataset}}",
            deps={"logs": [f"{run}/log.jsonl"], "last": [f"{run}/metrics_last.json"]}, outs=plots,
        ),
        Stage(
            "gallery", "gallery",
            f"hqm visualize --checkpoint {run}/checkpoint_last.pth --dataset-root {{root}} --format {{format}} "
            f"--out {res}/gallery/{{dataset}}/{{variant}}.png --num-images 3 --seed {{seed}}",
            deps={"checkpoint": [f"{run}/checkpoint_last.pth"], "data": [dataset_ready(params, dataset)]},
            outs={"png": Out(f"{res}/gallery/{{dataset}}/{{variant}}.png")},
        ),
    ]


def stage_table(params: dict, dataset: str) -> list[Stage]:
    """The stages of one dataset, in pipeline order (patterns keep the grid wildcards)."""
    run = RUN.replace("{runs}", params["experiment"]["runs_dir"])
    return [*_run_stages(params, dataset, run), *_eval_stages(params, dataset, run),
            *_report_stages(params, dataset, run)]


def stages_of(params: dict, dataset: str) -> dict[str, Stage]:
    """The table of ``dataset`` as {stage name: stage}, without the other format's stages."""
    fmt = params["datasets"][dataset]["format"]
    return {s.name: s for s in stage_table(params, dataset) if fmt in s.formats}


def run_files(params: dict, dataset: str, names: list[str], first_seed: bool = False) -> list[str]:
    """``<runs>/<dataset>/<variant>/seed<s>/<name>`` over the grid (variants outer, seeds, names)."""
    exp = params["experiment"]
    seeds = exp["seeds"][:1] if first_seed else exp["seeds"]
    variants = dataset_variants(params, dataset)
    return [f"{exp['runs_dir']}/{dataset}/{v}/seed{s}/{n}" for v in variants for s in seeds for n in names]


def dataset_values(params: dict, dataset: str) -> dict[str, str]:
    ds = params["datasets"][dataset]
    return {"root": ds["root"], "format": ds["format"]}


_TOKEN = re.compile(r"\{(\w+)\}")


def fill(template: str, values: dict[str, str]) -> str:
    """Replace the ``{token}``s that ``values`` names; leave the others."""
    return _TOKEN.sub(lambda m: values.get(m.group(1), m.group(0)), template)
