# The pipeline's main file: params.yaml -> data -> weights -> training (every dataset x variant x
# seed) -> evaluation (last / best checkpoint) -> tables, plots, galleries, report.
# `snakemake --cores all` runs the embedded demo; the paper's runs: README (local or SLURM profile).
# Every stage is one `hqm` command; dvc.yaml is rendered from the same stage table (tests/pipeline).
from snakemake.utils import min_version, validate

from hqm.pipeline.params import retype_cli_strings

min_version("9.0")


configfile: "params.yaml"


retype_cli_strings(config)  # --config values arrive as strings
validate(config, "workflow/schemas/params.schema.yaml")


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/weights.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/report.smk"


# Light stages run where Snakemake runs (under SLURM too): fetch needs the internet, the others
# take seconds. Only train, evaluate and the converters become cluster jobs.
localrules:
    all,
    fetch,
    make_synthetic,
    resolve_config,
    tables,
    plots,
    gallery,


rule all:
    default_target: True
    input:
        all_tables(),
        all_plots(),
        all_galleries(),
