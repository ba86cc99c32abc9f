"""The HQM detector and criterion: QPIC plus a training-only hard-positive stream (method.md §8).

* :class:`HQMDetector` is a :class:`~hqm.models.qpic.QPIC` with the GBS query encoder
  ``query_embed_sp`` (state dict = QPIC keys + 4) and a dedicated random generator. Given
  ``targets`` and ``hard_stream`` it runs, after the learnable pass over the same encoder memory,
  one extra decoder pass: GBS (shifted GT boxes -> positional queries, zero content, padding mask)
  or AMM (copies of the learnable queries with top-rank cross-attention masking). Without them it
  is exactly QPIC.
* :class:`HQMCriterion` adds the hard stream's terms to QPIC's (``gbs_*`` / ``amm_*`` keys,
  weighted ``hard.loss_weight`` x the QPIC weight).
* :class:`~hqm.models.schedule.HardStreamSchedule` tells the engine which stream a step uses.

The factory functions live in :mod:`hqm.models.build`, which imports this module (not the reverse).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from hqm.config import HardQueryConfig
from hqm.errors import HqmError
from hqm.methods import METHODS
from hqm.models.amm import build_amm_bias
from hqm.models.backbone import Backbone
from hqm.models.criterion import SetCriterionHOI, local_num_interactions
from hqm.models.gbs import SpatialQueryEncoder, pack_pairs, shift_pairs, spatial_vector
from hqm.models.hard_losses import hard_stream_losses
from hqm.models.qpic import QPIC
from hqm.models.transformer import Transformer

__all__ = ["HQMDetector", "HQMCriterion", "HARD_STREAMS"]

# Every hard stream some registered method trains, in registry order: ("gbs", "amm").
HARD_STREAMS: tuple[str, ...] = tuple(dict.fromkeys(s for m in METHODS.values() for s in m.streams))


class HQMDetector(QPIC):
    """QPIC + GBS/AMM hard-positive streams (training only).

    ``forward(images [B,3,H,W], mask [B,H,W], targets=None, hard_stream=None)`` returns QPIC's
    outputs; with ``targets`` and ``hard_stream`` in {"gbs", "amm"} it adds
    ``hard_stream`` (the name), ``hard_outputs`` (same four keys + ``aux_outputs``; GBS:
    ``[B, N_max, ...]`` with N_max = max #pairs, AMM: ``[B, Nq, ...]``) and, for GBS,
    ``gbs_shifted`` = (sub, obj) ``BoolTensor[B, N_max]`` of the boxes that were shifted.

    ``seed`` and ``rank`` (the caller's distributed rank, 0 outside torchrun) seed the hard-stream
    generator; the detector never queries the process group itself.
    """

    def __init__(self, backbone: Backbone, transformer: Transformer, num_obj_classes: int,
                 num_verb_classes: int, num_queries: int, aux_loss: bool, hard: HardQueryConfig,
                 seed: int = 0, rank: int = 0):
        if not aux_loss:
            raise HqmError("model.aux_loss: false is not supported by the HQM detector "
                           "(hard queries are built and supervised per decoder layer; method.md §8.1)")
        super().__init__(backbone, transformer, num_obj_classes, num_verb_classes, num_queries, aux_loss)
        # Upstream HQM keeps the heads inside its transformer, whose init gives every matrix
        # xavier_uniform_ (biases keep Linear defaults); heads not loaded from a checkpoint (the
        # verb head at training start) must start from that distribution (method.md §7.5).
        for head in (self.obj_class_embed, self.verb_class_embed, self.sub_bbox_embed, self.obj_bbox_embed):
            for name, param in head.named_parameters():
                if name.endswith("weight"):
                    nn.init.xavier_uniform_(param)
        self.query_embed_sp = SpatialQueryEncoder(transformer.d_model)  # outside: Linear defaults
        self.hard = hard
        self.generator = torch.Generator()
        self.seed_hard_stream(seed, rank)

    # -- random state --------------------------------------------------------------------------

    def seed_hard_stream(self, seed: int, rank: int = 0) -> None:
        """Seed the GBS/AMM generator; ranks get distinct streams (upstream: 42 + rank)."""
        self.generator.manual_seed(int(seed) * 1_000_003 + int(rank))

    def rng_state(self) -> dict:
        return {"hard_stream_generator": self.generator.get_state()}

    def load_rng_state(self, state: dict) -> None:
        self.generator.set_state(state["hard_stream_generator"])

    # -- passes --------------------------------------------------------------------------------

    def _gbs_pass(self, encoded, targets: list[dict]) -> dict | None:
        sub, obj, pair_mask, sizes = pack_pairs(targets)
        if pair_mask.shape[1] == 0:
            return None  # no pair in the whole batch: nothing to supervise
        with torch.no_grad():
            sub, obj, sub_shifted, obj_shifted = shift_pairs(sub, obj, pair_mask, sizes, self.hard.gbs, self.generator)
        query_pos = self.query_embed_sp(spatial_vector(sub, obj)).transpose(0, 1)  # [N_max, B, d]
        # Padding slots are hidden from self-attention; an image with no pair gets an all-False
        # row (no softmax over -inf only); its outputs are never supervised.
        padding = ~pair_mask & pair_mask.any(1, keepdim=True)
        hs, _ = self.decode(encoded, query_pos, tgt_key_padding_mask=padding)
        out = self.predict(hs)
        out["gbs_shifted"] = (sub_shifted, obj_shifted)
        return out

    def _amm_pass(self, encoded, query_pos: Tensor, recorded: list[Tensor]) -> dict:
        bias = build_amm_bias(recorded, self.hard.amm, self.generator)
        hs, _ = self.decode(encoded, query_pos, cross_attn_bias=bias,
                            apply_final_norm=self.hard.amm.apply_decoder_norm)
        return self.predict(hs)

    def forward(self, images: Tensor, mask: Tensor, targets: list[dict] | None = None,
                hard_stream: str | None = None) -> dict:
        if hard_stream is not None and hard_stream not in HARD_STREAMS:
            raise HqmError(f"hard stream: unknown stream {hard_stream!r} (one of {', '.join(HARD_STREAMS)} or None)")
        use_hard = hard_stream is not None and targets is not None
        encoded = self.encode(images, mask)
        query_pos = self.query_embed.weight.unsqueeze(1).expand(-1, images.shape[0], -1)
        hs, recorded = self.decode(encoded, query_pos, record_cross_logits=use_hard and hard_stream == "amm")
        out = self.predict(hs)
        if not use_hard:
            return out
        if hard_stream == "gbs":
            hard = self._gbs_pass(encoded, targets)
            if hard is None:
                return out
            out["gbs_shifted"] = hard.pop("gbs_shifted")
        else:
            hard = self._amm_pass(encoded, query_pos, recorded)
        out["hard_stream"] = hard_stream
        out["hard_outputs"] = hard
        return out


class HQMCriterion(nn.Module):
    """QPIC's set criterion plus the hard stream's per-layer terms (unweighted; see ``weight_dict``).

    ``streams``: the hard streams the method trains (``hqm.methods``); each gets QPIC's weights
    times ``loss_weight`` under its ``{stream}_`` prefix.
    """

    def __init__(self, base: SetCriterionHOI, loss_weight: float, streams: tuple[str, ...] = HARD_STREAMS):
        super().__init__()
        self.base = base
        self.loss_weight = loss_weight
        self.weight_dict = dict(base.weight_dict)
        for stream in streams:
            self.weight_dict.update({f"{stream}_{k}": w * loss_weight for k, w in base.weight_dict.items()})

    @property
    def last_indices(self):
        return self.base.last_indices

    def forward(self, outputs: dict, targets: list[dict], num_interactions: float | None = None) -> dict[str, Tensor]:
        if num_interactions is None:
            num_interactions = local_num_interactions(targets)
        losses = self.base(outputs, targets, num_interactions)
        stream = outputs.get("hard_stream")
        if stream is not None:
            losses.update(hard_stream_losses(
                stream, outputs["hard_outputs"], targets, self.base.last_indices, num_interactions,
                self.base.verb_loss_type, self.base.focal_clamp,
            ))
        return losses

