#!/usr/bin/env python
"""Score a WASPSYN submission folder: every syns_zyx_*.h5 ground truth with its *_predict.h5.

Usage::

    python scripts/evaluate_waspsyn.py PRED_DIR GT_DIR [--out DIR] [--mode waspsyn|strict]
        [--r-pre 11] [--r-post 6.5] [--overwrite]

Writes ``scores.txt`` (``correct: <mean F1>``, as the challenge's CodaLab scorer), one JSON per
volume and ``summary.json`` into ``--out`` (default: PRED_DIR/scores), and prints a table. The
volume offset is parsed from each GT name; predictions are chunk-local.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from masktwins3d.atomic import atomic_write_json, atomic_write_text
from masktwins3d.errors import UserError
from masktwins3d.evaluate.synapse import MODES, R_POST, R_PRE, score_submission


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("pred_dir", help="folder of <GT name>_predict.h5 files (pre, post; chunk-local voxels)")
    p.add_argument("gt_dir", help="folder of syns_zyx_{z0}-{z1}_{y0}-{y1}_{x0}-{x1}.h5 ground truth files")
    p.add_argument("--out", default=None, help="output folder (default: PRED_DIR/scores)")
    p.add_argument("--mode", choices=MODES, default="waspsyn", help="waspsyn: official Hungarian-then-radius (default); strict: most matches within the radius")
    p.add_argument("--r-pre", type=float, default=R_PRE, help=f"pre match radius, voxels (default {R_PRE:g})")
    p.add_argument("--r-post", type=float, default=R_POST, help=f"post match radius, voxels (default {R_POST:g})")
    p.add_argument("--overwrite", action="store_true", help="replace existing score files")
    args = p.parse_args(argv)
    try:
        out = Path(args.out) if args.out else Path(args.pred_dir) / "scores"
        if (out / "scores.txt").exists() and not args.overwrite:
            raise UserError(f"{out / 'scores.txt'} exists; pass --overwrite to replace the scores or choose --out")
        per_volume, mean_f1 = score_submission(args.pred_dir, args.gt_dir, args.mode, args.r_pre, args.r_post)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for name, report in per_volume.items():
        atomic_write_json(out / f"{name}.json", report)
    atomic_write_json(out / "summary.json", {"mean_f1": mean_f1, "mode": args.mode, "r_pre": args.r_pre, "r_post": args.r_post,
                                             "volumes": {n: {k: r[k] for k in ("f1_pre", "f1_post", "f1")} for n, r in per_volume.items()}})
    atomic_write_text(out / "scores.txt", f"correct: {mean_f1}\n")
    width = max(len(n) for n in per_volume)
    print(f"{'volume':<{width}}  {'F1_pre':>7} {'F1_post':>7} {'F1':>7}")
    for name, r in per_volume.items():
        print(f"{name:<{width}}  {r['f1_pre']:>7.4f} {r['f1_post']:>7.4f} {r['f1']:>7.4f}")
    print(f"{'mean':<{width}}  {'':>7} {'':>7} {mean_f1:>7.4f}\nscores: {out / 'scores.txt'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
