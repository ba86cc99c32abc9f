"""``hqm eval-predictions``: a predictions file + a dataset root -> metrics JSON."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "eval-predictions",
        help="evaluate a predictions file (qpic_postprocess or triplets layout) against ground truth",
        description="Evaluate test-split predictions of a HICO-DET or V-COCO dataset root and write "
        "the metrics JSON (HICO-DET: QPIC and official protocols; V-COCO: official S1/S2 and QPIC's metric). "
        "Formats and protocols: docs/evaluation.md.",
    )
    parser.add_argument("predictions", help="predictions .json or .json.gz")
    parser.add_argument("--root", required=True, help="dataset root (annotations/, official/ for V-COCO)")
    parser.add_argument("--format", choices=("hico", "vcoco"), required=True, dest="dataset_format")
    parser.add_argument("--out", required=True, help="metrics JSON to write (not one of the inputs)")
    parser.add_argument("--protocols", nargs="+", choices=("qpic", "official"), default=["qpic", "official"],
                        help="HICO-DET protocols")
    parser.add_argument("--settings", nargs="+", choices=("default", "known_object"),
                        default=["default", "known_object"], help="HICO-DET settings of the official protocol")
    parser.add_argument("--max-hois", type=int, default=100, help="per-image cap of the QPIC protocols (>= 1)")
    parser.add_argument("--category-scope", choices=("all", "dataset"), default="all",
                        help="HICO-DET: average over the published categories (all) or only over those the "
                        "dataset's corre_hico.npy allows (dataset); docs/evaluation.md §1.10")
    parser.add_argument("--no-per-category", action="store_true", help="leave per-category rows out")
    parser.add_argument("--unlisted-images", choices=("error", "no_gt"), default="error",
                        help="HICO-DET: predictions for images the test file does not list are an error, "
                        "or images without ground truth (the file may omit the 112 test images without HOIs)")
    parser.add_argument("--official-pickle", default=None,
                        help="V-COCO: also write the official detections pickle here (.gz = gzip)")
    parser.set_defaults(func=run)


def _clash(path: Path, inputs: list[Path], input_dirs: list[Path]) -> str | None:
    """Why writing ``path`` would touch an input (the same file, or a file in an input folder), or None."""
    target = path.resolve()
    for item in inputs:
        if target == item.resolve() or (path.exists() and item.exists() and path.samefile(item)):
            return f"would overwrite the input {item}"
    for folder in input_dirs:
        if folder.is_dir() and target.is_relative_to(folder.resolve()):
            return f"lies in the input folder {folder}"
    return None


def _check_outputs(args: argparse.Namespace) -> None:
    """Refuse outputs that are inputs (or lie in an input folder), directories, or each other."""
    from hqm.errors import HqmError

    root = Path(args.root)
    inputs, input_dirs = [Path(args.predictions)], [root / "annotations", root / "official"]
    outputs = [("--out", Path(args.out))]
    if args.official_pickle:
        outputs.append(("--official-pickle", Path(args.official_pickle)))
        if Path(args.official_pickle).resolve() == Path(args.out).resolve():
            raise HqmError(f"--official-pickle {args.official_pickle}: the same file as --out")
    for flag, path in outputs:
        clash = _clash(path, inputs, input_dirs)
        if clash is not None:
            raise HqmError(f"{flag} {path}: {clash}; write the output elsewhere")
        if path.is_dir():
            raise HqmError(f"{flag} {path}: is a directory, expected a file name")
        blocker = next((p for p in path.parents if p.exists()), None)
        if blocker is not None and not blocker.is_dir():
            raise HqmError(f"{flag} {path}: {blocker} is a file, not a folder")


def run(args: argparse.Namespace) -> int:
    from hqm.config import EvalConfig
    from hqm.errors import HqmError
    from hqm.evaluation.predictions import read_predictions
    from hqm.evaluation.run import evaluate_dataset, num_verb_classes
    from hqm.io import write_json

    if args.official_pickle and args.dataset_format != "vcoco":
        raise HqmError("--official-pickle is only for V-COCO (--format vcoco)")
    if args.max_hois < 1:
        raise HqmError(f"--max-hois {args.max_hois}: must be at least 1 (the per-image cap of the QPIC protocols)")
    _check_outputs(args)
    predictions = read_predictions(args.predictions, num_verb_classes(args.dataset_format))
    cfg = EvalConfig(hico_protocols=list(args.protocols), hico_settings=list(args.settings),
                     max_hois=args.max_hois, category_scope=args.category_scope)
    metrics = evaluate_dataset(args.dataset_format, args.root, predictions, cfg, per_category=not args.no_per_category,
                               unlisted_images=args.unlisted_images, source=str(args.predictions))
    if args.official_pickle:  # first, so that a failure leaves no metrics file behind
        from hqm.data.annotations import read_correct_mat
        from hqm.evaluation.vcoco import write_official_pickle

        corre = read_correct_mat(Path(args.root) / "annotations" / "corre_vcoco.npy", num_verb_classes("vcoco"))
        write_official_pickle(args.official_pickle, predictions, corre)
    try:
        write_json(args.out, {"format": args.dataset_format, "root": str(args.root),
                              "predictions": str(args.predictions), **metrics})
    except BaseException:
        if args.official_pickle:
            Path(args.official_pickle).unlink(missing_ok=True)
        raise
    print(f"wrote {args.out}")
    return 0
