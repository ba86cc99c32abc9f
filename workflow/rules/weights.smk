# DETR COCO checkpoint -> initial weights per dataset format (HICO 81 / V-COCO 82 object rows)
# and head layout (qpic for QPIC, hqm for the hard-query variants). The file is sha256-verified
# by fetch, hence --trusted (DETR files pickle an argparse Namespace); or, where it cannot be
# downloaded (the CPU demo), a DETR trained by pretrain-detr on a dataset's training split.
import shlex

from hqm.pipeline.params import detr_file, pretrain_param_keys, select_params
from hqm.pipeline.stages import fill, pretrain_stage

PRETRAIN = pretrain_stage(config)
DETR_NAMES = [*config["artefacts"], *([EXP["backbone_weights"]] if PRETRAIN else [])]


if PRETRAIN:

    rule pretrain_detr:
        input:
            PRETRAIN["deps"],
        output:
            weights=PRETRAIN["outs"][0],
            record=PRETRAIN["outs"][1],
        params:
            # only the sections it reads: editing train.* or a variant does not retrain the DETR
            cmd=fill(PRETRAIN["cmd"], {"params": "--params-json " + shlex.quote(
                json.dumps(select_params(config, pretrain_param_keys(config)), sort_keys=True))}),
        resources:
            gpu=min(GPUS_PER_NODE, 1),
            gres="gpu:1" if GPUS_PER_NODE else "",
        threads: config["pretrain"]["threads"] or workflow.cores
        conda:
            "../envs/hqm.yaml"
        log:
            "logs/pretrain_detr.log",
        benchmark:
            "benchmarks/pretrain_detr.tsv"
        shell:
            "{params.cmd} > {log} 2>&1"



rule convert_weights:
    input:
        lambda wildcards: detr_file(config, wildcards.detr),
    output:
        weights=f"{DATA}/weights/{{detr}}_{{fmt}}_{{layout}}.pth",
        record=f"{DATA}/weights/{{detr}}_{{fmt}}_{{layout}}.pth.json",
    wildcard_constraints:
        detr="|".join(DETR_NAMES) or "^$",
        fmt="hico|vcoco",
        layout="qpic|hqm",
    conda:
        "../envs/hqm.yaml"
    log:
        "logs/convert_weights/{detr}_{fmt}_{layout}.log",
    shell:
        "hqm convert-weights --detr {input} --dataset-format {wildcards.fmt} --layout {wildcards.layout} "
        "--trusted --out {output.weights} > {log} 2>&1"
