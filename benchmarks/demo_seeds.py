"""The demo over several seeds, on equal terms: paired per-seed differences with 95 % intervals,
both weights of every run, and learning curves.

Each seed regenerates the synthetic volumes and runs the demo's protocol exactly as
``masktwins3d demo --seed S`` does: a noadapt source model, then every method warm-started
from its EMA weights for the same further iterations (noadapt continued is the source-only
row), each scored with its last student and its EMA weights. With ``--curves`` every run keeps
its weights every ``--snapshot-every`` iterations and they are scored after training (for the
plots only; nothing is chosen from them). Resumable: a seed whose ``report.json`` exists is
read, not rerun (``--overwrite`` reruns). Usage (about 3x the demo's time on 2 CPU cores)::

    .venv/bin/python benchmarks/demo_seeds.py --seeds 0 1 2 --out runs/demo_seeds --curves
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from masktwins3d.atomic import atomic_write_json  # noqa: E402
from masktwins3d.demo import METHODS, SYNAPSE_METHODS, WEIGHTS, run_demo  # noqa: E402
from masktwins3d.evaluate.paired import format_difference, paired_difference  # noqa: E402

PAIRS = (("masktwins", "noadapt"), ("masktwins", "rmask"), ("rmask", "noadapt"), ("mic", "noadapt"), ("oracle", "noadapt"),
         ("masktwins", "source"), ("noadapt", "source"))
"""``source`` is the source model every method starts from (not budget-matched: fewer iterations):
a user gets it for free, so an adapting method should beat it too (both of its weights are
compared, like every other run's)."""
METRICS = {"mito": ("iou", "f1", "mcc", "map"), "synapse": ("f1", "f1_pre", "f1_post")}


def summarise(reports: dict[int, dict], track: str) -> dict:
    """Per method, weights and metric: mean and sample sd over seeds; per pair: paired differences."""
    seeds = sorted(reports)
    runs = {s: {"source": reports[s][track]["source"]["scores"], **reports[s][track]["methods"]} for s in seeds}
    methods = [m for m in ("source", *METHODS) if all(m in runs[s] for s in seeds)]
    table = {}
    for m in methods:
        table[m] = {}
        for w in WEIGHTS:
            rows = [runs[s][m][w] for s in seeds]
            table[m][w] = {k: {"mean": float(np.mean([r[k] for r in rows])),
                               "sd": float(np.std([r[k] for r in rows], ddof=1)) if len(rows) > 1 else 0.0}
                           for k in METRICS[track]}
    key = METRICS[track][0]
    diffs = {}
    for a, b in PAIRS:
        if a in methods and b in methods:
            diffs[f"{a} - {b}"] = {w: paired_difference([runs[s][a][w][key] for s in seeds], [runs[s][b][w][key] for s in seeds])
                                   for w in WEIGHTS}
    return {"metric": key, "table": table, "paired": diffs}


def format_summary(summary: dict, track: str) -> str:
    scale = 100 if track == "mito" else 1
    keys = METRICS[track]
    head = f"{'method':<11}{'weights':<9}" + "".join(f"{k:>16}" for k in keys)
    lines = [head, "-" * len(head)]
    for m, by_w in summary["table"].items():
        for w, s in by_w.items():
            cells = "".join(f"{scale * s[k]['mean']:>9.{1 if scale == 100 else 3}f} ± {scale * s[k]['sd']:<5.{1 if scale == 100 else 3}f}" for k in keys)
            lines.append(f"{m:<11}{w:<9}{cells}")
    lines.append(f"\npaired per-seed differences of {summary['metric']} ({'points' if scale == 100 else 'F1'}), mean [95 % t interval]:")
    for pair, by_w in summary["paired"].items():
        for w, d in by_w.items():
            lines.append(f"  {pair:<22}{w:<9}{format_difference(d, scale, 1 if scale == 100 else 3)}")
    return "\n".join(lines)


def mito_scorer(test_raw: str, test_gt: str):
    from masktwins3d.evaluate.mito import evaluate_mito
    from masktwins3d.inference.checkpoint import predict_with_checkpoint
    from masktwins3d.io import open_volume

    gt = open_volume(test_gt)

    def score(ckpt: Path, weights: str, scratch: Path) -> float:
        out = scratch / f"prob_{weights}.zarr"
        predict_with_checkpoint(ckpt, test_raw, out, patch_size=(256, 256), progress=False, resample="never", weights=weights, overwrite=True)
        return float(evaluate_mito(open_volume(str(out)), gt, mode="2d")["iou"])

    return score


def synapse_scorer(test_raw: str, test_points: str, crop):
    from masktwins3d.evaluate.synapse import score_synapses
    from masktwins3d.inference.checkpoint import predict_with_checkpoint
    from masktwins3d.io.points import read_points
    from masktwins3d.postprocess.synapse import probabilities_to_points

    gt = read_points(test_points)

    def score(ckpt: Path, weights: str, scratch: Path) -> float:
        prob = predict_with_checkpoint(ckpt, test_raw, scratch / f"prob_{weights}.zarr", patch_size=crop, progress=False,
                                       weights=weights, overwrite=True)
        return float(score_synapses(probabilities_to_points(np.asarray(prob[:])), gt)["f1"])

    return score


def curves_of(report: dict, seed_dir: Path, track: str) -> dict:
    """``{method: {weights: [[iteration, score], ...]}}`` for one seed (source phase included)."""
    from curves import score_run_curve

    part = report[track]
    base = seed_dir if track == "mito" else seed_dir / "synapse"
    test = part["data"]["target_test"]
    if track == "mito":
        score = mito_scorer(test["raw"], test["mito"])
    else:
        from masktwins3d.config import load_config

        crop = tuple(load_config(base / "source" / "config.yaml").data.crop)
        score = synapse_scorer(test["raw"], test["points"], crop)
    out = {"source": score_run_curve(base / "source", score)}
    for m in part["methods"]:
        out[m] = score_run_curve(base / m, score, offset=part["source_iterations"])
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--out", default="runs/demo_seeds")
    p.add_argument("--config", default=None, help="mito training config (default: the demo's)")
    p.add_argument("--synapse-config", default=None, help="synapse training config (default: the demo's)")
    p.add_argument("--tracks", nargs="+", default=["mito", "synapse"])
    p.add_argument("--methods", nargs="+", default=None, help="mito methods (default: the demo's, masktwins3d.demo.DEMO_METHODS)")
    p.add_argument("--synapse-methods", nargs="+", default=None, help=f"synapse methods (default: {' '.join(SYNAPSE_METHODS)})")
    p.add_argument("--curves", action="store_true", help="keep snapshots and score them for learning curves")
    p.add_argument("--snapshot-every", type=int, default=50)
    p.add_argument("--figures", default="docs/benchmarks", help="where the curve PNGs go (default: docs/benchmarks)")
    p.add_argument("--overwrite", action="store_true", help="rerun seeds that already have a report")
    p.add_argument("overrides", nargs="*", help="extra demo options as KEY=VALUE for run_demo (e.g. adapt_iterations=300)")
    args = p.parse_args()
    out = Path(args.out)
    extra = {k: int(v) for k, v in (o.split("=", 1) for o in args.overrides)}
    reports, curves = {}, {t: {} for t in args.tracks}
    for seed in args.seeds:
        seed_dir = out / f"seed{seed}"
        done = seed_dir / "report.json"
        if done.is_file() and not args.overwrite:
            print(f"seed {seed}: reusing {done}")
            reports[seed] = json.loads(done.read_text())
        else:
            reports[seed] = run_demo(config=args.config, synapse_config=args.synapse_config, data_dir=out / f"volumes_seed{seed}", out_dir=seed_dir, seed=seed,
                                     overwrite=True, tracks=args.tracks, methods=args.methods, synapse_methods=args.synapse_methods,
                                     snapshot_every=args.snapshot_every if args.curves else 0, **extra)
        if args.curves:
            cache = seed_dir / "curves.json"
            if cache.is_file() and not args.overwrite:
                per_track = json.loads(cache.read_text())
            else:
                per_track = {t: curves_of(reports[seed], seed_dir, t) for t in args.tracks}
                atomic_write_json(cache, per_track)
            for t in args.tracks:
                curves[t][seed] = per_track[t]
    result = {"seeds": args.seeds}
    for t in args.tracks:
        summary = summarise(reports, t)
        result[t] = {"summary": summary, "per_seed": {s: r[t]["methods"] for s, r in reports.items()},
                     "source": {s: r[t]["source"] for s, r in reports.items()}}
        print(f"\n{t}: {len(args.seeds)} seeds (held-out synthetic target), mean ± sd")
        print(format_summary(summary, t))
        if args.curves:
            from curves import plot_curves

            src_its = reports[args.seeds[0]][t]["source_iterations"]
            png = Path(args.figures) / f"curves_demo_{t}.png"
            plot_curves(curves[t], png, f"demo {t}: held-out synthetic target, mean of seeds {args.seeds}",
                        "IoU (%)" if t == "mito" else "F1 x 100", boundary=src_its)
            result[t]["curves"] = {str(s): c for s, c in curves[t].items()}
            print(f"learning curves: {png}")
    atomic_write_json(out / "summary.json", result)
    print(f"\nsummary: {out / 'summary.json'}")


if __name__ == "__main__":
    main()
