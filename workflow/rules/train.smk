# One training per (dataset, variant, seed): resolve its configuration, train under torchrun, then
# evaluate each kept checkpoint (last, and best when train.select_best). Inputs, outputs and
# commands come from the stage table (hqm.pipeline.stages), which dvc.yaml is rendered from too.
# Resumable state lives in <run>/state/, which is not declared: Snakemake deletes the declared
# outputs of a failed job, never that folder, so a restarted pipeline continues the run.


rule resolve_config:
    output:
        **rule_outputs("resolve_config"),
    params:
        cmd=rule_command("resolve_config"),
    conda:
        "../envs/hqm.yaml"
    log:
        "logs/resolve_config/{dataset}/{variant}/seed{seed}.log",
    shell:
        "{params.cmd} > {log} 2>&1"


rule train:
    input:
        unpack(rule_inputs("train")),
    output:
        **rule_outputs("train"),
    params:
        cmd=rule_command("train"),
    resources:
        gpu=GPUS_PER_NODE,  # local --resources gpu=N counts these
        gres=f"gpu:{GPUS_PER_NODE}" if GPUS_PER_NODE else "",  # SLURM, per node
        nodes=EXP["nodes_per_run"],
    threads: max(GPUS_PER_NODE, EXP["cpu_procs_per_run"])
    # Trainings start before any ready evaluation or gallery: the short jobs then fill both cores
    # at the end instead of one training running alone beside an idle core (2-core demo). Safe now
    # that hqm evaluate keeps to its job's one thread (docs/demo.md, "Time of the whole demo").
    priority: 10
    conda:
        "../envs/hqm.yaml"
    log:
        "logs/train/{dataset}/{variant}/seed{seed}.log",
    benchmark:
        "benchmarks/train/{dataset}/{variant}/seed{seed}.tsv"
    shell:
        "{params.cmd} > {log} 2>&1"


# hqm evaluate reads the evaluation section (--eval-json): editing it reruns these and the tables.
if datasets_of_format("hico"):

    rule evaluate:
        input:
            unpack(rule_inputs("evaluate")),
        output:
            **rule_outputs("evaluate", "hico"),
        params:
            cmd=rule_command("evaluate"),
        wildcard_constraints:
            dataset=datasets_of_format("hico"),
        resources:
            gpu=min(GPUS_PER_NODE, 1),
            gres="gpu:1" if GPUS_PER_NODE else "",
        conda:
            "../envs/hqm.yaml"
        log:
            "logs/evaluate/{dataset}/{variant}/seed{seed}_{which}.log",
        shell:
            "{params.cmd} > {log} 2>&1"


if datasets_of_format("vcoco"):

    rule evaluate_vcoco:
        input:
            unpack(rule_inputs("evaluate_vcoco")),
        output:
            **rule_outputs("evaluate_vcoco", "vcoco"),
        params:
            cmd=rule_command("evaluate_vcoco"),
        wildcard_constraints:
            dataset=datasets_of_format("vcoco"),
        resources:
            gpu=min(GPUS_PER_NODE, 1),
            gres="gpu:1" if GPUS_PER_NODE else "",
        conda:
            "../envs/hqm.yaml"
        log:
            "logs/evaluate/{dataset}/{variant}/seed{seed}_{which}.log",
        shell:
            "{params.cmd} > {log} 2>&1"
