# One training per (dataset, variant, seed): resolve its configuration, then train under torchrun.
# Resumable state lives in <run>/state/, which is not declared: Snakemake deletes the declared
# outputs of a failed job, never that folder, so a restarted pipeline continues the run.


rule resolve_config:
    output:
        f"{RUN}/run_config.yaml",
    params:
        run=run_params_json,
        init=init_weights_arg,
    conda:
        "../envs/hqm.yaml"
    log:
        "logs/resolve_config/{dataset}/{variant}/seed{seed}.log",
    shell:
        "hqm resolve-config --params-json {params.run:q} --dataset {wildcards.dataset} "
        "--variant {wildcards.variant} --seed {wildcards.seed} {params.init} --out {output} > {log} 2>&1"


rule train:
    input:
        config=f"{RUN}/run_config.yaml",
        data=dataset_ready,
        weights=init_weights,
    output:
        checkpoint=f"{RUN}/checkpoint.pth",
        metrics=f"{RUN}/metrics.json",
        curves=f"{RUN}/log.jsonl",
        config=f"{RUN}/config.yaml",
    params:
        run=run_params_json,
        out=lambda wildcards, output: os.path.dirname(output.metrics),
        nproc=train_nproc,
    resources:
        gpu=EXP["gpus_per_run"],
    threads: max(EXP["gpus_per_run"], EXP["cpu_procs_per_run"])
    conda:
        "../envs/hqm.yaml"
    log:
        "logs/train/{dataset}/{variant}/seed{seed}.log",
    benchmark:
        "benchmarks/train/{dataset}/{variant}/seed{seed}.tsv"
    shell:
        "hqm train --config {input.config} --out {params.out} --nproc {params.nproc} > {log} 2>&1"
