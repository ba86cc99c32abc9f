"""The rehearsal's served files are in the real layouts (fast checks; the chain itself is slow)."""

import json
import tarfile
import zipfile

from hqm.config import ModelConfig

from .rehearsal import FIXTURES, detr_state_dict, serve_files

STATE_DICTS = FIXTURES / "state_dicts"


def test_detr_builder_gives_detrs_keys_and_shapes_at_paper_size():
    """At the paper's R50 size the builder's dict is DETR's: keys and shapes of detr_r50_coco.tsv."""
    lines = (STATE_DICTS / "detr_r50_coco.tsv").read_text().splitlines()[1:]
    expected = {key: json.loads(shape) for key, shape in (line.split("\t") for line in lines)}
    paper = {f: getattr(ModelConfig(), f) for f in ("backbone", "hidden_dim", "nheads", "enc_layers", "dec_layers",
                                                      "dim_feedforward", "num_queries")}  # fmt: skip
    built = {key: list(value.shape) for key, value in detr_state_dict(paper).items()}
    assert built == expected


def test_served_archives_have_the_real_top_folders(tmp_path):
    files = serve_files(tmp_path)
    with tarfile.open(files["hico_20160224_det"]) as tar:
        names = tar.getnames()
    assert {n.split("/")[0] for n in names} == {"hico_20160224_det"}
    assert {"hico_20160224_det/anno_bbox.mat", "hico_20160224_det/anno.mat"} <= set(names)
    assert any(n.startswith("hico_20160224_det/images/test2015/HICO_test2015_") for n in names)
    tops = {name: {n.split("/")[0] for n in zipfile.ZipFile(files[name]).namelist()}
            for name in ("vcoco_data", "coco2014_annotations", "coco2014_train_images", "coco2014_val_images")}
    assert tops == {"vcoco_data": {"v-coco-489cc4db74f2f10ab4b134f67da3874afbf245ab"},
                    "coco2014_annotations": {"annotations"}, "coco2014_train_images": {"train2014"},
                    "coco2014_val_images": {"val2014"}}  # fmt: skip
    with zipfile.ZipFile(files["vcoco_data"]) as archive:
        top = "v-coco-489cc4db74f2f10ab4b134f67da3874afbf245ab/data"
        actions = json.loads(archive.read(f"{top}/vcoco/vcoco_trainval.json"))
        assert {f"{top}/splits/vcoco_{s}.ids" for s in ("train", "val", "trainval", "test", "all")} <= set(
            archive.namelist())
    official = json.loads((FIXTURES / "vcoco_eval/data/vcoco/vcoco_test.json").read_text())
    assert [sorted(a) for a in actions] == [sorted(a) for a in official]  # the official action-file keys
