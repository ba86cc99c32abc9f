"""params.yaml -> typed config: validation, ranges, completeness, variant overrides, round trip."""

from pathlib import Path

import jsonschema
import pytest
import yaml

from config_edit import without
from hqm.config import (
    VARIANTS,
    Params,
    RunConfig,
    deep_merge,
    from_dict,
    load_params,
    load_run_config,
    resolve_run,
    save_run_config,
    to_dict,
)
from hqm.errors import HqmError
from hqm.methods import METHOD_NAMES

REPO = Path(__file__).resolve().parents[1]

# A complete params mapping: every entry written out (the built-in defaults, then the test's values).
BASE = deep_merge(to_dict(Params()), {
    "experiment": {"datasets": ["toy"], "variants": ["qpic", "hqm"], "seeds": [1, 2]},
    "datasets": {"toy": {"format": "hico", "root": "data/toy", "source": "synthetic"}},
    "variants": {
        "qpic": {"method": "qpic"},
        "hqm": {"method": "hqm", "train": {"epochs": 80, "lr_drop": 55}, "hard_queries": {"loss_weight": 0.8}},
    },
    "train": {"epochs": 150, "lr_drop": 100},
})


def _escaped(text: str) -> str:
    return "".join("\\" + c if c in "()[].+*?" else c for c in text)


def test_defaults_are_the_papers_recipe():
    p = Params()
    assert (p.loss.cost_bbox, p.loss.cost_giou, p.loss.bbox_loss_coef, p.loss.giou_loss_coef) == (2.5, 1.0, 2.5, 1.0)
    assert p.loss.eos_coef == 0.1 and p.train.global_batch_size == 16 and p.train.clip_max_norm == 0.1
    assert (p.hard_queries.gbs.iou_low, p.hard_queries.gbs.iou_high, p.hard_queries.gbs.max_tries) == (0.4, 0.6, 40)
    assert (p.hard_queries.amm.top_k, p.hard_queries.amm.mask_ratio) == (100, 0.4)


def test_variant_overrides_reach_only_that_variant():
    params = load_params(BASE)
    hqm = resolve_run(params, "toy", "hqm", 1)
    qpic = resolve_run(params, "toy", "qpic", 1)
    assert (hqm.train.epochs, hqm.train.lr_drop, hqm.method) == (80, 55, "hqm")
    assert (qpic.train.epochs, qpic.train.lr_drop, qpic.method) == (150, 100, "qpic")
    assert hqm.train.lr == qpic.train.lr == 1e-4


def test_variant_override_of_a_nested_hard_query_entry():
    data = deep_merge(BASE, {"variants": {"amm": {"method": "amm",
                                                  "hard_queries": {"amm": {"apply_decoder_norm": True}}}}})
    params = load_params(data)
    assert resolve_run(params, "toy", "amm", 1).hard_queries.amm.apply_decoder_norm is True
    assert resolve_run(params, "toy", "hqm", 1).hard_queries.amm.apply_decoder_norm is False
    assert resolve_run(params, "toy", "amm", 1).hard_queries.amm.top_k == 100  # siblings kept


@pytest.mark.parametrize(
    "patch, message",
    [
        ({"train": {"epochz": 3}}, "train: unknown key(s) epochz"),
        ({"train": {"epochs": "many"}}, "train.epochs: expected an integer"),
        ({"variants": {"bad": {"method": "detr"}}}, "variants.bad.method: unknown method 'detr' (known: qpic, gbs"),
        ({"model": {"aux_loss": False}}, "needs model.aux_loss: true"),
        ({"experiment": {"datasets": ["nope"]}}, "experiment.datasets names 'nope'"),
        ({"experiment": {"dataset_variants": {"nope": ["qpic"]}}}, "experiment.dataset_variants.nope: no such dataset"),
        ({"experiment": {"dataset_variants": {"toy": []}}}, "experiment.dataset_variants.toy: empty"),
        ({"experiment": {"variants": ["qpic"], "dataset_variants": {"toy": ["hqm"]}}},
         "experiment.dataset_variants.toy: 'hqm' is not in experiment.variants"),
        ({"train": {"epochs": -1}}, "<params>: train.epochs: must be >= 1, got -1"),
        ({"train": {"lr_drop": 0}}, "train.lr_drop: must be >= 1, got 0"),
        ({"train": {"global_batch_size": 0}}, "train.global_batch_size: must be >= 1, got 0"),
        ({"train": {"global_batch_size": 6, "micro_batch_size": 4}},
         "train.global_batch_size: must be a multiple of train.micro_batch_size, got 6"),
        ({"train": {"lr": 0.0}}, "train.lr: must be > 0, got 0.0"),
        ({"model": {"num_queries": 0}}, "model.num_queries: must be >= 1, got 0"),
        ({"model": {"hidden_dim": 30, "nheads": 4}}, "model.nheads: must divide model.hidden_dim, got 4"),
        ({"model": {"dropout": 1.0}}, "model.dropout: must be in [0, 1), got 1.0"),
        ({"model": {"dec_layers": 0}}, "model.dec_layers: must be >= 1, got 0"),
        ({"model": {"backbone": "resnet18", "dilation": True}}, "model.dilation: needs a bottleneck ResNet"),
        ({"augment": {"scales": []}}, "augment.scales: must be a non-empty list of sizes >= 1, got []"),
        ({"hard_queries": {"gbs": {"iou_low": 0.7}}}, "hard_queries.gbs.iou_high: must be > hard_queries.gbs.iou_low"),
        ({"hard_queries": {"amm": {"mask_ratio": 1.5}}}, "hard_queries.amm.mask_ratio: must be in [0, 1), got 1.5"),
        ({"hard_queries": {"amm": {"queries": "positives"}}}, "hard_queries.amm: unknown key(s) queries"),
        ({"evaluation": {"batch_size": 0}}, "evaluation.batch_size: must be >= 1, got 0"),
        ({"variants": {"hqm": {"train": {"epochs": 0}}}}, "variants.hqm.train.epochs: must be >= 1, got 0"),
        ({"datasets": {"toy": {"dataset_kw": {}}}}, "datasets.toy: unknown key(s) dataset_kw"),
        ({"pretrain": {"epochs": 0}}, "pretrain.epochs: must be >= 1, got 0"),
        ({"experiment": {"backbone_weights": "detr_synthetic"}, "pretrain": {"dataset": "other"}},
         "pretrain.dataset: 'other' is not in experiment.datasets"),
        ({"experiment": {"backbone_weights": "detr_synthetic"},
          "artefacts": {"detr_synthetic": {"sha256": None, "path": "d.pth", "sources": ["https://x/d.pth"]}}},
         "pretrain.name: 'detr_synthetic' is also an artefact"),
    ],
)
def test_bad_params_name_the_key(patch, message):
    with pytest.raises(HqmError, match=_escaped(message)):
        load_params(deep_merge(BASE, patch))


@pytest.mark.parametrize("key", ["train.epochs", "hard_queries.amm.top_k", "model.nheads", "datasets.toy.source",
                                 "synthetic.layout", "experiment.gpus_per_run", "evaluation.batch_size",
                                 "pretrain.eos_coef"])
def test_a_left_out_entry_is_an_error_not_a_default(key):
    with pytest.raises(HqmError, match=_escaped(f"<params>: {key}: missing")):
        load_params(without(BASE, key))


def test_overlays_may_leave_entries_out_but_the_params_file_may_not(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(BASE))
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text(yaml.safe_dump({"train": {"epochs": 7}}))
    assert load_params(params, [overlay]).train.epochs == 7
    params.write_text(yaml.safe_dump(without(BASE, "train.lr")))
    with pytest.raises(HqmError, match=_escaped(f"{params}: train.lr: missing")):
        load_params(params, [overlay])


def test_a_selection_of_sections_resolves_but_a_leaf_left_out_inside_one_does_not():
    """``hqm resolve-config`` builds Params from the sections one run reads (pipeline_params)."""
    selected = {k: BASE[k] for k in ("model", "loss", "augment", "train", "evaluation")}
    selected["datasets"] = {"toy": BASE["datasets"]["toy"]}
    selected["hard_queries"] = {"gbs": BASE["hard_queries"]["gbs"], "loss_weight": 1.0}
    selected["variants"] = {"g": {"method": "gbs"}}
    cfg = resolve_run(from_dict(Params, selected, "sel.yaml"), "toy", "g", 1)
    assert cfg.hard_queries.loss_weight == 1.0 and cfg.method == "gbs"
    for key in ("hard_queries.gbs.step", "hard_queries.loss_weight", "augment.max_size", "datasets.toy.source"):
        params = from_dict(Params, without(selected, key), "sel.yaml")
        with pytest.raises(HqmError, match=_escaped(f"sel.yaml: {key}: missing")):
            resolve_run(params, "toy", "g", 1)


def test_yaml_errors_name_the_file(tmp_path):
    bad = tmp_path / "params.yaml"
    bad.write_text("train: [1, 2\n")
    with pytest.raises(HqmError, match=str(bad)):
        load_params(bad)


def test_run_config_round_trip(tmp_path):
    cfg = resolve_run(load_params(BASE), "toy", "hqm", 2)
    save_run_config(cfg, tmp_path / "run" / "config.yaml")
    back = load_run_config(tmp_path / "run" / "config.yaml")
    assert isinstance(back, RunConfig) and to_dict(back) == to_dict(cfg)
    assert not list((tmp_path / "run").glob("*.tmp"))


def test_run_config_is_complete_and_range_checked(tmp_path):
    data = to_dict(resolve_run(load_params(BASE), "toy", "hqm", 2))
    path = tmp_path / "run_config.yaml"
    path.write_text(yaml.safe_dump(without(data, "train.lr_drop")))
    with pytest.raises(HqmError, match=_escaped(f"{path}: train.lr_drop: missing")):
        load_run_config(path)
    path.write_text(yaml.safe_dump(deep_merge(data, {"train": {"epochs": -1}})))
    with pytest.raises(HqmError, match=_escaped(f"{path}: train.epochs: must be >= 1, got -1")):
        load_run_config(path)
    path.write_text(yaml.safe_dump(deep_merge(data, {"method": "detr"})))
    with pytest.raises(HqmError, match=_escaped(f"{path}: method: unknown method 'detr'")):
        load_run_config(path)


def test_methods_have_one_source():
    assert VARIANTS == METHOD_NAMES
    schema = yaml.safe_load((REPO / "workflow/schemas/params.schema.yaml").read_text())
    assert tuple(schema["definitions"]["method"]["enum"]) == METHOD_NAMES


@pytest.mark.parametrize("patch", [{"train": {"epochs": 0}}, {"model": {"dropout": 1.0}}, {"augment": {"scales": []}},
                                   {"hard_queries": {"amm": {"top_k": 0}}}, {"evaluation": {"batch_size": 0}}])
def test_the_schema_checks_the_same_ranges(patch):
    schema = yaml.safe_load((REPO / "workflow/schemas/params.schema.yaml").read_text())
    jsonschema.validate(BASE, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(deep_merge(BASE, patch), schema)


def test_repository_params_are_complete_and_carry_the_per_variant_settings():
    demo = load_params(REPO / "params.yaml")
    paper = load_params(REPO / "params.yaml", [REPO / "config/paper.yaml"])
    for params, dataset in ((demo, "synthetic_hico"), (paper, "hico_det")):
        runs = {v: resolve_run(params, dataset, v, 42) for v in ("gbs", "amm", "hqm")}
        # standalone AMM code applies decoder.norm to its AMM stream; the combined HQM code does not
        assert runs["amm"].hard_queries.amm.apply_decoder_norm is True
        assert runs["hqm"].hard_queries.amm.apply_decoder_norm is False
        assert (runs["gbs"].hard_queries.loss_weight, runs["amm"].hard_queries.loss_weight,
                runs["hqm"].hard_queries.loss_weight) == (1.0, 1.0, 0.8)
    assert paper.evaluation.batch_size == 2
    # the demo's no-augmentation and in-memory samples must not leak into the paper overlay
    assert (demo.augment.policy, demo.train.cache_samples) == ("none", True)
    assert (paper.augment.policy, paper.train.cache_samples) == ("qpic", False)
    assert {v: resolve_run(paper, "hico_det", v, 42).train.epochs for v in VARIANTS} == \
        {"qpic": 150, "gbs": 80, "amm": 80, "hqm": 80}
