"""``hqm eval-predictions``: a predictions file + a dataset root -> metrics JSON."""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "eval-predictions",
        help="evaluate a predictions file (qpic_postprocess or triplets layout) against ground truth",
        description="Evaluate test-split predictions of a HICO-DET or V-COCO dataset root and write "
        "the metrics JSON (HICO-DET: QPIC and official protocols; V-COCO: official S1/S2 and QPIC's metric).",
    )
    parser.add_argument("predictions", help="predictions .json or .json.gz")
    parser.add_argument("--root", required=True, help="dataset root (annotations/, official/ for V-COCO)")
    parser.add_argument("--format", choices=("hico", "vcoco"), required=True, dest="dataset_format")
    parser.add_argument("--out", required=True, help="metrics JSON to write")
    parser.add_argument("--protocols", nargs="+", choices=("qpic", "official"), default=["qpic", "official"],
                        help="HICO-DET protocols")
    parser.add_argument("--settings", nargs="+", choices=("default", "known_object"),
                        default=["default", "known_object"], help="HICO-DET settings of the official protocol")
    parser.add_argument("--max-hois", type=int, default=100, help="per-image cap of the QPIC protocols")
    parser.add_argument("--no-per-category", action="store_true", help="leave per-category rows out")
    parser.add_argument("--unlisted-images", choices=("error", "no_gt"), default="error",
                        help="HICO-DET: predictions for images the test file does not list are an error, "
                        "or images without ground truth (the file may omit the 112 test images without HOIs)")
    parser.add_argument("--official-pickle", default=None,
                        help="V-COCO: also write the official detections pickle here (.gz = gzip)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hqm.config import EvalConfig
    from hqm.errors import HqmError
    from hqm.evaluation.predictions import read_predictions
    from hqm.evaluation.run import evaluate_dataset, num_verb_classes
    from hqm.io import write_json

    if args.official_pickle and args.dataset_format != "vcoco":
        raise HqmError("--official-pickle is only for V-COCO (--format vcoco)")
    predictions = read_predictions(args.predictions, num_verb_classes(args.dataset_format))
    cfg = EvalConfig(hico_protocols=list(args.protocols), hico_settings=list(args.settings),
                     max_hois=args.max_hois)
    metrics = evaluate_dataset(args.dataset_format, args.root, predictions, cfg,
                               per_category=not args.no_per_category, unlisted_images=args.unlisted_images)
    write_json(args.out, {"format": args.dataset_format, "root": str(args.root),
                          "predictions": str(args.predictions), **metrics})
    if args.official_pickle:
        from pathlib import Path

        from hqm.data.annotations import read_correct_mat
        from hqm.evaluation.vcoco import write_official_pickle

        corre = read_correct_mat(Path(args.root) / "annotations" / "corre_vcoco.npy", num_verb_classes("vcoco"))
        write_official_pickle(args.official_pickle, predictions, corre)
    print(f"wrote {args.out}")
    return 0
