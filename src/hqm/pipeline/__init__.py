"""What only the pipeline drivers need: which params entries each stage reads (``params``), the
one stage table both Snakemake and DVC are built from (``stages``), launch settings (``launch``).
Torch-free: the Snakefile imports it at parse time."""
