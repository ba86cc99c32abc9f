"""The files and the overlay of the offline rehearsal of the paper chain (test_paper_rehearsal.py).

:func:`serve_files` builds every external file ``config/paper.yaml`` fetches, in its real layout
but tiny, and :func:`rehearsal_overlay` points the overlay's artefact sources at a local server and
shrinks the model, images and epochs. Nothing in the code under test changes: only parameters.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import torch

from hqm.config import ModelConfig
from hqm.models.build import build_detr

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
from real_layouts import CENTRE_BOX, FIXTURES, hico_archive, vcoco_files  # noqa: E402

# the shrunk model (a ResNet-18 trunk: see docs/pipeline.md, "Rehearsal")
MODEL = {"backbone": "resnet18", "hidden_dim": 32, "nheads": 2, "enc_layers": 1, "dec_layers": 2,
         "dim_feedforward": 32, "num_queries": 8}  # fmt: skip
# artefact name -> file name served (the paper's released checkpoints are not part of the graph)
SERVED = {"hico_20160224_det": "hico_20160224_det.tar.gz", "vcoco_data": "v-coco.zip", "vcoco_prior": "prior.pickle",
          "coco2014_annotations": "annotations_trainval2014.zip", "coco2014_train_images": "train2014.zip",
          "coco2014_val_images": "val2014.zip", "detr_r50": "detr.pth"}  # fmt: skip
PINNED_IN_OVERLAY = ("vcoco_data", "detr_r50")  # full digests in the overlay; the others pin on first use


def detr_state_dict(model: dict) -> dict[str, torch.Tensor]:
    """A DETR COCO state dict for ``model``: class_embed [92, d], bbox_embed, no HOI heads.

    Its heads answer every query with the same box, CENTRE_BOX, and class bicycle (COCO id 2),
    where the tiny datasets put a person and a bicycle (real_layouts.py): the chain's evaluations
    then count true positives, so boxes scaled wrongly anywhere on the way show up as zeros. The
    other class_embed rows have distinct biases (row / 100), so the row mapping is visible.
    """
    torch.manual_seed(0)
    detr = build_detr(ModelConfig(**model)).state_dict()
    detr["class_embed.weight"] = torch.zeros_like(detr["class_embed.weight"])
    detr["class_embed.bias"] = torch.arange(92, dtype=torch.float32) / 100
    detr["class_embed.bias"][2] = 6.0
    last = detr["bbox_embed.layers.2.weight"]
    detr["bbox_embed.layers.2.weight"] = torch.zeros_like(last)
    detr["bbox_embed.layers.2.bias"] = torch.logit(torch.tensor(CENTRE_BOX, dtype=last.dtype))
    return detr


def serve_files(folder: Path) -> dict[str, Path]:
    """Every artefact of the graph in ``folder``: {artefact name: file}."""
    folder.mkdir(parents=True, exist_ok=True)
    hico_archive(folder / SERVED["hico_20160224_det"])
    vcoco = vcoco_files(folder)
    vcoco["vcoco"].rename(folder / SERVED["vcoco_data"])
    (folder / SERVED["vcoco_prior"]).write_bytes((FIXTURES / "vcoco_eval/prior.pickle").read_bytes())
    # the layout of DETR's released files: model, optimizer, lr_scheduler, epoch, args (a Namespace)
    torch.save({"model": detr_state_dict(MODEL), "optimizer": {}, "lr_scheduler": {}, "epoch": 499,
                "args": argparse.Namespace(backbone=MODEL["backbone"], hidden_dim=MODEL["hidden_dim"])},
               folder / SERVED["detr_r50"])  # fmt: skip
    return {name: folder / file for name, file in SERVED.items()}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def rehearsal_overlay(base_url: str, files: dict[str, Path]) -> dict:
    """Merged over config/paper.yaml: local sources, a tiny model, 1 epoch, 2 gloo ranks per run."""
    artefacts = {
        name: {"sources": [f"{base_url}/{path.name}"],
               "sha256": sha256(path) if name in PINNED_IN_OVERLAY else None}
        for name, path in files.items()
    }  # fmt: skip
    short = {"epochs": 1, "lr_drop": 1}
    return {
        "experiment": {"variants": ["qpic", "hqm"], "seeds": [1], "gpus_per_run": 0, "cpu_procs_per_run": 2},
        "variants": {"hqm": {"train": short}},
        "model": MODEL,
        "hard_queries": {"amm": {"top_k": 4}},
        "augment": {"scales": [56, 64], "max_size": 80, "crop_resize_scales": [48, 64], "crop_min_size": 32,
                    "crop_max_size": 64, "test_scale": 64},
        "train": {**short, "global_batch_size": 4, "micro_batch_size": 2, "num_workers": 1, "threads_per_rank": 1,
                  "checkpoint_every_iters": 1, "log_every_iters": 1,
                  "select_best": False},  # the CI end-to-end runs cover checkpoint_best; 4 evaluations fewer
        "evaluation": {"batch_size": 2},
        "artefacts": artefacts,
    }  # fmt: skip
