"""Synapse scoring and post-processing speed, with a scipy.ndimage baseline in the same process.

1. The WASPSYN scorer (:func:`masktwins3d.evaluate.synapse.score_synapses`) on one volume with
   ``--pre`` ground-truth pre points and ``--post`` posts (default 2,000 and 6,000, about a
   WASPSYN volume's worth), predictions jittered from them with misses and false positives,
   in ``waspsyn`` and ``strict`` mode.
2. AdaSyn post-processing (:func:`masktwins3d.postprocess.synapse.probabilities_to_points`,
   cc3d) of a ``2 x N^3`` probability map (default 256^3) against the same protocol written
   with ``scipy.ndimage`` (``label`` with a 26-connected structure, ``sum_labels`` for sizes,
   ``center_of_mass``, brute-force nearest pre for the links); both results are checked to be equal.

Every time is the median of ``--repeats`` runs. Usage::

    .venv/bin/python benchmarks/bench_synapse.py [--size 256] [--pre 2000] [--post 6000] [--repeats 5]
"""

from __future__ import annotations

import argparse

import numpy as np
from scipy import ndimage

from masktwins3d.evaluate.synapse import score_synapses
from masktwins3d.io.points import SynapsePoints
from masktwins3d.postprocess.synapse import THRESHOLDS, probabilities_to_points
from timing import median_time


def make_points(rng: np.random.Generator, n_pre: int, n_post: int, shape=(1250, 1250, 1250)) -> tuple[SynapsePoints, SynapsePoints]:
    """Ground truth and a prediction: 85 % of points kept with 3-voxel jitter, 15 % false positives."""
    extent = np.asarray(shape)
    pre = rng.uniform(0, extent, (n_pre, 3)).round()
    owner = rng.integers(0, n_pre, n_post)
    post = np.clip(pre[owner] + rng.normal(0, 8, (n_post, 3)), 0, extent - 1).round()
    gt = SynapsePoints(pre, np.column_stack([owner, post]))

    keep_pre = rng.random(n_pre) < 0.85
    new_row = np.cumsum(keep_pre) - 1
    fp_pre = rng.uniform(0, extent, (int(0.15 * n_pre), 3)).round()
    p_pre = np.vstack([pre[keep_pre] + rng.normal(0, 3, (keep_pre.sum(), 3)).round(), fp_pre])
    keep_post = keep_pre[owner] & (rng.random(n_post) < 0.85)
    p_post = post[keep_post] + rng.normal(0, 2, (keep_post.sum(), 3)).round()
    p_owner = new_row[owner[keep_post]]
    pred = SynapsePoints(p_pre, np.column_stack([p_owner, p_post]))
    return pred, gt


def make_probabilities(rng: np.random.Generator, size: int, n_pre: int, n_post: int) -> np.ndarray:
    """``(2, size, size, size)`` float32 map of blurred blobs (pre channel 0, post channel 1)."""
    prob = np.zeros((2, size, size, size), np.float32)
    impulse = np.zeros((17, 17, 17), np.float32)
    impulse[8, 8, 8] = 1.0
    peak = ndimage.gaussian_filter(impulse, 2.0).max()  # an isolated blob peaks at 1
    for channel, n in ((0, n_pre), (1, n_post)):
        idx = rng.integers(0, size, (n, 3))
        prob[channel][tuple(idx.T)] = 1.0
        prob[channel] = ndimage.gaussian_filter(prob[channel], 2.0)
        prob[channel] /= peak
        np.clip(prob[channel], 0, 1, out=prob[channel])
    return prob


def scipy_points(prob: np.ndarray, thresholds=THRESHOLDS, min_pre_voxels: int = 2) -> SynapsePoints:
    """The AdaSyn protocol with scipy.ndimage only (the baseline)."""
    structure = np.ones((3, 3, 3), bool)
    out = []
    for channel, delta, min_voxels in ((0, thresholds[0], min_pre_voxels), (1, thresholds[1], 1)):
        mask = (prob[channel] * 255).astype(np.uint8) > int(255 * delta)
        labels, n = ndimage.label(mask, structure=structure)
        index = np.arange(1, n + 1)
        sizes = ndimage.sum_labels(mask, labels, index)
        centroids = np.asarray(ndimage.center_of_mass(mask, labels, index), np.float64).reshape(-1, 3)
        out.append(centroids[sizes >= min_voxels].astype(np.int64))
    pre, post = out
    # nearest pre by brute force; argmin keeps the lowest row among equal distances
    d2 = ((post[:, None, :].astype(np.float64) - pre[None, :, :]) ** 2).sum(-1)
    links = d2.argmin(axis=1) if len(pre) and len(post) else np.zeros(0, np.int64)
    return SynapsePoints(pre, np.column_stack([links, post]).reshape(-1, 4))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pre", type=int, default=2000, help="ground-truth pre points per volume")
    parser.add_argument("--post", type=int, default=6000, help="ground-truth post points per volume")
    parser.add_argument("--size", type=int, default=256, help="edge of the probability map, voxels")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)

    pred, gt = make_points(rng, args.pre, args.post)
    print(f"scorer: {len(gt.pre)} GT pre, {len(gt.post)} GT post; {len(pred.pre)} predicted pre, {len(pred.post)} predicted post")
    for mode in ("waspsyn", "strict"):
        t, result = median_time(lambda: score_synapses(pred, gt, mode=mode), args.repeats)
        print(f"  {mode:<8} {t:8.3f} s   F1_pre {result['f1_pre']:.3f}  F1_post {result['f1_post']:.3f}  F1 {result['f1']:.3f}")

    n_pre, n_post = max(args.size**3 // 8000, 1), max(args.size**3 // 2700, 1)
    prob = make_probabilities(rng, args.size, n_pre, n_post)
    ours_t, ours = median_time(lambda: probabilities_to_points(prob), args.repeats)
    base_t, base = median_time(lambda: scipy_points(prob), args.repeats)
    same = np.array_equal(ours.pre, base.pre) and np.array_equal(ours.post, base.post)
    print(f"post-processing of a 2 x {args.size}^3 float32 map ({len(ours.pre)} pre, {len(ours.post)} post points):")
    print(f"  masktwins3d (cc3d)  {ours_t:8.3f} s")
    print(f"  scipy.ndimage       {base_t:8.3f} s")
    print(f"  ratio scipy / ours  {base_t / ours_t:8.2f}x   identical points: {same}")
    if not same:
        raise SystemExit("the two post-processing results differ")


if __name__ == "__main__":
    main()
