"""``hqm evaluate`` as a stage: the evaluation section from --eval-json / --eval-config, and a tiny
V-COCO train -> evaluate (selection = QPIC mAP_all; evaluate: official S1/S2, agent AP, pickle)."""

from __future__ import annotations

import json
import pickle
import sys
from pathlib import Path

import pytest
import yaml

from hqm.cli import main
from hqm.commands.evaluate import load_eval_config
from hqm.config import EvalConfig, RunConfig, SyntheticConfig, save_run_config
from hqm.errors import HqmError
from hqm.io import read_json

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
import real_setup  # noqa: E402


def test_eval_section_sources(tmp_path):
    assert load_eval_config(None, None) == EvalConfig()  # every published protocol
    assert load_eval_config('{"hico_protocols": ["qpic"], "batch_size": 3}', None) == \
        EvalConfig(hico_protocols=["qpic"], batch_size=3)
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"train": {"epochs": 1}, "evaluation": {"max_hois": 50}}))
    assert load_eval_config(None, str(params)).max_hois == 50
    section = tmp_path / "section.yaml"
    section.write_text("hico_settings: [default]\n")
    assert load_eval_config(None, str(section)).hico_settings == ["default"]
    with pytest.raises(HqmError, match=r"^--eval-json: not JSON"):
        load_eval_config("{", None)
    with pytest.raises(HqmError, match=r"params.yaml: evaluation: .*hico_protocols\[0\]"):
        params.write_text("evaluation: {hico_protocols: [bogus]}\n")
        load_eval_config(None, str(params))


def test_bad_eval_json_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "metrics.json"
    rc = main(["evaluate", "--checkpoint", str(tmp_path / "none.pth"), "--dataset-root", str(tmp_path),
               "--format", "hico", "--out", str(out), "--eval-json", '{"max_hois": "x"}'])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "--eval-json" in err[0] and "max_hois" in err[0]
    assert not out.exists()


@pytest.mark.slow
def test_vcoco_train_then_evaluate_with_pickle(tmp_path, capsys):
    from hqm.data.synthetic import make_synthetic

    root = tmp_path / "synthetic_vcoco"
    make_synthetic(SyntheticConfig(seed=0, num_train=8, num_test=4, image_size=96, max_people=1,
                                   max_objects=1), "vcoco", root)
    base = real_setup.tiny_config(root, "qpic", epochs=1, select_best=True, eval_batch_size=2)
    data = {**base.__dict__, "dataset": type(base.dataset)(format="vcoco", root=str(root)),
            "dataset_name": "synthetic_vcoco"}
    save_run_config(RunConfig(**data), tmp_path / "run_config.yaml")
    run = tmp_path / "run"
    assert main(["train", "--config", str(tmp_path / "run_config.yaml"), "--out", str(run), "--device", "cpu"]) == 0
    summary = read_json(run / "train_summary.json")
    changed = RunConfig(**{**data, "train": type(base.train)(**{**base.train.__dict__, "lr": 0.5})})
    save_run_config(changed, tmp_path / "changed.yaml")
    before = (run / "log.jsonl").read_text()
    capsys.readouterr()  # the training's progress lines
    assert main(["train", "--config", str(tmp_path / "changed.yaml"), "--out", str(run), "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "(differs in train.lr)" in err[0] and "--restart" in err[0], err
    assert (run / "log.jsonl").read_text() == before
    assert summary["selection"]["metric"] == "vcoco.qpic.mAP_all" and summary["selection"]["best_epoch"] == 1
    assert main(["evaluate", "--checkpoint", str(run / "checkpoint_best.pth"), "--dataset-root", str(root),
                 "--format", "vcoco", "--out", str(run / "metrics_best.json"), "--eval-json", json.dumps({"batch_size": 2}),
                 "--headline-out", str(run / "headline_best.json"), "--vcoco-pickle", str(run / "vcoco_best.pkl"),
                 "--device", "cpu"]) == 0  # fmt: skip
    metrics = read_json(run / "metrics_best.json")
    assert (metrics["checkpoint"], metrics["selected_on_test"], metrics["epoch"]) == ("best", True, 1)
    assert metrics["training"]["selection"] == summary["selection"]
    assert metrics["training"]["provenance"]["world_size"] == 1 and metrics["provenance"]["nodes"] == 1
    official, qpic = metrics["vcoco"]["official"], metrics["vcoco"]["qpic"]
    assert qpic["mAP_all"] == pytest.approx(summary["selection"]["values"]["1"], abs=1e-6)
    head = read_json(run / "headline_best.json")
    assert head["vcoco_role_ap_s1"] == official["role_ap_s1_24"] and head["vcoco_agent_ap"] == official["agent_ap"]
    assert head["vcoco_qpic_map"] == pytest.approx(100 * qpic["mAP_all"])
    with open(run / "vcoco_best.pkl", "rb") as handle:
        assert isinstance(pickle.load(handle), list)
