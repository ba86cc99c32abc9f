"""Random HICO-DET cases: the vectorised evaluator equals the loop-structured peer of bench/eval_speed.py.

The peer follows the reference evaluator's per-image loops (evaluation.md §1.7) and shares no code
with ``hqm.evaluation.hico``; both must give the same mAP to the last bits.
"""

import importlib.util
from pathlib import Path

import pytest

from hqm.evaluation.hico import HicoGroundTruth, evaluate_hico

BENCH = Path(__file__).resolve().parents[2] / "bench" / "eval_speed.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("eval_speed", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_vectorised_equals_loop_peer(bench, seed):
    gt, preds = bench.build_case(25, seed=seed)
    result = evaluate_hico(gt, preds)
    assert result["mAP"] == pytest.approx(bench.peer_loop_reference(gt, preds), abs=1e-12)
    assert 0 < result["mAP"] < 1  # a non-trivial case: some TPs, some FPs
    # the cap matters on these images: a smaller cap changes the result the same way in both
    small = evaluate_hico(gt, preds, max_hois_per_image=30)
    assert small["mAP"] == pytest.approx(bench.peer_loop_reference(gt, preds, max_hois=30), abs=1e-12)


def test_image_order_of_predictions_does_not_matter(bench):
    gt, preds = bench.build_case(20, seed=4)
    forward = evaluate_hico(gt, preds)["mAP"]
    assert evaluate_hico(HicoGroundTruth(gt.test, gt.train_counts, gt.correct_mat), preds[::-1])["mAP"] == forward
