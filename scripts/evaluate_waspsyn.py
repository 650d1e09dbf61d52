#!/usr/bin/env python
"""Score a WASPSYN submission: every syns_zyx_*.h5 ground truth against its *_predict.h5.

Usage::

    python scripts/evaluate_waspsyn.py PRED_DIR GT_DIR [--out DIR] [--mode waspsyn|strict]
        [--r-pre 11] [--r-post 6.5] [--overwrite]

Pairing: GT_DIR/syns_zyx_{z0}-{z1}_{y0}-{y1}_{x0}-{x1}.h5 with PRED_DIR/<GT stem>_predict.h5,
or one folder per volume (CodaLab layout) GT_DIR/<vol>/syns_zyx_*.h5 with PRED_DIR/<vol>/*predict.h5.
The volume offset is parsed from each GT name and subtracted from the GT (predictions are
chunk-local). Writes into --out (default PRED_DIR/scores): one <volume>.json per volume,
summary.json, and scores.txt with the CodaLab line ``correct: <mean F1>`` (written last);
prints a table. Existing outputs are kept unless --overwrite. A bad input prints
``error: <one line>`` and exits with code 2, writing nothing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

try:
    import masktwins3d  # noqa: F401
except ImportError:  # run from a checkout without installing the package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from masktwins3d.atomic import atomic_write_json, atomic_write_text
from masktwins3d.errors import UserError
from masktwins3d.evaluate.synapse import MODES, R_POST, R_PRE, pair_submission, score_submission


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="evaluate_waspsyn.py",
        description="Score a WASPSYN submission: every syns_zyx_*.h5 ground truth against its *_predict.h5, "
                    "F1 = (F1_pre + F1_post) / 2 per volume (official ISBI 2023 rule), mean over volumes.",
        epilog="Pairing and outputs: see the module docstring of scripts/evaluate_waspsyn.py and docs/EVALUATION.md.",
    )
    p.add_argument("pred_dir", help="predictions: <GT stem>_predict.h5 files (or <vol>/*predict.h5), "
                                    "datasets pre (N,3) and post (M,4), chunk-local voxels")
    p.add_argument("gt_dir", help="ground truth: syns_zyx_{z0}-{z1}_{y0}-{y1}_{x0}-{x1}.h5 files "
                                  "(or <vol>/syns_zyx_*.h5), global voxels")
    p.add_argument("--out", default=None, help="output folder (default: PRED_DIR/scores)")
    p.add_argument("--mode", choices=MODES, default="waspsyn",
                   help="waspsyn: official Hungarian then radius (default); strict: the most matches within the radius")
    p.add_argument("--r-pre", type=float, default=R_PRE, help=f"pre match radius in voxels (default {R_PRE:g})")
    p.add_argument("--r-post", type=float, default=R_POST, help=f"post match radius in voxels (default {R_POST:g})")
    p.add_argument("--overwrite", action="store_true", help="replace existing score files")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    out = Path(args.out) if args.out else Path(args.pred_dir) / "scores"
    try:
        pairs = pair_submission(args.pred_dir, args.gt_dir)
        targets = [out / f"{v.name}.json" for v in pairs] + [out / "summary.json", out / "scores.txt"]
        existing = [t for t in targets if t.exists()]
        if existing and not args.overwrite:
            raise UserError(f"{existing[0]} exists; pass --overwrite to replace the scores or choose another --out")
        if out.exists() and not out.is_dir():
            raise UserError(f"--out {out} is a file; give a folder")
        per_volume, mean_f1 = score_submission(args.pred_dir, args.gt_dir, args.mode, args.r_pre, args.r_post)
        files = {v.name: v for v in pairs}
        summary = {
            "mean_f1": mean_f1,
            "n_volumes": len(per_volume),
            "mode": args.mode,
            "r_pre": args.r_pre,
            "r_post": args.r_post,
            "volumes": {
                name: {"pred": str(files[name].pred), "gt": str(files[name].gt), "offset": list(files[name].offset),
                       **{k: r[k] for k in ("f1_pre", "f1_post", "f1", "empty")}}
                for name, r in per_volume.items()
            },
        }
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        for name, report in per_volume.items():
            atomic_write_json(out / f"{name}.json", report)
        atomic_write_json(out / "summary.json", summary)
        atomic_write_text(out / "scores.txt", f"correct: {mean_f1:0.12f}\n")
    except OSError as exc:
        reason = exc.strerror or exc
        print(f"error: cannot write the scores into {out} ({reason}); choose another --out", file=sys.stderr)
        return 2

    width = max(6, *(len(n) for n in per_volume))
    print(f"{'volume':<{width}}  {'F1_pre':>7} {'F1_post':>7} {'F1':>7}  pre tp/fp/fn  pairs")
    for name, r in per_volume.items():
        counts = "{tp}/{fp}/{fn}".format(**r["pre"])
        f1s = f"{r['f1_pre']:>7.4f} {r['f1_post']:>7.4f} {r['f1']:>7.4f}"
        print(f"{name:<{width}}  {f1s}  {counts:<12}  {r['post_linked']['n_pairs']}")
    print(f"{'mean':<{width}}  {'':>7} {'':>7} {mean_f1:>7.4f}")
    print(f"scores: {out / 'scores.txt'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
