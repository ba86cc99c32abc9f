"""Tiny stand-ins for dataset / detector / criterion / evaluator, following docs/architecture.md.

Used by the engine tests to exercise the loop quickly; the end-to-end tests use the real modules.
"""

from __future__ import annotations

import torch
from torch import nn

from hqm.config import DatasetConfig, RunConfig, TrainConfig
from hqm.engine.distributed import broadcast_object
from hqm.engine.inference import gather_predictions, shard_indices
from hqm.engine.train import TrainComponents

NUM_OBJ, NUM_VERB, QUERIES = 3, 4, 5


class FakeDataset(torch.utils.data.Dataset):
    """Fixed random images of one size; each image has exactly one pair with one verb."""

    def __init__(self, n: int, augment: bool, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        self.images = torch.rand(n, 3, 16, 16, generator=g)
        self.labels = torch.randint(0, NUM_OBJ, (n, 1), generator=g)
        self.verbs = torch.randint(0, NUM_VERB, (n,), generator=g)
        self.boxes = torch.rand(n, 2, 4, generator=g) * 0.4 + 0.3
        self.augment = augment

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        image = self.images[i]
        if self.augment:  # global-RNG noise, so SeededItems decides it
            image = image + 0.01 * torch.randn_like(image)
        verbs = torch.zeros(1, NUM_VERB)
        verbs[0, self.verbs[i]] = 1
        target = {"obj_labels": self.labels[i], "verb_labels": verbs, "sub_boxes": self.boxes[i, :1],
                  "obj_boxes": self.boxes[i, 1:], "orig_size": torch.tensor([16, 16]),
                  "aug_size": torch.tensor([16, 16]), "image_index": i, "file_name": f"{i}.jpg"}
        return image, target


def collate(batch):
    images = torch.stack([b[0] for b in batch])
    mask = torch.zeros(images.shape[0], 16, 16, dtype=torch.bool)
    return images, mask, [b[1] for b in batch]


class FakeDetector(nn.Module):
    def __init__(self, dropout: float = 0.0):
        super().__init__()
        self.backbone = nn.Conv2d(3, 8, 3, padding=1)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(8, QUERIES * (NUM_OBJ + 1 + NUM_VERB + 8))

    def forward(self, images, mask, targets=None, hard_stream=None):
        feat = self.drop(self.backbone(images).relu().mean(dim=(2, 3)))
        out = self.head(feat).view(len(images), QUERIES, -1)
        return {"pred_obj_logits": out[..., : NUM_OBJ + 1],
                "pred_verb_logits": out[..., NUM_OBJ + 1 : NUM_OBJ + 1 + NUM_VERB],
                "pred_sub_boxes": out[..., -8:-4].sigmoid(), "pred_obj_boxes": out[..., -4:].sigmoid(),
                "aux_outputs": []}


class FakeCriterion(nn.Module):
    """Query 0 is matched to the single pair; per-micro-batch means like QPIC's normalisers."""

    weight_dict = {"loss_obj_ce": 1.0, "loss_verb": 1.0, "loss_sub_bbox": 2.5}

    def forward(self, outputs, targets, num_interactions):
        labels = torch.stack([t["obj_labels"][0] for t in targets])
        verbs = torch.stack([t["verb_labels"][0] for t in targets])
        subs = torch.stack([t["sub_boxes"][0] for t in targets])
        ce = nn.functional.cross_entropy(outputs["pred_obj_logits"][:, 0], labels)
        verb = nn.functional.binary_cross_entropy_with_logits(outputs["pred_verb_logits"][:, 0], verbs)
        l1 = (outputs["pred_sub_boxes"][:, 0] - subs).abs().sum() / num_interactions
        return {"loss_obj_ce": ce, "loss_verb": verb, "loss_sub_bbox": l1}


class Meta:
    format = "hico"
    root = "unused"


def fake_evaluate(model, dataset, collate_fn, meta, eval_cfg, env, num_workers=0, bf16=False):
    """Shards like the real path; the 'mAP' is a function of every image's prediction."""
    model.eval()
    local = []
    with torch.no_grad():
        for i in shard_indices(len(dataset), env):
            images, mask, _ = collate([dataset[i]])
            local.append((i, model(images, mask)["pred_verb_logits"].sigmoid().mean().item()))
    model.train()
    merged = gather_predictions(local, env)
    metrics = None
    if env.is_main:
        metrics = {"hico": {"qpic": {"default": {"mAP": sum(merged) / len(merged),
                                                 "num_images": len(merged)}}}}
    return broadcast_object(metrics, env)


def fake_config(**train_kw) -> RunConfig:
    train = dict(epochs=2, lr_drop=1, lr=1e-2, lr_backbone=1e-3, global_batch_size=4, micro_batch_size=2,
                 num_workers=0, threads_per_rank=1, checkpoint_every_iters=2)
    train.update(train_kw)
    return RunConfig(dataset_name="fake", dataset=DatasetConfig(format="hico", root="unused"),
                     variant="qpic", method="qpic", seed=42, train=TrainConfig(**train))


def fake_components(n_train: int = 16, n_test: int = 5, dropout: float = 0.0) -> TrainComponents:
    torch.manual_seed(0)
    return TrainComponents(FakeDetector(dropout), FakeCriterion(), FakeDataset(n_train, True),
                           FakeDataset(n_test, False, seed=1), collate, Meta())
