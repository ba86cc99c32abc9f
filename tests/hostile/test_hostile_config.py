"""Hostile configuration values: out of range, left out, unknown, through the two config entry points.

``hqm resolve-config --params P`` (params.yaml -> run_config.yaml) and ``hqm train --config C``
(a run_config.yaml) must each stop with one line naming the file and the key, before writing.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from hostile_harness import Case, check_case, parametrize

from config_edit import without
from hqm.config import Params, deep_merge, load_params, resolve_run, to_dict

# A complete params file: every entry written out, a tiny model, one synthetic dataset.
PARAMS = deep_merge(to_dict(Params()), {
    "experiment": {"datasets": ["toy"], "variants": ["qpic", "amm", "hqm"]},
    "datasets": {"toy": {"format": "hico", "root": "data/toy", "source": "synthetic"}},
    "variants": {"qpic": {"method": "qpic"}, "amm": {"method": "amm"},
                 "hqm": {"method": "hqm", "train": {"epochs": 8, "lr_drop": 6}}},
    "model": {"backbone": "resnet18", "hidden_dim": 64, "nheads": 4, "enc_layers": 1, "dec_layers": 2},
})


def _params(data: dict):
    def setup(tmp: Path) -> None:
        (tmp / "params.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return setup


def _run_config(patch: dict | None = None, drop: str | None = None):
    def setup(tmp: Path) -> None:
        data = to_dict(resolve_run(load_params(PARAMS), "toy", "hqm", 1))
        data = deep_merge(data, patch or {})
        if drop:
            data = without(data, drop)
        (tmp / "run_config.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return setup


def _resolve(case_id: str, data: dict, message: tuple[str, ...], variant: str = "hqm") -> Case:
    return Case(case_id, _params(data),
                ("resolve-config", "--params", "{tmp}/params.yaml", "--dataset", "toy", "--variant", variant,
                 "--seed", "1", "--out", "{tmp}/run/run_config.yaml"),
                message, outputs=("run/run_config.yaml", "run"))


def _train(case_id: str, message: tuple[str, ...], **kw) -> Case:
    return Case(case_id, _run_config(**kw), ("train", "--config", "{tmp}/run_config.yaml", "--out", "{tmp}/run"),
                ("{tmp}/run_config.yaml", *message), outputs=("run",))


P = "{tmp}/params.yaml"
CASES = [
    _resolve("epochs-negative", deep_merge(PARAMS, {"train": {"epochs": -1}}),
             (f"{P}: train.epochs: must be >= 1, got -1",)),
    _resolve("global-batch-zero", deep_merge(PARAMS, {"train": {"global_batch_size": 0}}),
             (P, "train.global_batch_size: must be >= 1, got 0")),
    _resolve("lr-drop-zero", deep_merge(PARAMS, {"train": {"lr_drop": 0}}), (P, "train.lr_drop: must be >= 1")),
    _resolve("num-queries-zero", deep_merge(PARAMS, {"model": {"num_queries": 0}}),
             (P, "model.num_queries: must be >= 1, got 0")),
    _resolve("nheads-not-dividing", deep_merge(PARAMS, {"model": {"nheads": 3}}),
             (P, "model.nheads: must divide model.hidden_dim, got 3")),
    _resolve("scales-empty", deep_merge(PARAMS, {"augment": {"scales": []}}), (P, "augment.scales: must be a non-empty")),
    _resolve("gbs-band-inverted", deep_merge(PARAMS, {"hard_queries": {"gbs": {"iou_low": 0.6, "iou_high": 0.4}}}),
             (P, "hard_queries.gbs.iou_high: must be > hard_queries.gbs.iou_low")),
    _resolve("variant-override-out-of-range", deep_merge(PARAMS, {"variants": {"hqm": {"train": {"epochs": 0}}}}),
             (P, "variants.hqm.train.epochs: must be >= 1, got 0")),
    _resolve("leaf-left-out", without(PARAMS, "train.epochs"), (f"{P}: train.epochs: missing",)),
    _resolve("hard-query-leaf-left-out", without(PARAMS, "hard_queries.amm.top_k"),
             (f"{P}: hard_queries.amm.top_k: missing",), variant="amm"),
    _resolve("removed-option", deep_merge(PARAMS, {"hard_queries": {"amm": {"queries": "positives"}}}),
             (P, "hard_queries.amm: unknown key(s) queries"), variant="amm"),
    _train("run-config-epochs-negative", ("train.epochs: must be >= 1, got -1",), patch={"train": {"epochs": -1}}),
    _train("run-config-dropout", ("model.dropout: must be in [0, 1), got 1.5",), patch={"model": {"dropout": 1.5}}),
    _train("run-config-leaf-left-out", ("model.dec_layers: missing",), drop="model.dec_layers"),
    _train("run-config-unknown-method", ("method: unknown method 'detr'",), patch={"method": "detr"}),
]


@parametrize(CASES)
def test_hostile_config(case: Case, tmp_path: Path) -> None:
    check_case(case, tmp_path)
