"""State dicts: DETR -> QPIC/HQM conversion, head layouts, strict-load checks (method.md §7).

Pure functions on dicts of tensors: no file I/O and nothing from ``hqm.data`` (the caller passes
the DETR row map in). Files are read and written by :mod:`hqm.engine.checkpoint`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
from torch import Tensor, nn

from hqm.errors import HqmError

HEAD_PREFIXES = ("obj_class_embed.", "verb_class_embed.", "sub_bbox_embed.", "obj_bbox_embed.")
HQM_HEAD_PARENT = "transformer.decoder."
GBS_ENCODER_PREFIX = "query_embed_sp."
# keys a converted DETR file does not provide; they keep their fresh initialisation
INIT_MISSING_PREFIXES = ("verb_class_embed.", HQM_HEAD_PARENT + "verb_class_embed.", GBS_ENCODER_PREFIX)


# ---------------------------------------------------------------------------------------------
# Conversion and layouts
# ---------------------------------------------------------------------------------------------


def convert_detr_to_qpic(detr: dict[str, Tensor], object_rows: Sequence[int], insert_missing_row: bool = False,
                         convert_seed: int = 0) -> dict[str, Tensor]:
    """DETR COCO state dict -> QPIC initial weights (QPIC layout, no ``verb_class_embed``).

    Object head rows = DETR rows ``object_rows`` (the 80 valid COCO ids, then the no-object row 91:
    81 rows for HICO-DET). ``insert_missing_row`` (V-COCO) inserts a seeded "missing object" row
    before the last row (82 rows): weight [1, d] and bias [1] ~ U(-1/sqrt(d), 1/sqrt(d)) from a
    generator seeded with ``convert_seed``, weight drawn first.
    """
    required = ("class_embed.weight", "class_embed.bias", "bbox_embed.layers.0.weight")
    missing = [k for k in required if k not in detr]
    if missing:
        raise HqmError(f"DETR state dict: missing key(s) {', '.join(missing)}")
    out = {k: v.clone() for k, v in detr.items() if not k.startswith(("class_embed.", "bbox_embed."))}
    for key, value in detr.items():
        if key.startswith("bbox_embed."):
            suffix = key[len("bbox_embed."):]
            out["sub_bbox_embed." + suffix] = value.clone()
            out["obj_bbox_embed." + suffix] = value.clone()
    rows = torch.tensor(list(object_rows))
    weight = detr["class_embed.weight"][rows].clone()
    bias = detr["class_embed.bias"][rows].clone()
    if insert_missing_row:
        hidden = weight.shape[1]
        bound = 1.0 / hidden**0.5
        generator = torch.Generator().manual_seed(convert_seed)
        new_w = torch.empty(1, hidden).uniform_(-bound, bound, generator=generator).to(weight.dtype)
        new_b = torch.empty(1).uniform_(-bound, bound, generator=generator).to(bias.dtype)
        weight = torch.cat([weight[:-1], new_w, weight[-1:]])
        bias = torch.cat([bias[:-1], new_b, bias[-1:]])
    out["obj_class_embed.weight"] = weight
    out["obj_class_embed.bias"] = bias
    return out


def qpic_to_hqm_layout(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Move the 16 head tensors under ``transformer.decoder.`` (HQM layout, §7.5)."""
    return {(HQM_HEAD_PARENT + k if k.startswith(HEAD_PREFIXES) else k): v for k, v in state.items()}


def hqm_to_qpic_layout(state: dict[str, Tensor], keep_gbs_encoder: bool = False) -> dict[str, Tensor]:
    """Strip ``transformer.decoder.`` from the head keys; drop ``query_embed_sp`` unless kept."""
    out = {}
    for key, value in state.items():
        if key.startswith(GBS_ENCODER_PREFIX) and not keep_gbs_encoder:
            continue
        if key.startswith(HQM_HEAD_PARENT) and key[len(HQM_HEAD_PARENT):].startswith(HEAD_PREFIXES):
            key = key[len(HQM_HEAD_PARENT):]
        out[key] = value
    return out


def _has_heads(keys: Iterable[str], parent: str) -> bool:
    return any(k.startswith(tuple(parent + p for p in HEAD_PREFIXES)) for k in keys)


def adapt_layout(state: dict[str, Tensor], model_keys: Iterable[str]) -> dict[str, Tensor]:
    """Rename head keys between the QPIC and HQM layouts so that they follow the model's."""
    model_keys = set(model_keys)
    if _has_heads(state, HQM_HEAD_PARENT) and _has_heads(model_keys, ""):
        return hqm_to_qpic_layout(state, keep_gbs_encoder=any(k.startswith(GBS_ENCODER_PREFIX) for k in model_keys))
    if _has_heads(state, "") and _has_heads(model_keys, HQM_HEAD_PARENT):
        return qpic_to_hqm_layout(state)
    return state


# ---------------------------------------------------------------------------------------------
# Loading checks (on dicts; reading the files is hqm.engine.checkpoint's job)
# ---------------------------------------------------------------------------------------------


def state_dict_of(ckpt: dict, source: str) -> dict[str, Tensor]:
    """The state dict inside a container (key ``model``) or the container itself if it is one."""
    state = ckpt.get("model", ckpt)
    if not isinstance(state, dict) or not state or not all(isinstance(v, Tensor) for v in state.values()):
        raise HqmError(f"{source}: no state dict found (expected key 'model' holding tensors)")
    return state


def load_state_dict_strict(model: nn.Module, state: dict[str, Tensor], source: str,
                           allow_missing_prefixes: tuple[str, ...] = ()) -> list[str]:
    """Load strictly; any unexpected key, shape mismatch, or missing key not covered by
    ``allow_missing_prefixes`` is an HqmError listing the offenders. Returns the allowed missing keys."""
    expected = model.state_dict()
    missing = sorted(k for k in expected if k not in state)
    allowed = [k for k in missing if k.startswith(allow_missing_prefixes)]
    missing = [k for k in missing if not k.startswith(allow_missing_prefixes)]
    unexpected = sorted(k for k in state if k not in expected)
    mismatched = sorted(
        f"{k} {list(state[k].shape)} vs model {list(expected[k].shape)}"
        for k in state if k in expected and state[k].shape != expected[k].shape
    )
    problems = []
    for label, items in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", mismatched)):
        if items:
            shown = ", ".join(items[:8]) + (f", ... ({len(items)} in all)" if len(items) > 8 else "")
            problems.append(f"{label}: {shown}")
    if problems:
        raise HqmError(f"{source}: state dict does not match the model; " + "; ".join(problems))
    model.load_state_dict(state, strict=False)  # strictness checked above, allowed gaps stay fresh
    return allowed
