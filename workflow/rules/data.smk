# Datasets: the embedded synthetic one, or the real ones fetched (sha256-verified) and converted.
# Each dataset is one folder, data/<dataset> (layouts: docs/architecture.md).
from hqm.data.sources import artefact_identity


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
        name=artefact_named,
        # which file, not where from: a mirror added to `sources` reruns nothing (Snakemake would
        # delete the archive, fetch it again and rerun every job downstream of it)
        spec=lambda wildcards: json.dumps(artefact_identity(config["artefacts"][artefact_named(wildcards)]), sort_keys=True),
        overlays=" ".join(f"--overlay {path}" for path in workflow.overwrite_configfiles),
        data_dir=lambda wildcards, output: output[0][: -len(wildcards.path) - 1],
    conda:
        "../envs/hqm.yaml"
    log:
        "logs/fetch/{path}.log",
    benchmark:
        "benchmarks/fetch/{path}.tsv"
    retries: 2
    shell:
        "hqm fetch {params.name} --params params.yaml {params.overlays} --data-dir {params.data_dir} "
        "--no-progress > {log} 2>&1"


# Real datasets: the archives are unpacked by fetch (artefacts.<name>.extract_to); the converters
# write <root>/annotations. The images stay where the archives put them (see docs/pipeline.md).
rule convert_hico:
    input:
        lambda wildcards: artefact_file("hico_20160224_det"),
    output:
        directory(f"{DATA}/{{dataset}}/annotations"),
    wildcard_constraints:
        dataset=datasets_from("hico_det"),
    params:
        raw=lambda wildcards: artefact_dir("hico_20160224_det", "hico_20160224_det"),
    conda:
        "../envs/hqm.yaml"
    log:
        "logs/convert_hico/{dataset}.log",
    benchmark:
        "benchmarks/convert_hico/{dataset}.tsv"
    shell:
        "hqm convert-hico --anno-bbox {params.raw}/anno_bbox.mat --anno {params.raw}/anno.mat "
        "--out {output} --images {params.raw}/images/train2015 {params.raw}/images/test2015 > {log} 2>&1"


rule convert_vcoco:
    input:
        data=lambda wildcards: artefact_file("vcoco_data"),
        prior=lambda wildcards: artefact_file("vcoco_prior"),
        coco=lambda wildcards: artefact_file("coco2014_annotations"),
        train_images=lambda wildcards: artefact_file("coco2014_train_images"),
        val_images=lambda wildcards: artefact_file("coco2014_val_images"),
    output:
        directory(f"{DATA}/{{dataset}}/annotations"),
    wildcard_constraints:
        dataset=datasets_from("vcoco"),
    params:
        official=lambda wildcards: os.path.join(artefact_dir("vcoco_data", "v-coco-master"), "data"),
        coco=lambda wildcards: artefact_dir("coco2014_annotations", "annotations"),
        images=lambda wildcards: " ".join(
            (artefact_dir("coco2014_train_images", "train2014"), artefact_dir("coco2014_val_images", "val2014"))
        ),
    conda:
        "../envs/hqm.yaml"
    log:
        "logs/convert_vcoco/{dataset}.log",
    benchmark:
        "benchmarks/convert_vcoco/{dataset}.tsv"
    shell:
        "hqm convert-vcoco --official-data {params.official} --prior {input.prior} "
        "--coco-annotations {params.coco} --out {output} --images {params.images} > {log} 2>&1"
