"""train.zero_grad: with "zeros" (torch 1.5, as published) the GBS query encoder, unused on an AMM
step, still gets AdamW's moment and weight-decay update; with "none" it is skipped."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
import real_setup  # noqa: E402


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return real_setup.make_dataset(tmp_path_factory.mktemp("data") / "synthetic_hico")


def moved(snaps) -> dict[str, bool]:
    """Per encoder parameter: did the AMM step change its weight / exp_avg / exp_avg_sq / step?"""
    gbs, amm = snaps
    out = {}
    for name in gbs:
        for key in ("weight", "exp_avg", "exp_avg_sq", "step"):
            out[f"{name}.{key}"] = not torch.equal(gbs[name][key], amm[name][key])
    return out


def test_unused_gbs_encoder_steps_on_amm_steps_with_zeros_only(root, tmp_path):
    results = {}
    for mode in ("zeros", "none"):
        real_setup.gbs_then_amm(0, 1, str(root), str(tmp_path / f"{mode}.pt"), mode, 0)
        results[mode] = moved(torch.load(tmp_path / f"{mode}.pt", weights_only=True))
    assert results["zeros"] and all(results["zeros"].values()), results["zeros"]
    assert not any(results["none"].values()), results["none"]  # the encoder really was unused


@pytest.mark.slow
def test_unused_gbs_encoder_steps_under_two_gloo_ranks(root, tmp_path):
    port = 29500 + (os.getpid() + 7) % 2000
    torch.multiprocessing.spawn(real_setup.gbs_then_amm, args=(2, str(root), str(tmp_path / "ddp.pt"), "zeros", port),
                                nprocs=2, join=True)
    result = moved(torch.load(tmp_path / "ddp.pt", weights_only=True))
    assert result and all(result.values()), result
