import math

import numpy as np
import torch

from hqm.models.postprocess import postprocess_hoi


def test_postprocess_scores_labels_and_absolute_boxes():
    obj_logits = torch.tensor([[[0.0, 1.0, 3.0], [2.0, 0.0, 0.0]]])  # no-object column is the largest in row 0
    verb_logits = torch.tensor([[[0.0, 1.0], [-1.0, 2.0]]])
    boxes = torch.tensor([[[0.5, 0.5, 0.2, 0.4], [0.25, 0.5, 0.5, 1.0]]])
    out = postprocess_hoi({"pred_obj_logits": obj_logits, "pred_verb_logits": verb_logits,
                           "pred_sub_boxes": boxes, "pred_obj_boxes": boxes.flip(1)}, torch.tensor([[100, 200]]))
    assert len(out) == 1
    image = out[0]
    assert image["obj_labels"].tolist() == [1, 0]  # argmax over real classes only
    denom0 = 1 + math.e + math.e**3
    assert np.allclose(image["obj_scores"], [math.e / denom0, math.e**2 / (math.e**2 + 2)])
    sig = 1 / (1 + np.exp(-verb_logits[0].numpy()))
    assert np.allclose(image["verb_scores"], sig * image["obj_scores"][:, None])
    assert np.allclose(image["sub_boxes"], [[80, 30, 120, 70], [0, 0, 100, 100]])  # (w, h) = (200, 100)
    assert np.allclose(image["obj_boxes"], image["sub_boxes"][::-1])
    assert image["verb_scores"].shape == (2, 2) and isinstance(image["obj_labels"], np.ndarray)
