"""The demo's five methods over several seeds: mean and standard deviation, so the ranking is not luck.

Each seed regenerates the synthetic volumes and trains every method with that seed, exactly as
``masktwins3d demo --seed S`` does. Usage (about 3x the demo's time on 2 CPU cores)::

    .venv/bin/python benchmarks/demo_seeds.py --seeds 0 1 2 --out runs/demo_seeds
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from masktwins3d.atomic import atomic_write_json
from masktwins3d.demo import METHODS, run_demo


def summarise(reports: dict[int, dict]) -> dict:
    """Per method and metric: mean and sample standard deviation over seeds (fractions)."""
    out = {}
    for name in METHODS:
        rows = [r["mito"]["methods"][name] for r in reports.values() if name in r["mito"]["methods"]]
        out[name] = {
            k: {"mean": float(np.mean([r[k] for r in rows])), "sd": float(np.std([r[k] for r in rows], ddof=1)) if len(rows) > 1 else 0.0}
            for k in ("iou", "f1", "mcc", "map")
        }
    return out


def format_summary(summary: dict) -> str:
    head = f"{'method':<11}" + "".join(f"{k:>15}" for k in ("IoU", "F1", "MCC", "mAP"))
    lines = [head, "-" * len(head)]
    for name, s in summary.items():
        lines.append(f"{name:<11}" + "".join(f"{100 * s[k]['mean']:>8.1f} ± {100 * s[k]['sd']:<4.1f}" for k in ("iou", "f1", "mcc", "map")))
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--out", default="runs/demo_seeds")
    p.add_argument("--config", default=None)
    args = p.parse_args()
    out = Path(args.out)
    reports = {}
    for seed in args.seeds:
        reports[seed] = run_demo(
            config=args.config, data_dir=out / f"volumes_seed{seed}", out_dir=out / f"seed{seed}", seed=seed, overwrite=True
        )
    summary = summarise(reports)
    atomic_write_json(out / "summary.json", {"seeds": args.seeds, "summary": summary, "per_seed": {s: r["mito"]["methods"] for s, r in reports.items()}})
    print(f"\n{len(args.seeds)} seeds, held-out synthetic target, DA-ISC 2d (%, mean ± sd)")
    print(format_summary(summary))
    gaps = [100 * (r["mito"]["methods"]["masktwins"]["iou"] - r["mito"]["methods"]["noadapt"]["iou"]) for r in reports.values()]
    print("masktwins - noadapt IoU points per seed: " + ", ".join(f"{g:+.1f}" for g in gaps))


if __name__ == "__main__":
    main()
