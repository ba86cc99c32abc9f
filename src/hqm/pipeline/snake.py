"""The stage table (:mod:`hqm.pipeline.stages`) as Snakemake rule parts.

A rule takes its outputs from :func:`outputs` (patterns over the wildcards), its inputs from
:func:`inputs` and its whole command from :func:`command` (a ``params`` entry, so a changed
command or parameter reruns the job through Snakemake's params trigger).
"""

from __future__ import annotations

import json
import shlex

from hqm.pipeline.params import dataset_variants, select_params, train_param_keys
from hqm.pipeline.stages import dataset_values, fill, run_files, stages_of


def _stage(config: dict, dataset: str, name: str):
    return stages_of(config, dataset)[name]


def representative(config: dict, fmt: str | None = None) -> str | None:
    """A dataset of the grid (of format ``fmt``) whose table gives a rule's output patterns."""
    names = [n for n in config["experiment"]["datasets"]
             if fmt is None or config["datasets"][n]["format"] == fmt]
    return names[0] if names else None


def outputs(config: dict, name: str, fmt: str | None = None) -> dict[str, str]:
    """{name: pattern} of a stage's outputs (the same for every dataset of the format)."""
    stage = _stage(config, representative(config, fmt), name)
    return {key: out.path for key, out in stage.outs.items()}


def _wildcard_values(config: dict, stage, wildcards) -> dict[str, str]:
    values = {"dataset": wildcards.dataset, **dataset_values(config, wildcards.dataset)}
    for axis in ("variant", "seed", "which"):
        if axis in wildcards.keys():
            values[axis] = str(wildcards[axis])
    if stage.grid == "gallery":
        values["seed"] = str(config["experiment"]["seeds"][0])
    return values


def inputs(config: dict, name: str, wildcards) -> dict[str, list[str]]:
    """{name: files} of one job; a dataset-wide stage reads every run of the grid."""
    stage = _stage(config, wildcards.dataset, name)
    values = _wildcard_values(config, stage, wildcards)
    if stage.grid == "dataset":
        return {key: run_files(config, wildcards.dataset, [p.rsplit("/", 1)[1] for p in paths])
                for key, paths in stage.deps.items()}
    return {key: [fill(p, values) for p in paths] for key, paths in stage.deps.items()}


def command(config: dict, name: str, wildcards, claim_gpus: bool) -> str:
    """The job's shell command, every value filled in (the run's params as JSON)."""
    stage = _stage(config, wildcards.dataset, name)
    values = _wildcard_values(config, stage, wildcards)
    values["claim"] = " --claim-gpus" if claim_gpus and config["experiment"]["gpus_per_run"] > 0 else ""
    if name == "resolve_config":
        keys = train_param_keys(config, wildcards.dataset, wildcards.variant)
        values["params"] = "--params-json " + shlex.quote(json.dumps(select_params(config, keys), sort_keys=True))
    values["evaluation"] = "--eval-json " + shlex.quote(json.dumps(config["evaluation"], sort_keys=True))
    values["variants"] = " ".join(dataset_variants(config, wildcards.dataset))
    if stage.grid == "dataset":
        for key, files in inputs(config, name, wildcards).items():
            values[key] = " ".join(files)
    return fill(stage.cmd, values)
