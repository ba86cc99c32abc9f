"""``predict_shard`` on the CPU feeds the backbone NHWC (channels_last) images and predicts what the
model predicts on the plain NCHW batch, up to float rounding."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from hqm.engine.distributed import build_dist_env
from hqm.engine.inference import predict_shard
from hqm.engine.train import build_components
from hqm.models.postprocess import postprocess_hoi

sys.path.insert(0, str(Path(__file__).parent))
import real_setup  # noqa: E402


def test_cpu_inference_is_channels_last_and_unchanged(tmp_path):
    root = real_setup.make_dataset(tmp_path / "data", num_train=4, num_test=4)
    torch.manual_seed(0)
    comps = build_components(real_setup.tiny_config(root, "qpic"))
    model = comps.model.eval()
    layouts = []
    backbone = model.backbone[0]
    original = backbone.forward
    backbone.forward = lambda images, mask: (layouts.append(images.is_contiguous(memory_format=torch.channels_last)),
                                             original(images, mask))[1]  # fmt: skip
    preds = [p for _, p in sorted(predict_shard(model, comps.test_set, comps.collate, build_dist_env("cpu"), 4),
                                  key=lambda pair: pair[0])]  # fmt: skip
    assert layouts == [True]
    backbone.forward = original

    images, mask, targets = comps.collate([comps.test_set[i] for i in range(4)])
    assert images.is_contiguous() and not images.is_contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        outputs = model(images, mask)
    expected = postprocess_hoi(outputs, torch.stack([t["orig_size"] for t in targets]))
    assert [p.file_name for p in preds] == [t["file_name"] for t in targets]
    for pred, exp in zip(preds, expected):
        np.testing.assert_allclose(pred.verb_scores, exp["verb_scores"], rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(pred.sub_boxes, exp["sub_boxes"], rtol=1e-4, atol=1e-3)
        np.testing.assert_allclose(pred.obj_boxes, exp["obj_boxes"], rtol=1e-4, atol=1e-3)
        np.testing.assert_array_equal(pred.obj_labels, exp["obj_labels"])
