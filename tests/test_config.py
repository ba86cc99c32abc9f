"""params.yaml -> typed config: validation, merging of variant overrides, round trip."""

import pytest

from hqm.config import (
    Params,
    RunConfig,
    load_params,
    load_run_config,
    resolve_run,
    save_run_config,
    to_dict,
)
from hqm.errors import HqmError

BASE = {
    "experiment": {"datasets": ["toy"], "variants": ["qpic", "hqm"], "seeds": [1, 2]},
    "datasets": {"toy": {"format": "hico", "root": "data/toy"}},
    "variants": {
        "qpic": {"method": "qpic"},
        "hqm": {"method": "hqm", "train": {"epochs": 80, "lr_drop": 55}, "hard_queries": {"loss_weight": 0.8}},
    },
    "train": {"epochs": 150, "lr_drop": 100},
}


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


@pytest.mark.parametrize(
    "patch, message",
    [
        ({"train": {"epochz": 3}}, "unknown key(s) epochz"),
        ({"train": {"epochs": "many"}}, "train.epochs: expected an integer"),
        ({"variants": {"bad": {"method": "detr"}}}, "variants.bad.method: 'detr' is not one of"),
        ({"model": {"aux_loss": False}}, "needs model.aux_loss: true"),
        ({"experiment": {"datasets": ["nope"]}}, "experiment.datasets names 'nope'"),
    ],
)
def test_bad_params_name_the_key(patch, message):
    from hqm.config import deep_merge

    with pytest.raises(HqmError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_params(deep_merge(BASE, patch))


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
