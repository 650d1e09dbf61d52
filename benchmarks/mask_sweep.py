"""Masks that matter: lambda_cm x patch b x mask kind on the demo's mitochondria pair, several seeds.

Each setting is a masktwins run warm-started from a seed's source model exactly as the demo's
adapt phase does (``masktwins3d.demo.ADAPT_SETTINGS``, the demo's adapt iterations), differing
only in ``loss.lambda_cm``, ``mask.patch`` and ``mask.kind`` (``complementary``: MaskTwins;
``independent``: the rmask ablation). The source models and volumes are those of
``benchmarks/demo_seeds.py`` (run it first, same ``--out``), so the sweep's default cell (the
demo's lambda_cm and b) is the demo_seeds run itself and is not trained again. Every run is
scored with its EMA and last-student weights on the held-out target (for the report only: the
defaults are picked from the EMA mean over seeds, and the paired complementary - independent
difference at each (lambda_cm, b) answers whether complementary masks beat independent ones).
Resumable: a run folder with its scores is read, not retrained. Usage::

    .venv/bin/python benchmarks/mask_sweep.py --out runs/demo_seeds --seeds 0 1 2 \
        --lambdas 0.01 0.1 1.0 --patches 8 16
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from masktwins3d.atomic import atomic_write_json  # noqa: E402
from masktwins3d.demo import ADAPT_ITERATIONS, ADAPT_SETTINGS, WEIGHTS, default_config  # noqa: E402
from masktwins3d.evaluate.paired import format_difference, paired_difference  # noqa: E402

KINDS = {"complementary": "masktwins", "independent": "rmask"}


def cell_name(kind: str, lam: float, patch: int) -> str:
    return f"sweep_{kind}_l{lam:g}_b{patch}"


def run_cell(seed_dir: Path, kind: str, lam: float, patch: int, iterations: int, seed: int, default: tuple[float, int]) -> dict:
    """EMA and student IoU of one (kind, lambda_cm, b) run for one seed, training it if needed."""
    from demo_seeds import mito_scorer

    from masktwins3d.config import load_config
    from masktwins3d.train import train

    report = json.loads((seed_dir / "report.json").read_text())["mito"]
    if (lam, patch) == default:  # the demo's own run of this method
        return {w: report["methods"][KINDS[kind]][w]["iou"] for w in WEIGHTS}
    run_dir = seed_dir / cell_name(kind, lam, patch)
    scores = run_dir / "sweep_scores.json"
    if scores.is_file():
        return json.loads(scores.read_text())
    data = report["data"]
    overrides = [
        f"method={KINDS[kind]}", f"train.out_dir={run_dir}", f"train.seed={seed}", f"optim.iterations={iterations}",
        f"train.init={seed_dir / 'source' / 'checkpoint.pt'}", "loss.target_start=0", *ADAPT_SETTINGS["mito"],
        f"loss.lambda_cm={lam}", f"mask.patch={patch}",
        f"data.source.raw={data['source_train']['raw']}", f"data.source.label={data['source_train']['mito']}",
        f"data.target.raw={data['target_train']['raw']}",
    ]
    ckpt = train(load_config(report["config"], overrides), overwrite=True)  # a killed run restarts
    score = mito_scorer(data["target_test"]["raw"], data["target_test"]["mito"])
    result = {w: score(ckpt, w, run_dir) for w in WEIGHTS}
    atomic_write_json(scores, result)
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="runs/demo_seeds", help="the demo_seeds.py folder (default: runs/demo_seeds)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--lambdas", type=float, nargs="+", default=[0.01, 0.1, 1.0])
    p.add_argument("--patches", type=int, nargs="+", default=[8, 16])
    p.add_argument("--kinds", nargs="+", default=list(KINDS), choices=list(KINDS))
    p.add_argument("--cells", nargs="*", default=None, metavar="LAMBDA:B",
                   help="only these (lambda_cm, b) cells instead of the full grid, e.g. 0.1:8 1.0:8 0.1:16")
    args = p.parse_args()
    out = Path(args.out)
    from masktwins3d.config import load_config

    demo = load_config(default_config())
    default = (float(demo.loss.lambda_cm), int(demo.mask.patch))
    cells = ([(float(c.split(":")[0]), int(c.split(":")[1])) for c in args.cells] if args.cells
             else [(lam, b) for lam in args.lambdas for b in args.patches])
    if default not in cells:
        cells.insert(0, default)
    for seed in args.seeds:
        if not (out / f"seed{seed}" / "report.json").is_file():
            raise SystemExit(f"{out / f'seed{seed}' / 'report.json'} is missing; run benchmarks/demo_seeds.py --out {out} first")
    results: dict = {}
    for lam, b in cells:
        for kind in args.kinds:
            key = cell_name(kind, lam, b)
            results[key] = {"kind": kind, "lambda_cm": lam, "patch": b, "seeds": {}}
            for seed in args.seeds:
                r = run_cell(out / f"seed{seed}", kind, lam, b, ADAPT_ITERATIONS["mito"], seed, default)
                results[key]["seeds"][seed] = r
                print(f"seed {seed} {kind:<14} lambda_cm {lam:<5g} b {b:<3d} " + "  ".join(f"{w} {100 * r[w]:.1f}" for w in WEIGHTS), flush=True)
    print(f"\nmask sweep, held-out synthetic target, IoU % mean over seeds {args.seeds} (EMA / student); default {default}")
    print(f"{'lambda_cm':>10}{'b':>4}" + "".join(f"{k:>22}" for k in args.kinds) + "   complementary - independent (EMA), mean [95 % t]")
    paired = {}
    for lam, b in cells:
        row = f"{lam:>10g}{b:>4d}"
        for kind in args.kinds:
            seeds = results[cell_name(kind, lam, b)]["seeds"]
            row += "".join(f"{100 * sum(s[w] for s in seeds.values()) / len(seeds):>11.1f}" for w in WEIGHTS)
        if len(args.kinds) == 2:
            a = [results[cell_name("complementary", lam, b)]["seeds"][s]["ema"] for s in args.seeds]
            c = [results[cell_name("independent", lam, b)]["seeds"][s]["ema"] for s in args.seeds]
            d = paired_difference(a, c)
            paired[f"l{lam:g}_b{b}"] = d
            row += "   " + format_difference(d, 100, 1)
        print(row)
    atomic_write_json(out / "mask_sweep.json", {"default": default, "cells": results, "paired_complementary_minus_independent": paired})
    print(f"\nsweep: {out / 'mask_sweep.json'}")


if __name__ == "__main__":
    main()
