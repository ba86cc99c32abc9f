"""The embedded synthetic HOI dataset: procedurally drawn people and objects, no download.

Each image shows 1..``max_people`` stick figures and 1..``max_objects`` objects on a plain
background. A person's pose encodes the verb and the contact with the object makes the pair
visible in the pixels:

=========  ===========================================  ============  =======================
pose       drawing                                      HICO verbs    V-COCO classes
=========  ===========================================  ============  =======================
hold       one arm stretched sideways, object at hand   hold          hold_obj
carry      both arms up, object above the head          carry, hold   carry_obj, hold_obj
kick       one leg stretched sideways, ball at foot     kick          kick_obj
ride       sitting on top of the object                 ride, sit_on  ride_instr, sit_instr
stand      arms down, no object (V-COCO only labelled)  --            stand (agent only)
run        legs and arms wide (V-COCO only labelled)    --            run (agent only)
=========  ===========================================  ============  =======================

HICO verbs are kept only where the (verb, object) pair is one of the 600 real categories; the
root's ``corre_hico.npy`` allows exactly the categories drawn. Objects that nobody touches are
distractors. A few (pose, object) combinations are capped at ``rare_max_train`` training
interactions: the rare split. With ``hard_fraction`` > 0 some scenes get a hard case (occlusion,
truncation, a near-miss contact: :mod:`hqm.data.synthetic.hard`); docs/synthetic.md lists them.

Output layouts are those of ``docs/architecture.md``; for V-COCO the official layout is written
first and then converted by :mod:`hqm.data.vcoco_convert`. Everything is drawn from one seed with
NumPy's PCG64, so outputs are byte-identical for a given seed and configuration.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import asdict
from pathlib import Path

from hqm.config import SyntheticConfig
from hqm.data.layout import dataset_layout
from hqm.data.synthetic.catalogue import RARE_COMBINATIONS, hico_verbs_for
from hqm.data.synthetic.hard import HARD_CASES, case_weights
from hqm.data.synthetic.hico import write_hico
from hqm.data.synthetic.vcoco import write_vcoco_official
from hqm.data.vcoco_convert import convert_vcoco
from hqm.errors import HqmError
from hqm.io import make_temp_dir, write_json

MARKER = ".hqm-synthetic.json"  # written into every root this tool makes; only such roots are replaced

__all__ = ["HARD_CASES", "MARKER", "RARE_COMBINATIONS", "check_config", "hico_verbs_for", "make_synthetic"]


def check_config(cfg: SyntheticConfig) -> None:
    """One-line HqmError for a setting the generator cannot draw."""
    for name in ("num_train", "num_test", "max_people", "max_objects"):
        if getattr(cfg, name) < 1:
            raise HqmError(f"synthetic.{name}: must be at least 1, got {getattr(cfg, name)}")
    if cfg.layout not in ("slots", "random"):
        raise HqmError(f"synthetic.layout: must be 'slots' or 'random', got {cfg.layout!r}")
    if cfg.background not in ("plain", "ramp"):
        raise HqmError(f"synthetic.background: must be 'plain' or 'ramp', got {cfg.background!r}")
    if cfg.image_size < 96:
        raise HqmError(f"synthetic.image_size: must be at least 96 pixels, got {cfg.image_size}")
    if not 0.0 <= cfg.hard_fraction <= 1.0:  # also refuses NaN
        raise HqmError(f"synthetic.hard_fraction: must be within [0, 1], got {cfg.hard_fraction}")
    weights = case_weights(cfg)
    for case, weight in weights.items():
        if not weight >= 0.0 or weight == float("inf"):
            raise HqmError(f"synthetic.hard_{case}: must be a finite weight >= 0, got {weight}")
    if cfg.hard_fraction > 0 and not sum(weights.values()) > 0:
        raise HqmError("synthetic.hard_fraction > 0 but every synthetic.hard_<case> weight is 0")


def _check_replaceable(out_root: Path) -> None:
    """Refuse to replace anything but an empty folder or a root this tool wrote (its marker)."""
    if not out_root.exists() and not out_root.is_symlink():
        return
    if out_root.is_dir() and not out_root.is_symlink():
        if (out_root / MARKER).is_file() or not any(out_root.iterdir()):
            return
    raise HqmError(f"{out_root}: exists and was not written by hqm make-synthetic (no {MARKER}); "
                   "remove it yourself or choose another --out")


def make_synthetic(cfg: SyntheticConfig, fmt: str, out_root: str | os.PathLike, hard_test: bool = False) -> dict:
    """Generate the dataset into ``out_root`` (replaced atomically); returns per-split counts.

    ``hard_test``: the same training split, but a test split of other scenes that are all hard
    (``cfg.hard_cases``), so a model trained on the plain root can be evaluated on hard cases.

    ``out_root`` may be absent, empty, or a root an earlier run of this function wrote; anything
    else is refused before a single file is written.
    """
    if fmt not in ("hico", "vcoco"):
        raise HqmError(f"make-synthetic: unknown format '{fmt}' (hico or vcoco)")
    check_config(cfg)
    if hard_test and not sum(case_weights(cfg).values()) > 0:
        raise HqmError("make-synthetic --hard-test: every synthetic.hard_<case> weight is 0, nothing hard to draw")
    out_root = Path(out_root)
    _check_replaceable(out_root)
    out_root.parent.mkdir(parents=True, exist_ok=True)
    tmp = make_temp_dir(out_root)
    try:
        if fmt == "hico":
            summary = write_hico(tmp, cfg, hard_test)
        else:
            summary = write_vcoco_official(tmp, cfg, hard_test)
            layout = dataset_layout("vcoco", tmp)
            convert_vcoco(layout.official / "data", layout.official / "prior.pickle", layout.correct_mat.parent)
        marker = {"tool": "hqm make-synthetic", "format": fmt, "hard_test": hard_test, "config": asdict(cfg)}
        write_json(tmp / MARKER, marker)
        _check_replaceable(out_root)  # again: someone may have filled the folder meanwhile
        if out_root.exists():
            shutil.rmtree(out_root)
        os.replace(tmp, out_root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return summary
