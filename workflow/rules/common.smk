# Names and paths shared by the rules. Only declarations: which files exist for which
# (dataset, variant, seed), and which params entries each stage reads
# (hqm.reporting.pipeline_params, shared with dvc.yaml).
import json
import os

from hqm.reporting.pipeline_params import cli_flags, select_params, train_param_keys, weights_layout

EXP = config["experiment"]
DATA = EXP["data_dir"]
RUNS = EXP["runs_dir"]
RESULTS = EXP["results_dir"]
DATASETS = EXP["datasets"]
VARIANTS = EXP["variants"]
SEEDS = EXP["seeds"]
RUN = f"{RUNS}/{{dataset}}/{{variant}}/seed{{seed}}"

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


def artefact_named(wildcards):
    """Name of the artefact whose file is ``wildcards.path``."""
    return next(n for n, a in config["artefacts"].items() if a["path"] == wildcards.path)


def _artefact(name):
    if name not in config["artefacts"]:
        raise ValueError(f"params: artefacts.{name} is needed by the real datasets (url, sha256, path)")
    return config["artefacts"][name]


def artefact_file(name):
    return f"{DATA}/{_artefact(name)['path']}"


def artefact_dir(name):
    """Where fetch unpacked the artefact's archive."""
    return f"{DATA}/{_artefact(name).get('extract_to') or ''}".rstrip("/")


def dataset_format(wildcards):
    return config["datasets"][wildcards.dataset]["format"]


def table_protocol(wildcards):
    """HICO-DET Default columns: the official protocol, the QPIC one for synthetic data."""
    return "qpic" if config["datasets"][wildcards.dataset]["source"] == "synthetic" else "official"


def dataset_ready(wildcards):
    """What marks a dataset as built: the synthetic root, or a real dataset's converted annotations."""
    ds = config["datasets"][wildcards.dataset]
    return ds["root"] if ds["source"] == "synthetic" else f"{ds['root']}/annotations"


def init_weights(wildcards):
    """Converted DETR weights of the dataset's format, or nothing (random initialisation)."""
    if EXP["backbone_weights"] == "none":
        return []
    layout = weights_layout(config["variants"][wildcards.variant]["method"])
    return f"{DATA}/weights/{EXP['backbone_weights']}_{dataset_format(wildcards)}_{layout}.pth"


def init_weights_arg(wildcards):
    path = init_weights(wildcards)
    return f"--init-weights {path}" if path else ""


def run_params_json(wildcards):
    """The params entries one run depends on, as JSON: --config overrides reach the CLI this way."""
    keys = train_param_keys(config, wildcards.dataset, wildcards.variant)
    return json.dumps(select_params(config, keys), sort_keys=True)


def train_nproc(wildcards, resources):
    """torchrun processes: one per GPU, else the configured number of CPU (gloo) ranks."""
    return resources.gpu if resources.gpu > 0 else EXP["cpu_procs_per_run"]


def run_files(name, dataset):
    return expand(f"{RUN}/{name}", dataset=dataset, variant=VARIANTS, seed=SEEDS)


def all_tables():
    return expand(f"{RESULTS}/tables/{{dataset}}.{{ext}}", dataset=DATASETS, ext=["md", "tex", "csv"])


def all_plots():
    return expand(f"{RESULTS}/plots/{{dataset}}_curves.{{ext}}", dataset=DATASETS, ext=["png", "csv"])
