"""hqm visualize on a tiny random HQM model and generated synthetic data: the PNG and what it draws."""

import numpy as np
import pytest
import torch
from PIL import Image

from hqm.config import DatasetConfig
from hqm.data.datasets import dataset_meta
from hqm.errors import HqmError
from hqm.models.amm import masked_rank_count
from hqm.models.gbs import paired_iou
from hqm.reporting import gallery


def test_gallery_png_and_drawn_quantities(tmp_path, synthetic_hico, tiny_checkpoint):
    out = tmp_path / "gallery" / "hqm.png"
    rows = gallery.write_gallery(tiny_checkpoint, synthetic_hico, "hico", out, num_images=2, seed=3, top_k=2)
    with Image.open(out) as img:
        assert img.format == "PNG" and img.size == (1600, 800)  # 4 panels of 400 px per image
    assert len(rows) == 2
    _, cfg = gallery.load_detector(tiny_checkpoint, dataset_meta(DatasetConfig(format="hico", root=str(synthetic_hico))))
    gbs, amm = cfg.hard_queries.gbs, cfg.hard_queries.amm
    for row in rows:
        # top triplets: sorted scores in (0, 1), names from the class lists
        scores = [t.score for t in row.triplets]
        assert len(scores) == 2 and scores == sorted(scores, reverse=True) and all(0 < s < 1 for s in scores)
        # GBS: drawn IoUs are those of the boxes drawn, inside the band where a shift was accepted
        p = row.pairs
        for gt, new, iou, shifted in ((p.gt_sub, p.sub, p.sub_iou, p.sub_shifted), (p.gt_obj, p.obj, p.obj_iou, p.obj_shifted)):
            again = paired_iou(torch.from_numpy(gt), torch.from_numpy(new)).numpy()
            np.testing.assert_allclose(iou, again, rtol=1e-6)
            assert np.all((iou[shifted] > gbs.iou_low) & (iou[shifted] < gbs.iou_high))
            np.testing.assert_array_equal(new[~shifted], gt[~shifted])
        assert p.sub_shifted.any() or p.obj_shifted.any()
        # AMM: per head, the masked map is a distribution that is zero exactly at the n_mask hidden keys
        a = row.attention
        heads, h, w = a.unmasked.shape
        np.testing.assert_allclose(a.unmasked.reshape(heads, -1).sum(1), 1.0, rtol=1e-5)
        np.testing.assert_allclose(a.masked.reshape(heads, -1).sum(1), 1.0, rtol=1e-5)
        _, n_mask = masked_rank_count(amm.top_k, amm.mask_ratio, h * w)
        assert n_mask > 0 and (a.masked_keys.reshape(heads, -1).sum(1) == n_mask).all()
        assert np.all(a.masked[a.masked_keys] == 0) and np.all(a.masked[~a.masked_keys] > 0)
        assert a.query == row.triplets[0].query and a.layer == 1


def test_gallery_is_reproducible_with_a_seed(tmp_path, synthetic_hico, tiny_checkpoint):
    a = gallery.write_gallery(tiny_checkpoint, synthetic_hico, "hico", tmp_path / "a.png", num_images=1, seed=5)
    b = gallery.write_gallery(tiny_checkpoint, synthetic_hico, "hico", tmp_path / "b.png", num_images=1, seed=5)
    assert a[0].file_name == b[0].file_name
    np.testing.assert_array_equal(a[0].pairs.sub, b[0].pairs.sub)
    np.testing.assert_array_equal(a[0].attention.masked_keys, b[0].attention.masked_keys)


def test_visualize_cli_and_errors(tmp_path, synthetic_hico, tiny_checkpoint, capsys):
    from hqm.cli import main

    out = tmp_path / "g.png"
    assert main(["visualize", "--checkpoint", str(tiny_checkpoint), "--dataset-root", str(synthetic_hico),
                 "--format", "hico", "--out", str(out), "--num-images", "1", "--seed", "0"]) == 0
    with Image.open(out) as img:
        assert img.size == (1600, 400)
    capsys.readouterr()
    bad = tmp_path / "bad.png"
    assert main(["visualize", "--checkpoint", str(tiny_checkpoint), "--dataset-root", str(synthetic_hico),
                 "--format", "vcoco", "--out", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "corre_vcoco.npy" in err[0] and not bad.exists()
    with pytest.raises(HqmError, match="checkpoint not found"):
        gallery.write_gallery(tmp_path / "none.pth", synthetic_hico, "hico", bad)
