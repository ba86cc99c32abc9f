"""Speed and peak memory of the HICO-DET evaluators on a deterministic full-scale case.

Builds (in memory, seed 0) a HICO-DET-sized test set: 9,658 images, GT drawn over all 600 HOI
categories (~33k HOIs, person / object boxes repeated per HOI as in test_hico.json), 100 triplets
per image (jittered GT pairs and random boxes), and a training count per category giving 138 rare
categories. Prints one JSON line per measurement:

* ``hqm`` -- this project's evaluator, per protocol / setting: seconds (best of ``--repeat``) and
  the tracemalloc peak of one evaluation call (inputs excluded) plus the process max RSS;
* the same predictions as QPIC post-process outputs (100 queries x 117 verbs per image) on
  ``--qpic-layout-images`` images, time extrapolated to the full set;
* a V-COCO-sized official role / agent evaluation (4,946 images, 494,600 detections);
* ``peer_loop_reference`` -- a peer written for this benchmark that follows the loop structure of
  QPIC's published evaluator (evaluation.md §1.7: per-image Python loops over candidates, GT boxes
  and GT HOIs; per-category AP). It is run on ``--peer-images`` images and its time extrapolated
  linearly to the full set (its cost is per image); the ratio is printed.

Usage: ``python bench/eval_speed.py [--images 9658] [--peer-images 600] [--repeat 2]``
"""

from __future__ import annotations

import argparse
import json
import resource
import time
import tracemalloc
from collections import defaultdict

import numpy as np

from hqm.data.annotations import HoiImageAnnotation
from hqm.data.classes import hico_hoi_categories, hico_validity_matrix
from hqm.evaluation.hico import HicoGroundTruth, evaluate_hico
from hqm.evaluation.predictions import ImagePrediction
from hqm.evaluation.vcoco import VcocoDetections, VcocoOfficialGT, evaluate_vcoco_detections

TRIPLETS_PER_IMAGE = 100


def _boxes(rng: np.random.Generator, n: int) -> np.ndarray:
    xy = rng.uniform(0, 480, (n, 2))
    wh = rng.uniform(20, 300, (n, 2))
    return np.round(np.concatenate([xy, np.minimum(xy + wh, 639)], 1))


def build_case(num_images: int, seed: int = 0) -> tuple[HicoGroundTruth, list[ImagePrediction]]:
    """Deterministic GT + predictions of HICO-DET size."""
    rng = np.random.default_rng(seed)
    cats = hico_hoi_categories()
    obj_of = np.array([c.object_index for c in cats])
    verb_of = np.array([c.verb_index for c in cats])
    popularity = 1.0 / np.arange(1, 601) ** 0.8
    popularity = rng.permutation(popularity / popularity.sum())
    test, preds = [], []
    for i in range(num_images):
        name = f"HICO_test2015_{i + 1:08d}.jpg"
        n_hoi = 0 if i % 86 == 85 else 1 + rng.poisson(2.5)  # ~112 images without HOIs
        cat = rng.choice(600, n_hoi, p=popularity)
        person, obj = _boxes(rng, n_hoi), _boxes(rng, n_hoi)
        boxes = np.stack([person, obj], 1).reshape(-1, 4)
        labels = np.stack([np.zeros(n_hoi, np.int64), obj_of[cat]], 1).reshape(-1)
        hois = np.stack([np.arange(n_hoi) * 2, np.arange(n_hoi) * 2 + 1, verb_of[cat]], 1).reshape(-1, 3)
        test.append(HoiImageAnnotation(name, boxes, labels, hois))
        # predictions: jittered GT pairs (right or random category), then random pairs
        n_near = min(5 * n_hoi, 60)
        pick = rng.integers(0, max(n_hoi, 1), n_near)
        jitter = lambda b: b + rng.normal(0, 8, b.shape)  # noqa: E731
        near_cat = np.where(rng.random(n_near) < 0.6, cat[pick] if n_hoi else 0, rng.integers(0, 600, n_near))
        n_far = TRIPLETS_PER_IMAGE - n_near
        sub = np.concatenate([jitter(person[pick]) if n_hoi else np.zeros((0, 4)), _boxes(rng, n_far)])
        ob = np.concatenate([jitter(obj[pick]) if n_hoi else np.zeros((0, 4)), _boxes(rng, n_far)])
        sub[:, 2:] = np.maximum(sub[:, 2:], sub[:, :2])
        ob[:, 2:] = np.maximum(ob[:, 2:], ob[:, :2])
        c = np.concatenate([near_cat, rng.integers(0, 600, n_far)])
        score = np.concatenate([rng.uniform(0.3, 1, n_near), rng.uniform(0, 0.6, n_far)])
        preds.append(ImagePrediction(name, sub.astype(np.float32), ob.astype(np.float32), obj_of[c],
                                     score.astype(np.float32), verb_of[c]))
    # training counts: 138 rare categories (< 10), the rest 10..2000
    counts = rng.integers(10, 2000, 600)
    counts[rng.choice(600, 138, replace=False)] = rng.integers(1, 10, 138)
    train = {(0, int(o), int(v)): int(n) for o, v, n in zip(obj_of, verb_of, counts)}
    return HicoGroundTruth(test, train, hico_validity_matrix()), preds


def to_qpic_layout(preds: list[ImagePrediction], num_verbs: int = 117, seed: int = 0) -> list[ImagePrediction]:
    """The same triplets as QPIC post-process outputs: one query per triplet (100 queries per
    image), its verb scored as given, every other verb a small score on 30 % of the pairs."""
    rng = np.random.default_rng(seed)
    out = []
    for p in preds:
        n = len(p)
        scores = (rng.uniform(0, 0.05, (n, num_verbs)) * (rng.random((n, num_verbs)) < 0.3)).astype(np.float32)
        scores[np.arange(n), p.verbs] = p.verb_scores
        out.append(ImagePrediction(p.file_name, p.sub_boxes, p.obj_boxes, p.obj_labels, scores))
    return out


def build_vcoco_case(num_images: int = 4946, persons: int = 3, queries: int = 100, seed: int = 0):
    """V-COCO-sized official GT (arrays) and detections: 100 queries per test image."""
    rng = np.random.default_rng(seed)
    num_p, num_d = num_images * persons, num_images * queries
    xy = rng.uniform(0, 400, (num_p, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(20, 200, (num_p, 2))], 1).astype(np.float32)
    actions = (rng.random((num_p, 26)) < 0.15).astype(np.int64)
    actions[rng.random(num_p) < 0.1] = -1  # persons without V-COCO labels
    roles = np.full((num_p, 26, 2, 4), -1, np.float32)
    annotated = rng.random((num_p, 26, 2)) < 0.5
    roles[annotated] = boxes[rng.integers(0, num_p, int(annotated.sum()))]
    gt = VcocoOfficialGT(np.arange(num_images) + 1, boxes, np.repeat(np.arange(num_images), persons), actions, roles)
    near = np.repeat(np.arange(num_images) * persons, queries) + rng.integers(0, persons, num_d)
    person_box = boxes[near] + rng.normal(0, 5, (num_d, 4)).astype(np.float32)
    obj = rng.uniform(0, 400, (num_d, 4)).astype(np.float32)
    obj[:, 2:] = obj[:, :2] + 50
    dets = VcocoDetections(np.repeat(np.arange(num_images) + 1, queries), person_box,
                           rng.random((num_d, 26)).astype(np.float32), np.broadcast_to(obj[:, None], (num_d, 25, 4)),
                           rng.random((num_d, 25)).astype(np.float32))
    return gt, dets


# ---------------------------------------------------------------------------------------------
# Peer: the reference evaluator's loop structure (QPIC hico_eval.py as evaluation.md §1.7 describes)
# ---------------------------------------------------------------------------------------------


def _peer_iou(a: dict, b: dict) -> float:
    """The reference's box IoU: 0 across categories, +1 pixel convention, empty if ix1 >= ix2."""
    if a["category_id"] != b["category_id"]:
        return 0
    r1, r2 = a["bbox"], b["bbox"]
    s1 = (r1[2] - r1[0] + 1) * (r1[3] - r1[1] + 1)
    s2 = (r2[2] - r2[0] + 1) * (r2[3] - r2[1] + 1)
    left, right = max(r1[1], r2[1]), min(r1[3], r2[3])
    top, bottom = max(r1[0], r2[0]), min(r1[2], r2[2])
    if left >= right or top >= bottom:
        return 0
    inter = (right - left + 1) * (bottom - top + 1)
    return inter / (s1 + s2 - inter)


def peer_loop_reference(gt: HicoGroundTruth, preds: list[ImagePrediction], max_hois: int = 100) -> float:
    """QPIC-protocol mAP with per-image Python loops, written after the reference's structure."""
    corre = gt.correct_mat
    by_name = {p.file_name: p for p in preds}
    gt_triplets, sum_gts = [], defaultdict(int)
    for img in gt.test:
        for s, o, v in img.hois.tolist():
            t = (int(img.labels[s]), int(img.labels[o]), v)
            if t not in gt_triplets:
                gt_triplets.append(t)
            sum_gts[t] += 1
    tp, fp, score = defaultdict(list), defaultdict(list), defaultdict(list)

    for img in gt.test:
        p = by_name.get(img.file_name)
        n = 0 if p is None else len(p)
        pred_boxes = [{"bbox": b, "category_id": 0} for b in (p.sub_boxes if n else [])]
        pred_boxes += [{"bbox": b, "category_id": int(lab)} for b, lab in zip(p.obj_boxes if n else [], p.obj_labels if n else [])]
        if n and p.verbs is None:  # QPIC layout: every (query, verb) pair, query-major
            hois = [{"subject_id": k, "object_id": n + k, "category_id": v,
                     "score": p.verb_scores[k, v] * np.float32(corre[v, p.obj_labels[k]])}
                    for k in range(n) for v in range(p.verb_scores.shape[1])]
        else:
            hois = [{"subject_id": k, "object_id": n + k, "category_id": int(p.verbs[k]),
                     "score": p.verb_scores[k] * np.float32(corre[p.verbs[k], p.obj_labels[k]])} for k in range(n)]
        hois.sort(key=lambda h: h["score"], reverse=True)
        hois = hois[:max_hois]
        gt_boxes = [{"bbox": b.astype(np.float32), "category_id": int(lab)} for b, lab in zip(img.boxes, img.labels)]
        gt_hois = [{"subject_id": s, "object_id": o, "category_id": v} for s, o, v in img.hois.tolist()]
        if not gt_boxes:
            continue  # quirk Q3
        match, overlaps = defaultdict(list), defaultdict(list)
        for gi, gb in enumerate(gt_boxes):
            for pi, pb in enumerate(pred_boxes):
                ov = _peer_iou(gb, pb)
                if ov >= 0.5:
                    match[pi].append(gi)
                    overlaps[pi].append(ov)
        used = [0] * len(gt_hois)
        for h in hois:
            best, best_ov = None, 0
            sub_ids, obj_ids = match.get(h["subject_id"], []), match.get(h["object_id"], [])
            for g in gt_hois:
                if g["subject_id"] in sub_ids and g["object_id"] in obj_ids and g["category_id"] == h["category_id"]:
                    ov = min(overlaps[h["subject_id"]][sub_ids.index(g["subject_id"])],
                             overlaps[h["object_id"]][obj_ids.index(g["object_id"])])
                    if ov > best_ov:
                        best, best_ov = g, ov
            t = (0, pred_boxes[h["object_id"]]["category_id"], h["category_id"])
            if t not in gt_triplets:
                continue
            k = gt_hois.index(best) if best is not None else -1
            ok = k >= 0 and used[k] == 0
            if ok:
                used[k] = 1
            tp[t].append(int(ok))
            fp[t].append(int(not ok))
            score[t].append(h["score"])
    aps = []
    for t in gt_triplets:
        if not tp[t]:
            aps.append(0.0)
            continue
        order = np.argsort(-np.array(score[t]))
        ctp, cfp = np.cumsum(np.array(tp[t])[order]), np.cumsum(np.array(fp[t])[order])
        rec, prec = ctp / sum_gts[t], ctp / (ctp + cfp)
        aps.append(sum((np.max(prec[rec >= th]) if np.any(rec >= th) else 0) / 11.0 for th in np.arange(0.0, 1.1, 0.1)))
    return float(np.mean(aps))


def _measure(fn, repeat: int) -> tuple[float, float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return best, peak / 2**20, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=9658)
    parser.add_argument("--peer-images", type=int, default=600)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--no-vcoco", action="store_true", help="skip the V-COCO official case")
    parser.add_argument("--qpic-layout-images", type=int, default=2000,
                        help="images of the extra QPIC-layout case (100 queries x 117 verbs each)")
    args = parser.parse_args()
    start = time.perf_counter()
    gt, preds = build_case(args.images)
    num_hois = sum(len(img.hois) for img in gt.test)
    print(json.dumps({"case": "hico_full_scale", "images": args.images, "gt_hois": num_hois,
                      "triplets": sum(len(p) for p in preds), "build_seconds": round(time.perf_counter() - start, 2)}))
    timings = {}
    for protocol, setting in (("qpic", "default"), ("official", "default"), ("official", "known_object")):
        gt.known_objects = None if setting == "default" else {
            img.file_name: np.unique(img.labels[img.hois[:, 1]]) for img in gt.test}
        seconds, peak_mb, out = _measure(lambda p=protocol, s=setting: evaluate_hico(gt, preds, p, s), args.repeat)
        timings[(protocol, setting)] = seconds
        print(json.dumps({"evaluator": "hqm", "protocol": protocol, "setting": setting, "seconds": round(seconds, 3),
                          "tracemalloc_peak_mb": round(peak_mb, 1), "mAP": out["mAP"],
                          "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))
    # the same predictions as raw QPIC outputs (100 x 117 scores per image) on a subset
    n_q = min(args.qpic_layout_images, args.images)
    q_gt = HicoGroundTruth(gt.test[:n_q], gt.train_counts, gt.correct_mat)
    q_preds = to_qpic_layout(preds[:n_q])
    for protocol in ("qpic", "official"):
        seconds, peak_mb, out = _measure(lambda p=protocol: evaluate_hico(q_gt, q_preds, p), args.repeat)
        print(json.dumps({"evaluator": "hqm", "layout": "qpic_postprocess_100x117", "protocol": protocol,
                          "images": n_q, "seconds": round(seconds, 3), "tracemalloc_peak_mb": round(peak_mb, 1),
                          "extrapolated_seconds_full": round(seconds * args.images / n_q, 2), "mAP": out["mAP"]}))
    # the peer on a subset, checked against hqm on the same subset, extrapolated per image
    sub_gt = HicoGroundTruth(gt.test[: args.peer_images], gt.train_counts, gt.correct_mat)
    names = {img.file_name for img in sub_gt.test}
    sub_preds = [p for p in preds if p.file_name in names]
    start = time.perf_counter()
    peer_map = peer_loop_reference(sub_gt, sub_preds)
    peer_seconds = time.perf_counter() - start
    hqm_map = evaluate_hico(sub_gt, sub_preds)["mAP"]
    extrapolated = peer_seconds * args.images / args.peer_images
    print(json.dumps({"evaluator": "peer_loop_reference", "protocol": "qpic", "images": args.peer_images,
                      "seconds": round(peer_seconds, 2), "extrapolated_seconds_full": round(extrapolated, 1),
                      "mAP_subset": peer_map, "hqm_mAP_subset": hqm_map, "agree": abs(peer_map - hqm_map) < 1e-9}))
    print(json.dumps({"speedup_qpic_protocol": round(extrapolated / timings[("qpic", "default")], 1)}))
    if not args.no_vcoco:
        vgt, vdets = build_vcoco_case()
        seconds, peak_mb, out = _measure(lambda: evaluate_vcoco_detections(vgt, vdets), 1)
        print(json.dumps({"evaluator": "hqm", "case": "vcoco_official_full_scale", "images": 4946,
                          "detections": len(vdets.image_id), "seconds": round(seconds, 2),
                          "tracemalloc_peak_mb": round(peak_mb, 1), "role_ap_s1_24": out["role_ap_s1_24"]}))


if __name__ == "__main__":
    main()
