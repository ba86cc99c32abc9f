# Tables and training curves from the runs' metrics and logs; `snakemake --report` collects them.


rule tables:
    input:
        lambda wildcards: run_files("metrics.json", wildcards.dataset),
    output:
        md=report(f"{RESULTS}/tables/{{dataset}}.md", caption="../report/tables.rst", category="Tables"),
        tex=f"{RESULTS}/tables/{{dataset}}.tex",
        csv=report(f"{RESULTS}/tables/{{dataset}}.csv", caption="../report/tables.rst", category="Tables"),
    params:
        out_dir=lambda wildcards, output: os.path.dirname(output.md),
        backbone=config["model"]["backbone"],
        variants=VARIANTS,
        protocol=table_protocol,
    conda:
        "../envs/hqm.yaml"
    log:
        "logs/tables/{dataset}.log",
    shell:
        "hqm tables --metrics {input} --out-dir {params.out_dir} --backbone {params.backbone} "
        "--variants {params.variants} --hico-protocol {params.protocol} > {log} 2>&1"


rule plots:
    input:
        lambda wildcards: run_files("log.jsonl", wildcards.dataset),
    output:
        png=report(f"{RESULTS}/plots/{{dataset}}_curves.png", caption="../report/curves.rst", category="Training curves"),
        csv=f"{RESULTS}/plots/{{dataset}}_curves.csv",
    conda:
        "../envs/hqm.yaml"
    log:
        "logs/plots/{dataset}.log",
    shell:
        "hqm plots --logs {input} --out-png {output.png} --out-csv {output.csv} "
        "--title {wildcards.dataset:q} > {log} 2>&1"
