"""Blockwise post-processing speed against a scipy.ndimage whole-volume baseline, same process, same data.

1. Mitochondria instances: :func:`masktwins3d.postprocess.blockwise.blockwise_instances` from a
   float32 zarr on disk to a uint32 label zarr, in-process: its default (a volume this size in one
   pass: read, cc3d, write) and the stitched blockwise path (``whole=False``: cc3d per block,
   exact stitching, two passes), against reading the whole volume, ``p >= t``,
   ``scipy.ndimage.label`` with the matching structure and writing the labels to a zarr. The
   probability volume is smoothed noise through a sigmoid (about 10 % foreground, many objects of
   all sizes, most cut by blocks). The in-memory part alone (threshold and label of the array,
   no zarr) is timed too, and the write of the same labels in each format (ours: blosc-lz4 with
   flat chunk keys, ``create_volume(fast_write=True)``; the baseline's: the default blosc-zstd
   with nested chunk folders, which it keeps).
2. Synapse points: :func:`masktwins3d.postprocess.blockwise.blockwise_points` (in-process) from a
   ``2 x N^3`` float32 zarr, against reading it whole and the AdaSyn protocol with scipy.ndimage
   (``label``, ``sum_labels``, ``center_of_mass``, brute-force nearest pre; the baseline of
   ``bench_synapse.py``).

Both results are checked: labels identical (same numbering, and the same partition), points
identical row for row. Every time is the median of ``--repeats`` runs. Usage::

    .venv/bin/python benchmarks/bench_postprocess.py [--size 256] [--block 64,128,128] [--repeats 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_synapse import make_probabilities, scipy_points  # noqa: E402

from masktwins3d.io import create_volume, open_volume  # noqa: E402
from masktwins3d.postprocess.blockwise import blockwise_instances, blockwise_points, parse_block  # noqa: E402
from masktwins3d.postprocess.mito import mask_to_instances, probability_to_mask  # noqa: E402
from timing import cpu_model, median_time  # noqa: E402

RANK = {6: 1, 18: 2, 26: 3}


def make_mito(rng: np.random.Generator, size: int, foreground: float = 0.1) -> np.ndarray:
    """``size^3`` float32 probabilities: smoothed noise through a sigmoid, ``p >= 0.5`` on ~``foreground``."""
    x = ndimage.gaussian_filter(rng.standard_normal((size, size, size)).astype(np.float32), 2.5)
    cut = np.quantile(x, 1 - foreground)
    return (1 / (1 + np.exp(-(x - cut) / x.std() * 4))).astype(np.float32)


def scipy_instances(spec: str, out: str, threshold: float, connectivity: int, block: tuple[int, ...]) -> np.ndarray:
    """The baseline: read whole, threshold, ndimage.label, write (same chunks as ours)."""
    prob = open_volume(spec)[:]
    labels, _ = ndimage.label(prob >= threshold, structure=ndimage.generate_binary_structure(3, RANK[connectivity]))
    labels = labels.astype(np.uint32)
    vol = create_volume(out, labels.shape, np.uint32, chunks=tuple(min(b, s) for b, s in zip(block, labels.shape)), overwrite=True)
    vol[:] = labels
    return labels


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two label volumes describe the same objects, whatever their numbering."""
    if not np.array_equal(a > 0, b > 0):
        return False
    pairs = np.unique(np.stack([a[a > 0], b[b > 0]]), axis=1)
    return len(np.unique(pairs[0])) == len(np.unique(pairs[1])) == pairs.shape[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=256, help="edge of the volumes, voxels")
    parser.add_argument("--block", default="64,128,128", help="block shape Z,Y,X for ours (default 64,128,128)")
    parser.add_argument("--connectivity", type=int, default=26, choices=(6, 18, 26))
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    block = parse_block(args.block)
    n = args.size
    print(f"CPU: {cpu_model()}, {len(os.sched_getaffinity(0))} cores; load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}")

    with tempfile.TemporaryDirectory() as tmp:
        mito = make_mito(rng, n)
        src = create_volume(f"{tmp}/mito.zarr", mito.shape, np.float32, chunks=tuple(min(b, n) for b in block))
        src[:] = mito
        structure = ndimage.generate_binary_structure(3, RANK[args.connectivity])
        written = mask_to_instances(probability_to_mask(mito, args.threshold), args.connectivity)
        chunks = tuple(min(b, n) for b in block)

        def write(fast: bool) -> None:
            create_volume(f"{tmp}/write_{fast}.zarr", written.shape, written.dtype, chunks=chunks, overwrite=True, fast_write=fast)[:] = written

        runs = {
            "ours": lambda: blockwise_instances(f"{tmp}/mito.zarr", f"{tmp}/ours.zarr", threshold=args.threshold,
                                                connectivity=args.connectivity, block_shape=block, overwrite=True, progress=False),
            "stitched": lambda: blockwise_instances(f"{tmp}/mito.zarr", f"{tmp}/stitched.zarr", threshold=args.threshold,
                                                    connectivity=args.connectivity, block_shape=block, overwrite=True, progress=False,
                                                    whole=False),
            "scipy": lambda: scipy_instances(f"{tmp}/mito.zarr", f"{tmp}/base.zarr", args.threshold, args.connectivity, block),
            "ours_memory": lambda: mask_to_instances(probability_to_mask(mito, args.threshold), args.connectivity),
            "scipy_memory": lambda: ndimage.label(mito >= args.threshold, structure=structure)[0],
            "write_fast": lambda: write(True),
            "write_default": lambda: write(False),
        }
        times = {name: [] for name in runs}
        for _ in range(max(1, args.repeats)):  # interleaved, so a change in machine load hits every one
            for name, fn in runs.items():
                t = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t)
        t = {name: statistics.median(v) for name, v in times.items()}
        ours, base = runs["ours"](), runs["scipy"]()
        labels, stitched = open_volume(f"{tmp}/ours.zarr")[:], open_volume(f"{tmp}/stitched.zarr")[:]
        identical = np.array_equal(labels, base) and np.array_equal(stitched, base)
        partition = same_partition(labels, base)
        print(f"mito instances, {n}^3 float32 zarr -> uint32 zarr, {args.connectivity}-connected, blocks {block} "
              f"({ours.count} instances, {100 * (base > 0).mean():.1f} % foreground), medians of {args.repeats}:")
        print(f"  masktwins3d, one pass (default)         {t['ours']:8.3f} s")
        print(f"  masktwins3d, stitched blocks            {t['stitched']:8.3f} s")
        print(f"  scipy.ndimage whole volume              {t['scipy']:8.3f} s")
        print(f"  in memory: mask + cc3d {t['ours_memory']:.3f} s, threshold + ndimage.label {t['scipy_memory']:.3f} s "
              f"({t['scipy_memory'] / t['ours_memory']:.2f}x)")
        print(f"  writing the labels alone: blosc-lz4, flat keys (ours) {t['write_fast']:.3f} s, blosc-zstd, nested (the baseline's) "
              f"{t['write_default']:.3f} s")
        print(f"  ratio scipy / ours                      {t['scipy'] / t['ours']:8.2f}x   (stitched {t['scipy'] / t['stitched']:.2f}x)   "
              f"identical labels: {identical}  same objects: {partition}")

        prob = make_probabilities(rng, n, max(n**3 // 8000, 1), max(n**3 // 2700, 1))
        src = create_volume(f"{tmp}/syn.zarr", prob.shape, np.float32, axes="czyx", chunks=(1, *(min(b, n) for b in block)))
        src[:] = prob
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ours_t, pts = median_time(lambda: blockwise_points(f"{tmp}/syn.zarr", block_shape=block, progress=False), args.repeats)
            base_t, ref = median_time(lambda: scipy_points(open_volume(f"{tmp}/syn.zarr")[:]), args.repeats)
        same = np.array_equal(pts.pre, ref.pre) and np.array_equal(pts.post, ref.post)
        print(f"synapse points, 2 x {n}^3 float32 zarr, blocks {block} ({len(pts.pre)} pre, {len(pts.post)} post):")
        print(f"  masktwins3d blockwise (cc3d, stitched)  {ours_t:8.3f} s")
        print(f"  scipy.ndimage whole volume              {base_t:8.3f} s")
        print(f"  ratio scipy / ours                      {base_t / ours_t:8.2f}x   identical points: {same}")
    if not (identical and same):
        raise SystemExit("blockwise and whole-volume results differ")


if __name__ == "__main__":
    main()
