"""Why masktwins loses synapses on the demo pair: one change at a time, several seeds.

Each variant is a masktwins run warm-started from a seed's synapse source model exactly as the
demo's adapt phase does (``masktwins3d.demo.ADAPT_SETTINGS["synapse"]``, the demo's adapt
iterations, ``loss.target_start=0``), differing from the demo's masktwins run in one setting
that a hypothesis about the collapse names (:data:`VARIANTS`). The source models, volumes and
the demo's own ``noadapt`` / ``masktwins`` runs are those of ``benchmarks/demo_seeds.py`` (run it
first, same ``--out``). Every run is scored with its EMA and last-student weights on the held-out
synthetic target (WASPSYN F1, AdaSyn points); the report gives per-seed paired differences
against noadapt continued. The variants were fixed before any of them was scored; a default is
changed only when a variant beats the demo's masktwins on every seed. Resumable: a variant whose
scores exist is read, not retrained. Usage::

    .venv/bin/python benchmarks/synapse_variants.py --out runs/demo_seeds --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from masktwins3d.atomic import atomic_write_json  # noqa: E402
from masktwins3d.demo import ADAPT_ITERATIONS, ADAPT_SETTINGS, WEIGHTS  # noqa: E402
from masktwins3d.evaluate.paired import format_difference, paired_difference  # noqa: E402

VARIANTS = {
    # the teacher's false positives are taught 30x as hard as its negatives: plain BCE in L_cl
    "cl_pos_weight_1": ["loss.cl_pos_weight=[1.0]"],
    # masked views of objects a few voxels wide: larger cells (b = crop / 8) leave whole synapses visible
    "patch_6": ["mask.patch=6"],
    # no masks at all: mean-teacher self-training on the full target crop (is masking the cause?)
    "no_mask": ["mask.kind=none", "loss.cm=false"],
    # no cross-mask consistency (L_cl on both views only)
    "no_cm": ["loss.cm=false"],
    # per-class confidence thresholds (CBST): more positives teach when the teacher is unsure of them
    "class_balanced": ["loss.threshold_rule=class_balanced"],
}


def run_variant(seed_dir: Path, name: str, seed: int, iterations: int) -> dict:
    """Both weights' F1 and point counts of one variant for one seed, training it if needed."""
    from masktwins3d.config import load_config
    from masktwins3d.evaluate.synapse import score_synapses
    from masktwins3d.inference.checkpoint import predict_with_checkpoint
    from masktwins3d.io.points import read_points
    from masktwins3d.postprocess.synapse import probabilities_to_points
    from masktwins3d.train import train

    report = json.loads((seed_dir / "report.json").read_text())["synapse"]
    run_dir = seed_dir / "synapse" / f"variant_{name}"
    scores = run_dir / "variant_scores.json"
    if scores.is_file():
        return json.loads(scores.read_text())
    data = report["data"]
    overrides = [
        "method=masktwins", f"train.out_dir={run_dir}", f"train.seed={seed}", f"optim.iterations={iterations}",
        f"train.init={seed_dir / 'synapse' / 'source' / 'checkpoint.pt'}", "loss.target_start=0", *ADAPT_SETTINGS["synapse"],
        f"data.source.raw={data['source_train']['raw']}", f"data.source.points={data['source_train']['points']}",
        f"data.target.raw={data['target_train']['raw']}", *VARIANTS[name],
    ]
    run = load_config(report["config"], overrides)
    ckpt = train(run, overwrite=True)  # a killed run restarts
    gt = read_points(data["target_test"]["points"])
    result = {}
    for w in WEIGHTS:
        prob = predict_with_checkpoint(ckpt, data["target_test"]["raw"], run_dir / f"prob_{w}.zarr", patch_size=tuple(run.data.crop),
                                       overlap=0.25, progress=False, weights=w, overwrite=True)
        points = probabilities_to_points(np.asarray(prob[:]))
        s = score_synapses(points, gt)
        result[w] = {"f1": float(s["f1"]), "f1_pre": float(s["f1_pre"]), "f1_post": float(s["f1_post"]),
                     "n_pre": int(len(points.pre)), "n_post": int(len(points.post))}
    atomic_write_json(scores, result)
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="runs/demo_seeds", help="the demo_seeds.py folder (default: runs/demo_seeds)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    args = p.parse_args()
    out = Path(args.out)
    reports = {}
    for seed in args.seeds:
        path = out / f"seed{seed}" / "report.json"
        if not path.is_file():
            raise SystemExit(f"{path} is missing; run benchmarks/demo_seeds.py --out {out} first")
        reports[seed] = json.loads(path.read_text())["synapse"]
    results = {m: {s: reports[s]["methods"][m] for s in args.seeds} for m in ("noadapt", "masktwins")}
    results["source"] = {s: reports[s]["source"]["scores"] for s in args.seeds}
    for name in args.variants:
        results[name] = {}
        for seed in args.seeds:
            r = run_variant(out / f"seed{seed}", name, seed, reports[seed].get("adapt_iterations") or ADAPT_ITERATIONS["synapse"])
            results[name][seed] = r
            print(f"seed {seed} {name:<16} " + "  ".join(f"{w} F1 {r[w]['f1']:.3f} ({r[w]['n_pre']}/{r[w]['n_post']})" for w in WEIGHTS), flush=True)
    gt = reports[args.seeds[0]]["gt"]
    print(f"\nsynapse variants, held-out synthetic target, F1 mean over seeds {args.seeds}; ground truth "
          f"{gt['n_pre']} pre / {gt['n_post']} post (seed {args.seeds[0]})")
    print(f"{'run':<18}" + "".join(f"{w + ' F1':>11}" for w in WEIGHTS) + "   minus noadapt (EMA), mean [95 % t]   minus masktwins (EMA)")
    paired = {}
    for name, by_seed in results.items():
        row = f"{name:<18}" + "".join(f"{np.mean([by_seed[s][w]['f1'] for s in args.seeds]):>11.3f}" for w in WEIGHTS)
        vals = [by_seed[s]["ema"]["f1"] for s in args.seeds]
        d_no = paired_difference(vals, [results["noadapt"][s]["ema"]["f1"] for s in args.seeds])
        d_mt = paired_difference(vals, [results["masktwins"][s]["ema"]["f1"] for s in args.seeds])
        paired[name] = {"minus_noadapt": d_no, "minus_masktwins": d_mt}
        print(row + "   " + format_difference(d_no, 1, 3) + "   " + format_difference(d_mt, 1, 3))
    atomic_write_json(out / "synapse_variants.json", {"variants": {k: VARIANTS.get(k, []) for k in results}, "results": results,
                                                      "paired": paired})
    print(f"\nvariants: {out / 'synapse_variants.json'}")


if __name__ == "__main__":
    main()
