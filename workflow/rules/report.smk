# Tables, training curves and galleries from the runs; `snakemake --report` collects them.
# Commands from the stage table (hqm.pipeline.stages), as in dvc.yaml.


rule tables:
    input:
        unpack(rule_inputs("tables")),
    output:
        md=report(f"{RESULTS}/tables/{{dataset}}.md", caption="../report/tables.rst", category="Tables"),
        tex=f"{RESULTS}/tables/{{dataset}}.tex",
        csv=report(f"{RESULTS}/tables/{{dataset}}.csv", caption="../report/tables.rst", category="Tables"),
    params:
        cmd=rule_command("tables"),
    conda:
        "../envs/hqm.yaml"
    log:
        "logs/tables/{dataset}.log",
    shell:
        "{params.cmd} > {log} 2>&1"


rule plots:
    input:
        unpack(rule_inputs("plots")),
    output:
        curves_png=report(f"{RESULTS}/plots/{{dataset}}_curves.png", caption="../report/curves.rst",
                          category="Training curves"),
        curves_pdf=f"{RESULTS}/plots/{{dataset}}_curves.pdf",
        categories_png=report(f"{RESULTS}/plots/{{dataset}}_categories.png", caption="../report/curves.rst",
                              category="Training curves"),
        categories_pdf=f"{RESULTS}/plots/{{dataset}}_categories.pdf",
        csv=f"{RESULTS}/plots/{{dataset}}_curves.csv",
    params:
        cmd=rule_command("plots"),
    conda:
        "../envs/hqm.yaml"
    log:
        "logs/plots/{dataset}.log",
    shell:
        "{params.cmd} > {log} 2>&1"


rule gallery:
    input:
        unpack(rule_inputs("gallery")),
    output:
        **{key: report(path, caption="../report/gallery.rst", category="Gallery")
           for key, path in rule_outputs("gallery").items()},
    params:
        cmd=rule_command("gallery"),
    conda:
        "../envs/hqm.yaml"
    log:
        "logs/gallery/{dataset}/{variant}.log",
    shell:
        "{params.cmd} > {log} 2>&1"
