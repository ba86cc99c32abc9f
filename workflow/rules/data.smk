# Datasets: the embedded synthetic one, or the real ones fetched (sha256-verified) and converted.
# Each dataset is one folder, data/<dataset> (layouts: docs/architecture.md).


rule make_synthetic:
    output:
        directory(f"{DATA}/{{dataset}}"),
    wildcard_constraints:
        dataset=datasets_from("synthetic"),
    params:
        fmt=dataset_format,
        sizes=cli_flags(config["synthetic"]),
    conda:
        "../envs/hqm.yaml"
    log:
        "logs/make_synthetic/{dataset}.log",
    shell:
        "hqm make-synthetic --format {params.fmt} --out {output} {params.sizes} > {log} 2>&1"


rule fetch:
    output:
        f"{DATA}/{{path}}",
    wildcard_constraints:
        path="|".join(a["path"] for a in config["artefacts"].values()) or "^$",
    params:
        spec=lambda wildcards: json.dumps(
            {n: a for n, a in config["artefacts"].items() if a["path"] == wildcards.path}
        ),
        data_dir=lambda wildcards, output: output[0][: -len(wildcards.path) - 1],
    conda:
        "../envs/hqm.yaml"
    log:
        "logs/fetch/{path}.log",
    benchmark:
        "benchmarks/fetch/{path}.tsv"
    retries: 2
    shell:
        "hqm fetch --artefacts-json {params.spec:q} --data-dir {params.data_dir} > {log} 2>&1"


rule convert_hico:
    input:
        artefact_paths(["hico_det"]),
    output:
        directory(f"{DATA}/{{dataset}}"),
    wildcard_constraints:
        dataset=datasets_from("hico_det"),
    conda:
        "../envs/hqm.yaml"
    log:
        "logs/convert_hico/{dataset}.log",
    benchmark:
        "benchmarks/convert_hico/{dataset}.tsv"
    shell:
        "hqm convert-hico --inputs {input} --out {output} > {log} 2>&1"


rule convert_vcoco:
    input:
        artefact_paths(["vcoco", "coco"]),
    output:
        directory(f"{DATA}/{{dataset}}"),
    wildcard_constraints:
        dataset=datasets_from("vcoco"),
    conda:
        "../envs/hqm.yaml"
    log:
        "logs/convert_vcoco/{dataset}.log",
    benchmark:
        "benchmarks/convert_vcoco/{dataset}.tsv"
    shell:
        "hqm convert-vcoco --inputs {input} --out {output} > {log} 2>&1"
