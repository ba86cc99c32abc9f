"""Median seconds per training step (forward, loss, backward, AdamW) of a detector config.

Random weights and synthetic inputs; prints one JSON line. Example (the issue's default):
    python bench/train_step.py                       # R50, batch 2, 512x512, 3 pairs/image
    python bench/train_step.py --device cuda --bf16 --image-size 800 --steps 20   # a paper-size GPU step
    python bench/train_step.py --backbone resnet18 --hidden-dim 64 --enc-layers 1 --dec-layers 2 \
        --queries 10 --image-size 128 --steps 10
    python bench/train_step.py --backbone resnet10 --backbone-norm batch --out-stage layer2 \
        --hidden-dim 64 --nheads 4 --enc-layers 2 --dec-layers 2 --ffn-dim 128 --queries 8 \
        --batch 8 --image-size 48 --variant hqm --threads 1 --steps 40   # the CPU demo's step
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import torch

from hqm.config import HardQueryConfig, LossConfig, ModelConfig
from hqm.engine.inference import autocast_context, to_float
from hqm.models.build import build_criterion, build_detector
from hqm.models.criterion import total_loss
from hqm.models.resnet import RESNETS


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="resnet50", choices=tuple(RESNETS))
    parser.add_argument("--backbone-norm", choices=("frozen", "batch"), default="frozen",
                        help="batch = the demo's trainable BatchNorm")
    parser.add_argument("--out-stage", choices=("layer2", "layer3", "layer4"), default="layer4",
                        help="layer2 = the demo's stride-8 map")
    parser.add_argument("--hidden-dim", type=int, default=256)
    parser.add_argument("--nheads", type=int, default=8)
    parser.add_argument("--enc-layers", type=int, default=6)
    parser.add_argument("--dec-layers", type=int, default=6)
    parser.add_argument("--ffn-dim", type=int, default=2048)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--image-size", type=int, default=512)
    parser.add_argument("--pairs", type=int, default=3, help="ground-truth pairs per image")
    parser.add_argument("--steps", type=int, default=5, help="timed steps (after one warm-up step)")
    parser.add_argument("--variant", choices=("qpic", "gbs", "amm", "hqm"), default="qpic")
    parser.add_argument("--threads", type=int, default=0, help="0 = all CPU cores")
    parser.add_argument("--channels-last", action="store_true", help="run the backbone in channels-last")
    parser.add_argument("--plain-optim", action="store_true",
                        help="per-parameter AdamW and clipping loops (the reference's) instead of fused/foreach")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--bf16", action="store_true",
                        help="bf16 autocast of the forward pass as training does (CUDA only; losses in fp32)")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def synthetic_batch(batch: int, size: int, pairs: int, num_obj: int, num_verb: int, gen: torch.Generator):
    images = torch.randn(batch, 3, size, size, generator=gen)
    mask = torch.zeros(batch, size, size, dtype=torch.bool)
    targets = []
    for _ in range(batch):
        centres = torch.rand(pairs, 4, generator=gen) * 0.5 + 0.25
        centres[:, 2:] = centres[:, 2:] * 0.4
        verbs = (torch.rand(pairs, num_verb, generator=gen) < 2.0 / num_verb).float()
        targets.append({"obj_labels": torch.randint(num_obj, (pairs,), generator=gen), "verb_labels": verbs,
                        "sub_boxes": centres, "obj_boxes": centres.flip(0).clone(),
                        "aug_size": torch.tensor([size, size]), "orig_size": torch.tensor([size, size])})
    return images, mask, targets


def main(argv=None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads or os.cpu_count() or 1)
    torch.manual_seed(args.seed)
    num_obj, num_verb = 80, 117
    model_cfg = ModelConfig(backbone=args.backbone, hidden_dim=args.hidden_dim, nheads=args.nheads,
                            enc_layers=args.enc_layers, dec_layers=args.dec_layers, dim_feedforward=args.ffn_dim,
                            num_queries=args.queries, backbone_norm=args.backbone_norm,
                            backbone_out_stage=args.out_stage)
    method = "hqm" if args.variant == "hqm" else args.variant
    hard = HardQueryConfig()
    device = torch.device(args.device)
    model = build_detector(model_cfg, method, hard, num_obj, num_verb, args.seed).train().to(device)
    if args.channels_last:
        model.backbone[0].channels_last = True
        model.backbone[0].to(memory_format=torch.channels_last)
    criterion = build_criterion(LossConfig(), method, hard, num_obj, num_verb, dec_layers=args.dec_layers).to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    fast = not args.plain_optim  # same math, fewer kernel launches
    optimizer = torch.optim.AdamW(params, lr=1e-4, weight_decay=1e-4, fused=fast or None)
    images, mask, targets = synthetic_batch(args.batch, args.image_size, args.pairs, num_obj, num_verb,
                                            torch.Generator().manual_seed(args.seed))
    images, mask = images.to(device), mask.to(device)
    targets = [{k: v.to(device) for k, v in t.items()} for t in targets]
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    stream = {"qpic": None, "gbs": "gbs", "amm": "amm"}
    times = []
    for step in range(args.steps + 1):
        hard_stream = stream.get(args.variant, "gbs" if step % 2 == 0 else "amm")
        sync()
        start = time.perf_counter()
        with autocast_context(device, args.bf16):
            outputs = model(images, mask, targets=targets, hard_stream=hard_stream)
        loss = total_loss(criterion(to_float(outputs), targets), criterion.weight_dict)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 0.1, foreach=fast or None)
        optimizer.step()
        sync()
        if step:  # the first step warms up allocators and kernels
            times.append(time.perf_counter() - start)
    print(json.dumps({
        "bench": "train_step", "variant": args.variant, "backbone": args.backbone, "hidden_dim": args.hidden_dim,
        "backbone_norm": args.backbone_norm, "out_stage": args.out_stage,
        "enc_layers": args.enc_layers, "dec_layers": args.dec_layers, "queries": args.queries,
        "batch": args.batch, "image_size": args.image_size, "pairs": args.pairs,
        "threads": torch.get_num_threads(), "channels_last": args.channels_last, "fused_optim": fast, "steps": args.steps,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu", "bf16": args.bf16,
        "median_s": round(statistics.median(times), 4), "min_s": round(min(times), 4),
        "torch": torch.__version__,
    }))


if __name__ == "__main__":
    main()
