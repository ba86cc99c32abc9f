# Names and paths shared by the rules. Only declarations: the per-run and per-dataset stages come
# from the one stage table (hqm.pipeline.stages) that dvc.yaml is rendered from too.
import json
import os

from hqm.pipeline import snake
from hqm.pipeline.params import cli_flags, dataset_variants, unpacked_dir

EXP = config["experiment"]
DATA = EXP["data_dir"]
RUNS = EXP["runs_dir"]
RESULTS = EXP["results_dir"]
DATASETS = EXP["datasets"]
SEEDS = EXP["seeds"]
GPUS_PER_NODE = EXP["gpus_per_run"] // EXP["nodes_per_run"]
if GPUS_PER_NODE * EXP["nodes_per_run"] != EXP["gpus_per_run"]:
    raise ValueError("params: experiment.nodes_per_run must divide experiment.gpus_per_run")
RUN = f"{RUNS}/{{dataset}}/{{variant}}/seed{{seed}}"
# Locally `hqm train --claim-gpus` pins free GPU ids (--resources gpu=N only counts them); under
# SLURM the scheduler allocates the GPUs, so the job claims none.
def claim_gpus():
    """Asked when the jobs are built (the executor settings are not known while parsing)."""
    settings = type(workflow.executor_settings).__module__ if workflow.executor_settings else ""
    return not settings.startswith("snakemake_executor_plugin_slurm") and "SLURM_JOB_ID" not in os.environ

for _name, _subset in EXP.get("dataset_variants", {}).items():
    if not set(_subset) <= set(EXP["variants"]):  # DVC's matrix reads the list as written: no silent trim
        raise ValueError(f"params: experiment.dataset_variants.{_name} must be a subset of experiment.variants")
for _name, _ds in config["datasets"].items():
    if _ds["root"] != f"{DATA}/{_name}":
        raise ValueError(f"params: datasets.{_name}.root must be {DATA}/{_name} (the data rules write there)")


def datasets_from(source):
    """Dataset names built from ``source`` (a regex alternation for wildcard_constraints)."""
    names = [n for n, d in config["datasets"].items() if d["source"] == source]
    return "|".join(names) if names else "^$"


wildcard_constraints:
    dataset="|".join(config["datasets"]),
    variant="|".join(config["variants"]),
    seed=r"\d+",
    which="last|best",


def artefact_named(wildcards):
    """Name of the artefact whose file is ``wildcards.path``."""
    return next(n for n, a in config["artefacts"].items() if a["path"] == wildcards.path)


def _artefact(name):
    if name not in config["artefacts"]:
        raise ValueError(f"params: artefacts.{name} is needed by the real datasets (url, sha256, path)")
    return config["artefacts"][name]


def artefact_file(name):
    return f"{DATA}/{_artefact(name)['path']}"


def artefact_dir(name, top_folder):
    """Where fetch unpacked the archive's ``top_folder`` (artefacts.<name>.extract_to)."""
    return unpacked_dir(DATA, _artefact(name), top_folder)


def dataset_format(wildcards):
    return config["datasets"][wildcards.dataset]["format"]


def rule_outputs(name, fmt=None):
    """A stage's outputs from the stage table (hqm.pipeline.stages)."""
    return snake.outputs(config, name, fmt)


def rule_inputs(name):
    return lambda wildcards: snake.inputs(config, name, wildcards)


def rule_command(name):
    return lambda wildcards: snake.command(config, name, wildcards, claim_gpus())


def datasets_of_format(fmt):
    """The grid's datasets of one annotation format (a regex alternation), or None."""
    names = [n for n in DATASETS if config["datasets"][n]["format"] == fmt]
    return "|".join(names) if names else None


def all_tables():
    return expand(f"{RESULTS}/tables/{{dataset}}.{{ext}}", dataset=DATASETS, ext=["md", "tex", "csv"])


def all_plots():
    return expand(f"{RESULTS}/plots/{{dataset}}_{{kind}}.{{ext}}", dataset=DATASETS, kind=["curves", "categories"],
                  ext=["png", "pdf"])


def all_galleries():
    return [f"{RESULTS}/gallery/{dataset}/{variant}.png" for dataset in DATASETS
            for variant in dataset_variants(config, dataset)]
