# The pipeline's main file: params.yaml -> data -> weights -> training (every dataset x variant x
# seed) -> tables, plots, report. `snakemake --cores all` runs the embedded demo;
# `snakemake --cores all --configfile config/paper.yaml --resources gpu=8` the paper's runs.
# Every stage is one `hqm` command; dvc.yaml declares the same graph (tests/pipeline checks it).
from snakemake.utils import min_version, validate

from hqm.reporting.pipeline_params import retype_cli_strings

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


rule all:
    default_target: True
    input:
        all_tables(),
        all_plots(),
