"""``hqm check-dataset``: read a dataset root exactly as training and evaluation will (torch-free).

Every annotation file goes through the shared parser with the training rules, the validity matrix
and the Known-Object file are read, and every listed image is decoded, so a bad root fails in
seconds with the one-line error training would otherwise raise after minutes (or in a worker).
"""

from __future__ import annotations

from pathlib import Path

from hqm.data.annotations import read_correct_mat, read_known_objects, read_split
from hqm.data.images import check_listed_images_exist, load_rgb
from hqm.data.layout import SPLITS, dataset_layout
from hqm.errors import HqmError


def check_dataset(fmt: str, root: str | Path, images: bool = True) -> dict:
    """Validate the dataset ``root`` of format ``fmt``; returns per-split image and HOI counts."""
    layout = dataset_layout(fmt, root)
    if not layout.root.is_dir():
        raise HqmError(f"{layout.root}: dataset root not found")
    if not layout.correct_mat.is_file():
        raise HqmError(f"{layout.correct_mat}: file not found (convert or generate the dataset first)")
    corre = read_correct_mat(layout.correct_mat, layout.spec.num_verb_classes)
    if layout.known_objects is not None and layout.known_objects.is_file():
        read_known_objects(layout.known_objects)
    summary = {}
    for split in SPLITS:
        records = read_split(layout, split, corre)
        folder = layout.images(split)
        check_listed_images_exist(folder, [r.file_name for r in records], layout.annotations(split))
        if images:
            for rec in records:
                load_rgb(folder / rec.file_name, layout.annotations(split)).close()
        summary[split] = {"images": len(records), "hois": int(sum(len(r.hois) for r in records))}
    return summary
