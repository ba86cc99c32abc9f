import argparse
import json
from pathlib import Path

import pytest
import torch
from models_helpers import tiny_detector

from hqm.cli import main as cli_main
from hqm.config import ModelConfig
from hqm.data.classes import DETR_NO_OBJECT_ROW, VALID_COCO_IDS
from hqm.engine.checkpoint import load_checkpoint, load_initial_weights, load_weights, save_payload
from hqm.errors import HqmError
from hqm.models.build import build_qpic
from hqm.models.weights import convert_detr_to_qpic, hqm_to_qpic_layout, qpic_to_hqm_layout

ROWS = [*VALID_COCO_IDS, DETR_NO_OBJECT_ROW]

SPEC = Path(__file__).resolve().parents[1] / "fixtures" / "state_dicts"


def _random_state(tsv):
    lines = (SPEC / tsv).read_text().splitlines()[1:]
    gen = torch.Generator().manual_seed(0)
    return {k: torch.randn(json.loads(shape), generator=gen) for k, shape in (line.split("\t") for line in lines)}


@pytest.fixture(scope="module")
def detr_state():
    return _random_state("detr_r50_coco.tsv")


def test_detr_to_qpic_hico_gathers_valid_rows_and_loads_strictly(detr_state):
    state = convert_detr_to_qpic(detr_state, ROWS)
    assert state["obj_class_embed.weight"].shape == (81, 256)
    torch.testing.assert_close(state["obj_class_embed.weight"][0], detr_state["class_embed.weight"][1])
    torch.testing.assert_close(state["obj_class_embed.weight"][11], detr_state["class_embed.weight"][13])
    torch.testing.assert_close(state["obj_class_embed.bias"][79], detr_state["class_embed.bias"][VALID_COCO_IDS[79]])
    torch.testing.assert_close(state["obj_class_embed.bias"][80], detr_state["class_embed.bias"][91])
    torch.testing.assert_close(state["sub_bbox_embed.layers.2.weight"], detr_state["bbox_embed.layers.2.weight"])
    torch.testing.assert_close(state["obj_bbox_embed.layers.0.bias"], detr_state["bbox_embed.layers.0.bias"])
    assert not any(k.startswith(("class_embed.", "bbox_embed.")) for k in state)
    model = build_qpic(ModelConfig(), 80, 117)
    expected_keys = set(model.state_dict())
    assert set(state) == expected_keys - {"verb_class_embed.weight", "verb_class_embed.bias"}


def test_detr_to_qpic_vcoco_inserts_a_seeded_row(detr_state):
    a = convert_detr_to_qpic(detr_state, ROWS, insert_missing_row=True, convert_seed=0)
    b = convert_detr_to_qpic(detr_state, ROWS, insert_missing_row=True, convert_seed=0)
    c = convert_detr_to_qpic(detr_state, ROWS, insert_missing_row=True, convert_seed=1)
    w = a["obj_class_embed.weight"]
    assert w.shape == (82, 256) and a["obj_class_embed.bias"].shape == (82,)
    torch.testing.assert_close(w[81], detr_state["class_embed.weight"][91])
    torch.testing.assert_close(w[79], detr_state["class_embed.weight"][90])
    assert torch.equal(w, b["obj_class_embed.weight"]) and not torch.equal(w[80], c["obj_class_embed.weight"][80])
    assert w[80].abs().max() <= 1 / 16 and a["obj_class_embed.bias"][80].abs() <= 1 / 16


def test_layouts_round_trip_and_match_hqm_tsv(detr_state):
    state = convert_detr_to_qpic(detr_state, ROWS)
    hqm = qpic_to_hqm_layout(state)
    hqm_keys = {line.split("\t")[0] for line in (SPEC / "hqm_r50_hico.tsv").read_text().splitlines()[1:]}
    assert set(hqm) == hqm_keys - {k for k in hqm_keys if k.startswith(("query_embed_sp.", "transformer.decoder.verb_class_embed."))}
    assert hqm_to_qpic_layout(hqm).keys() == state.keys()


def test_save_load_round_trip_and_hqm_checkpoint_into_qpic(tmp_path):
    model = tiny_detector()
    save_payload(tmp_path / "own.pth", {"model": model.state_dict(), "args": {"lr": 1e-4}})
    other = tiny_detector()
    load_weights(other, tmp_path / "own.pth")
    for key, value in model.state_dict().items():
        assert torch.equal(value, other.state_dict()[key]), key
    # a released HQM checkpoint: heads under transformer.decoder plus the GBS encoder
    hqm = qpic_to_hqm_layout(model.state_dict())
    hqm["query_embed_sp.layers.0.weight"] = torch.zeros(32, 12)
    save_payload(tmp_path / "hqm.pth", {"model": hqm})
    third = tiny_detector()
    load_weights(third, tmp_path / "hqm.pth")
    assert torch.equal(third.obj_class_embed.weight, model.obj_class_embed.weight)


def test_strict_loading_lists_offending_keys(tmp_path):
    model = tiny_detector()
    state = model.state_dict()
    state["obj_class_embed.weight"] = torch.zeros(5, 32)
    del state["query_embed.weight"]
    state["class_embed.weight"] = torch.zeros(1)
    save_payload(tmp_path / "bad.pth", {"model": state})
    with pytest.raises(HqmError) as info:
        load_weights(tiny_detector(), tmp_path / "bad.pth")
    message = str(info.value)
    assert "bad.pth" in message and "\n" not in message
    assert "missing: query_embed.weight" in message and "unexpected: class_embed.weight" in message
    assert "obj_class_embed.weight [5, 32] vs model [81, 32]" in message


def test_initial_weights_may_only_miss_the_verb_head(tmp_path):
    model = tiny_detector()
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("verb_class_embed.")}
    save_payload(tmp_path / "init.pth", {"model": state})
    assert load_initial_weights(tiny_detector(), tmp_path / "init.pth") == ["verb_class_embed.bias", "verb_class_embed.weight"]
    del state["input_proj.bias"]
    save_payload(tmp_path / "init2.pth", {"model": state})
    with pytest.raises(HqmError, match="missing: input_proj.bias"):
        load_initial_weights(tiny_detector(), tmp_path / "init2.pth")


def test_truncated_foreign_and_pickled_object_files_are_clear_errors(tmp_path):
    save_payload(tmp_path / "ok.pth", {"model": {"a": torch.zeros(3)}})
    data = (tmp_path / "ok.pth").read_bytes()
    (tmp_path / "cut.pth").write_bytes(data[: len(data) // 2])
    (tmp_path / "text.pth").write_text("hello")
    for name in ("cut.pth", "text.pth", "missing.pth"):
        with pytest.raises(HqmError, match=name) as info:
            load_checkpoint(tmp_path / name, unsafe_pickle=True)
        assert "pickle" not in str(info.value) and "\n" not in str(info.value)
    torch.save({"model": {"a": torch.zeros(1)}, "other": Path("/x")}, tmp_path / "foreign.pth")
    with pytest.raises(HqmError, match=r"foreign.pth: checkpoint pickles a pathlib\.\w*Path object; add --unsafe-pickle"):
        load_checkpoint(tmp_path / "foreign.pth")
    assert load_checkpoint(tmp_path / "foreign.pth", unsafe_pickle=True)["other"] == Path("/x")
    torch.save([torch.zeros(1)], tmp_path / "list.pth")
    with pytest.raises(HqmError, match="list.pth"):
        load_checkpoint(tmp_path / "list.pth")


def test_released_files_pickling_an_argparse_namespace_load_without_unsafe_pickle(tmp_path):
    """Upstream DETR / QPIC / HQM releases store ``args`` as an argparse Namespace: allow-listed."""
    torch.save({"model": {"a": torch.zeros(1)}, "args": argparse.Namespace(lr=1, dataset_file="hico")},
               tmp_path / "upstream.pth")
    loaded = load_checkpoint(tmp_path / "upstream.pth")
    assert loaded["args"].lr == 1 and loaded["args"].dataset_file == "hico"


def test_convert_weights_command_is_reproducible(tmp_path, detr_state):
    small = {k: v[:4].clone() if k.startswith("transformer.") else v for k, v in detr_state.items()
             if not k.startswith("backbone.")}
    torch.save({"model": small, "args": argparse.Namespace(lr=1e-4)}, tmp_path / "detr.pth")
    outs = []
    for name in ("a.pth", "b.pth"):
        argv = ["convert-weights", "--detr", str(tmp_path / "detr.pth"), "--out", str(tmp_path / name),
                "--dataset-format", "vcoco", "--layout", "hqm", "--convert-seed", "3"]
        assert cli_main(argv) == 0
        outs.append(json.loads((tmp_path / f"{name}.json").read_text()))
    assert outs[0]["sha256"] == outs[1]["sha256"] and outs[0]["convert_seed"] == 3
    state = load_checkpoint(tmp_path / "a.pth")["model"]
    assert state["transformer.decoder.obj_class_embed.weight"].shape == (82, 256)
