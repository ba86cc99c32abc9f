"""``hqm convert-hico`` / ``hqm convert-vcoco``: official annotations -> PPDM / QPIC files.

``hqm check-dataset`` reads a converted (or generated) root with the rules training uses.
"""

from __future__ import annotations

import argparse
import json


def add_parser(subparsers) -> None:
    hico = subparsers.add_parser(
        "convert-hico",
        help="HICO-DET anno_bbox.mat (+ anno.mat) -> PPDM trainval/test JSON, corre_hico.npy",
        description="Convert the original HICO-DET annotations to the PPDM layout used by QPIC "
        "(evaluation.md §1.4); with --anno also write known_objects_test.json (Known-Object setting).",
    )
    hico.add_argument("--anno-bbox", required=True, help="hico_20160224_det/anno_bbox.mat")
    hico.add_argument("--anno", help="hico_20160224_det/anno.mat (image-level labels)")
    hico.add_argument("--out", required=True, help="output folder (<root>/annotations)")
    hico.add_argument("--clip-boxes", action="store_true", help="clip boxes that leave the image instead of failing")
    hico.add_argument("--images", nargs="+", default=[], metavar="DIR",
                      help="image folders (train2015, test2015) to link into <out>/../images")
    hico.set_defaults(func=run_hico)
    vcoco = subparsers.add_parser(
        "convert-vcoco",
        help="official V-COCO files + COCO 2014 annotations -> QPIC trainval/test JSON, corre_vcoco.npy",
        description="Convert v-coco's data folder (instances_vcoco_all_2014.json, vcoco/vcoco_{trainval,test}.json) "
        "and VSGNet's prior.pickle to QPIC's files (evaluation.md §2.3).",
    )
    vcoco.add_argument("--official-data", required=True, help="v-coco 'data' folder")
    vcoco.add_argument("--prior", required=True, help="prior.pickle")
    vcoco.add_argument("--coco-annotations", help="folder with COCO instances_{train,val}2014.json: build "
                       "instances_vcoco_all_2014.json into --official-data first (when it is missing)")
    vcoco.add_argument("--out", required=True, help="output folder (<root>/annotations)")
    vcoco.add_argument("--images", nargs="+", default=[], metavar="DIR",
                       help="COCO image folders (train2014, val2014) to link into <out>/../images; "
                       "the v-coco repository is linked as <out>/../official as well")
    vcoco.set_defaults(func=run_vcoco)
    check = subparsers.add_parser(
        "check-dataset",
        help="validate a dataset root: annotations, validity matrix and every image, as training reads them",
        description="Read every annotation file of ROOT with the shared parser and the training rules, and "
        "decode every listed image; the first problem is a one-line error naming the file and the entry.",
    )
    check.add_argument("--format", choices=("hico", "vcoco"), required=True)
    check.add_argument("--root", required=True, help="dataset root (annotations/, images/)")
    check.add_argument("--no-images", action="store_true", help="check the annotation files and that the images exist, without decoding them")
    check.set_defaults(func=run_check)


def run_hico(args: argparse.Namespace) -> int:
    from hqm.data.hico_convert import convert_hico

    print(json.dumps(convert_hico(args.anno_bbox, args.anno, args.out, clip_boxes=args.clip_boxes)))
    _link_images(args.out, args.images)
    return 0


def _link_images(out: str, folders: list[str]) -> None:
    """<root>/images/<name> -> each unpacked image folder (the layout of docs/architecture.md)."""
    from pathlib import Path

    from hqm.io import link_folder

    for folder in folders:
        link_folder(Path(out).parent / "images" / Path(folder).name, folder)


def run_vcoco(args: argparse.Namespace) -> int:
    from pathlib import Path

    from hqm.data.vcoco_convert import convert_vcoco, pick_vcoco_instances

    if args.coco_annotations and not (Path(args.official_data) / "instances_vcoco_all_2014.json").is_file():
        pick_vcoco_instances(args.official_data, args.coco_annotations)
    print(json.dumps(convert_vcoco(args.official_data, args.prior, args.out)))
    if args.images:  # a real dataset root: images and the official files the evaluator reads
        from hqm.io import link_folder

        _link_images(args.out, args.images)
        link_folder(Path(args.out).parent / "official", Path(args.official_data).resolve().parent)
    return 0


def run_check(args: argparse.Namespace) -> int:
    from hqm.data.check import check_dataset

    print(json.dumps({"root": args.root, "format": args.format,
                      **check_dataset(args.format, args.root, images=not args.no_images)}))  # fmt: skip
    return 0


run = run_hico  # the module's default entry (cli contract); each sub-parser sets its own func
