# DETR COCO checkpoint -> initial weights per dataset format (HICO 81 / V-COCO 82 object rows)
# and head layout (qpic for QPIC, hqm for the hard-query variants). The file is sha256-verified
# by fetch, hence --trusted (DETR files pickle an argparse Namespace).


rule convert_weights:
    input:
        lambda wildcards: f"{DATA}/{config['artefacts'][wildcards.detr]['path']}",
    output:
        weights=f"{DATA}/weights/{{detr}}_{{fmt}}_{{layout}}.pth",
        record=f"{DATA}/weights/{{detr}}_{{fmt}}_{{layout}}.pth.json",
    wildcard_constraints:
        detr="|".join(config["artefacts"]) or "^$",
        fmt="hico|vcoco",
        layout="qpic|hqm",
    conda:
        "../envs/hqm.yaml"
    log:
        "logs/convert_weights/{detr}_{fmt}_{layout}.log",
    shell:
        "hqm convert-weights --detr {input} --dataset-format {wildcards.fmt} --layout {wildcards.layout} "
        "--trusted --out {output.weights} > {log} 2>&1"
