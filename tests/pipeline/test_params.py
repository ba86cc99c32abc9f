"""params.yaml, the paper overlay, the schema, and which entries each run depends on."""

import copy
import dataclasses
import typing

import jsonschema
import pytest
import yaml

from hqm import config as cfgmod
from hqm.commands.pipeline import resolve_config
from hqm.config import deep_merge, load_params, to_dict
from hqm.errors import HqmError
from hqm.pipeline.params import cli_flags, select_params, train_param_keys


def schema(repo):
    return yaml.safe_load((repo / "workflow/schemas/params.schema.yaml").read_text())


def test_demo_and_paper_validate(repo, params_data):
    paper = deep_merge(params_data, yaml.safe_load((repo / "config/paper.yaml").read_text()))
    for data in (params_data, paper):
        jsonschema.validate(data, schema(repo))
        load_params(copy.deepcopy(data))
    demo = load_params(repo / "params.yaml")
    # the demo starts from the DETR it pretrains, the paper from the downloaded one
    assert demo.experiment.backbone_weights == demo.pretrain.name == "detr_synthetic"
    assert demo.model.backbone == "resnet10" and demo.pretrain.dataset in demo.experiment.datasets
    assert {v: demo.variants[v].method for v in demo.experiment.variants} == {
        "qpic": "qpic", "gbs": "gbs", "amm": "amm", "hqm": "hqm"}
    paper_p = load_params(repo / "params.yaml", [repo / "config/paper.yaml"])
    runs = {v: cfgmod.resolve_run(paper_p, "hico_det", v, 42) for v in ("qpic", "gbs", "hqm")}
    assert (runs["qpic"].train.epochs, runs["qpic"].train.lr_drop) == (150, 100)
    assert (runs["hqm"].train.epochs, runs["hqm"].train.lr_drop) == (80, 55)
    assert runs["hqm"].hard_queries.loss_weight == 0.8 and runs["gbs"].hard_queries.loss_weight == 1.0
    assert paper_p.train.global_batch_size == 16 and paper_p.model.backbone == "resnet50"
    assert demo.train.keep_last_predictions and not paper_p.train.keep_last_predictions
    assert paper_p.experiment.backbone_weights == "detr_r50" and "detr_r50" in paper_p.artefacts


def test_schema_knows_the_same_sections_as_params(repo):
    s = schema(repo)
    assert set(s["properties"]) == {f.name for f in dataclasses.fields(cfgmod.Params)}
    assert set(s["properties"]["experiment"]["properties"]) == {
        f.name for f in dataclasses.fields(cfgmod.ExperimentConfig)}
    hints = typing.get_type_hints(cfgmod.Params)
    for section, spec in s["properties"].items():
        if dataclasses.is_dataclass(hints[section]):
            known = {f.name for f in dataclasses.fields(hints[section])}
            assert set(spec.get("properties", {})) <= known, section


def test_schema_rejects_bad_values(repo, params_data):
    for path, value in ((("experiment", "seeds"), [1, 1]), (("variants", "x"), {"method": "detr"}),
                        (("artefacts", "a"), {"url": "u", "sha256": "xyz", "path": "p"})):
        bad = copy.deepcopy(params_data)
        bad[path[0]][path[1]] = value
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, schema(repo))


def test_run_keys_follow_the_method(params_data):
    keys = {v: train_param_keys(params_data, "synthetic_hico", v) for v in ("qpic", "gbs", "amm", "hqm")}
    assert not any(k.startswith("hard_queries") for k in keys["qpic"])
    assert "hard_queries.gbs" in keys["gbs"] and "hard_queries.amm" not in keys["gbs"]
    assert "hard_queries.amm" in keys["amm"] and "hard_queries.gbs" not in keys["amm"]
    assert {"hard_queries.gbs", "hard_queries.amm", "hard_queries.alternation"} <= set(keys["hqm"])
    for v, ks in keys.items():
        assert [k for k in ks if k.startswith("variants.")] == [f"variants.{v}"]
        assert {"model", "loss", "train", "augment", "datasets.synthetic_hico"} <= set(ks)
        assert not any(k.startswith("evaluation") for k in ks)  # the evaluate stage reads it
    with pytest.raises(HqmError, match="variants.nope.method"):
        train_param_keys(params_data, "synthetic_hico", "nope")


def test_changing_one_variant_changes_only_its_inputs(params_data):
    def selected(data, v):
        return select_params(data, train_param_keys(data, "synthetic_hico", v))

    edited = copy.deepcopy(params_data)
    edited["variants"]["gbs"]["train"] = {"lr": 0.5}
    edited["hard_queries"]["amm"]["mask_ratio"] = 0.3
    changed = {v for v in ("qpic", "gbs", "amm", "hqm") if selected(edited, v) != selected(params_data, v)}
    assert changed == {"gbs", "amm", "hqm"}  # gbs by its variant entry, amm and hqm by the AMM section
    edited2 = copy.deepcopy(params_data)
    edited2["variants"]["gbs"]["train"] = {"lr": 0.5}
    assert {v for v in ("qpic", "gbs", "amm", "hqm") if selected(edited2, v) != selected(params_data, v)} == {"gbs"}


def test_resolve_config_same_from_whole_params_and_from_selection(params_data):
    whole = resolve_config(params_data, "synthetic_vcoco", "hqm", 7, "w.pth", "params.yaml")
    keys = train_param_keys(params_data, "synthetic_vcoco", "hqm")
    part = resolve_config(select_params(params_data, keys), "synthetic_vcoco", "hqm", 7, "w.pth", "json")
    assert to_dict(whole) == to_dict(part)
    assert whole.seed == 7 and whole.model.init_weights == "w.pth" and whole.dataset.format == "vcoco"
    # qpic ignores the hard-query sections entirely: the defaults, whatever params.yaml says
    edited = copy.deepcopy(params_data)
    edited["hard_queries"]["loss_weight"] = 0.1
    q = resolve_config(edited, "synthetic_hico", "qpic", 1, None, "p")
    assert q.hard_queries == cfgmod.HardQueryConfig()


def test_cli_flags():
    assert cli_flags({"num_train": 4, "seed": 0}) == "--num-train 4 --seed 0"


def test_retype_cli_strings():
    from hqm.pipeline.params import retype_cli_strings

    tree = {"train": {"lr": "0.5", "epochs": "3", "bf16": "true"}, "model": {"init_weights": "null"},
            "experiment": {"backbone_weights": "none", "seeds": ["1", "2"], "data_dir": "data"},
            "artefacts": {"a": {"sha256": "12345678"}}}
    retype_cli_strings(tree)
    assert tree["train"] == {"lr": 0.5, "epochs": 3, "bf16": True} and tree["model"]["init_weights"] is None
    assert tree["experiment"] == {"backbone_weights": "none", "seeds": [1, 2], "data_dir": "data"}
    assert tree["artefacts"]["a"]["sha256"] == "12345678"


def test_resolve_config_writes_no_evaluation_and_names_the_weights(repo, params_data, tmp_path, capsys):
    from hqm.cli import main

    paper = deep_merge(params_data, yaml.safe_load((repo / "config/paper.yaml").read_text()))
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(paper))
    runs = {}
    for variant in ("qpic", "hqm"):
        out = tmp_path / f"{variant}.yaml"
        assert main(["resolve-config", "--params", str(tmp_path / "p.yaml"), "--dataset", "vcoco",
                     "--variant", variant, "--seed", "3", "--out", str(out)]) == 0
        runs[variant] = yaml.safe_load(out.read_text())
    assert "evaluation" not in runs["hqm"] and runs["hqm"]["seed"] == 3
    assert runs["qpic"]["model"]["init_weights"] == "data/weights/detr_r50_vcoco_qpic.pth"
    assert runs["hqm"]["model"]["init_weights"] == "data/weights/detr_r50_vcoco_hqm.pth"
    cfg = cfgmod.load_run_config(tmp_path / "hqm.yaml")  # the engine reads it back
    assert cfg.method == "hqm" and cfg.train.epochs == 80
    # the evaluation section changes nothing a training reads
    edited = copy.deepcopy(paper)
    edited["evaluation"]["batch_size"] = 1
    (tmp_path / "e.yaml").write_text(yaml.safe_dump(edited))
    main(["resolve-config", "--params", str(tmp_path / "e.yaml"), "--dataset", "vcoco", "--variant", "hqm",
          "--seed", "3", "--out", str(tmp_path / "e_out.yaml")])
    assert (tmp_path / "e_out.yaml").read_text() == (tmp_path / "hqm.yaml").read_text()
    # bad input: one line naming the entry, nothing written
    assert main(["resolve-config", "--params-json", "{bad", "--dataset", "vcoco", "--variant", "hqm",
                 "--seed", "1", "--out", str(tmp_path / "x.yaml")]) == 2
    assert "--params-json: malformed JSON" in capsys.readouterr().err and not (tmp_path / "x.yaml").exists()


def test_grid_prints_the_runs_of_the_grid(repo, tmp_path, capsys):
    from hqm.cli import main

    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["experiment"]["seeds"] = [1, 2]
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(params))
    assert main(["grid", "--params", str(tmp_path / "p.yaml"), "--dataset", "synthetic_hico",
                 "metrics_last.json"]) == 0
    files = capsys.readouterr().out.split()
    assert len(files) == 8 and files[:2] == ["runs/synthetic_hico/qpic/seed1/metrics_last.json",
                                             "runs/synthetic_hico/qpic/seed2/metrics_last.json"]
    assert main(["grid", "--params", str(tmp_path / "p.yaml"), "--variants"]) == 0
    assert capsys.readouterr().out.split() == ["qpic", "gbs", "amm", "hqm"]
    # experiment.dataset_variants: V-COCO's own subset, in its own order
    assert main(["grid", "--params", str(tmp_path / "p.yaml"), "--dataset", "synthetic_vcoco", "--variants"]) == 0
    assert capsys.readouterr().out.split() == ["qpic", "hqm"]
    assert main(["grid", "--params", str(tmp_path / "p.yaml"), "--dataset", "synthetic_vcoco", "log.jsonl"]) == 0
    assert capsys.readouterr().out.split() == [f"runs/synthetic_vcoco/{v}/seed{s}/log.jsonl"
                                               for v in ("qpic", "hqm") for s in (1, 2)]
    assert main(["grid", "--params", str(tmp_path / "p.yaml"), "--dataset", "nope", "x.json"]) == 2
    assert "experiment.datasets has no dataset 'nope'" in capsys.readouterr().err


def test_archives_unpack_where_the_converters_look(repo, params_data):
    """`strip_top_folder` (GitHub archives named after a commit) puts the content at extract_to."""
    from hqm.pipeline.dvc import data_stages
    from hqm.pipeline.params import unpacked_dir

    old = {"extract_to": "raw/vcoco"}
    new = {"extract_to": "raw/vcoco/v-coco-master", "strip_top_folder": True}
    assert unpacked_dir("data", old, "v-coco-master") == unpacked_dir("data", new, "v-coco-master")
    paper = deep_merge(params_data, yaml.safe_load((repo / "config/paper.yaml").read_text()))
    paper["artefacts"]["vcoco_data"].update(new)
    cmd = data_stages(paper)["convert_vcoco-vcoco"]["cmd"]
    assert "--official-data data/raw/vcoco/v-coco-master/data " in cmd
