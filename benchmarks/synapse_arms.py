"""Score synapse calibration arms on the large held-out target draws and compare each with a
reference model of the same seed, paired over seeds.

No training. An arm is a run folder that ``benchmarks/synapse_calibration.py`` left for one seed
(``<calibration>/seed<S>/<arm>/checkpoint.pt``). Each is scored, both weights, on the seed's
``--large-draws`` target volumes of ``--large-shape`` drawn as ``benchmarks/synapse_test_noise.py``
draws them (seed sequences ``[seed, 200 + k]``, the demo's target style), exactly as the demo
scores: sliding-window prediction at the training crop, AdaSyn points, WASPSYN F1. The reference
models (default the shipped ``masktwins`` and ``noadapt``) are read from a ``synapse_test_noise.py``
``scores.json`` that holds the same draws, so every arm meets them on the same volumes, or, without
``--reference``, are arms scored here (fresh seeds that no earlier measurement holds). Per arm: its
mean F1 over the draws per seed, and the paired difference arm − each reference model over seeds
with its 95 % t-interval.
Resumable: a score already in ``<out>/scores.json`` is read, not recomputed. Usage::

    .venv/bin/python benchmarks/synapse_arms.py --out runs/synapse_arms --reference runs/syn_noise_all/scores.json \\
        --calibration runs/syncal_cm_a runs/syncal_cm_b --arms lambda_cm_1 lambda_cm_10
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
from masktwins3d.demo import WEIGHTS  # noqa: E402
from masktwins3d.evaluate.paired import format_difference, paired_difference  # noqa: E402
from synapse_test_noise import LARGE, score_on_draw  # noqa: E402


def arm_folders(calibrations: list[Path], arms: list[str], out: Path) -> dict[str, dict[int, Path]]:
    """``{arm: {seed: run folder}}`` over every ``seed<S>`` of the calibration folders; exits with one line
    when an arm has no checkpoint for a seed, or ``out`` is or lies inside a calibration folder."""
    found: dict[str, dict[int, Path]] = {a: {} for a in arms}
    for cal in calibrations:
        if out.resolve() == cal.resolve() or out.resolve().is_relative_to(cal.resolve()):
            sys.exit(f"--out {out} lies inside the calibration folder {cal}; choose a folder outside it")
        seeds = sorted(int(d.name[4:]) for d in cal.glob("seed*") if d.name[4:].isdigit())
        if not seeds:
            sys.exit(f"--calibration {cal}: no seed<S> folder; give a folder synapse_calibration.py wrote")
        for seed in seeds:
            for a in arms:
                ckpt = cal / f"seed{seed}" / a / "checkpoint.pt"
                if not ckpt.is_file():
                    sys.exit(f"--calibration {cal}: no {ckpt}; run synapse_calibration.py --variants {a} there first")
                found[a][seed] = ckpt.parent
    return found


def reference_scores(path: Path, model: str, size: str, indices: list[int], seeds: list[int]) -> dict[int, dict]:
    """``{seed: {index: scores}}`` of ``model`` on the large draws, from a synapse_test_noise scores.json."""
    data = json.loads(path.read_text())
    out = {}
    for seed in seeds:
        by_index = data.get(str(seed), {}).get(size, {})
        missing = [i for i in indices if model not in by_index.get(str(i), {}).get("scores", {})]
        if missing:
            sys.exit(f"--reference {path}: no {model} score for seed {seed} draw {missing[0]} at {size}; "
                     f"score it with synapse_test_noise.py first")
        out[seed] = {i: by_index[str(i)]["scores"][model] for i in indices}
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True, help="folder for scores.json and summary.json")
    p.add_argument("--calibration", type=Path, nargs="+", required=True, help="synapse_calibration.py output folders")
    p.add_argument("--arms", nargs="+", required=True, help="variant folders to score (e.g. lambda_cm_1)")
    p.add_argument("--reference", type=Path, default=None,
                   help="a synapse_test_noise.py scores.json with the same draws (without it the reference models "
                        "are arms scored here)")
    p.add_argument("--reference-models", nargs="+", default=["masktwins", "noadapt"],
                   help="the models of --reference (or arms) to compare with (default masktwins noadapt)")
    p.add_argument("--large-draws", type=int, default=2, help="draws per seed (default 2)")
    p.add_argument("--large-shape", type=int, nargs=3, default=(64, 256, 256), metavar=("Z", "Y", "X"))
    args = p.parse_args()
    folders = arm_folders(args.calibration, args.arms, args.out)
    seeds = sorted(next(iter(folders.values())))
    shape = tuple(args.large_shape)
    size = "x".join(map(str, shape))
    indices = [LARGE + k for k in range(args.large_draws)]
    if args.reference is not None:
        refs = {m: reference_scores(args.reference, m, size, indices, seeds) for m in args.reference_models}
    else:
        missing = [m for m in args.reference_models if m not in args.arms]
        if missing:
            sys.exit(f"--reference-models {missing[0]} is not among --arms; add it to --arms or give --reference")
        refs = {}
    args.out.mkdir(parents=True, exist_ok=True)
    cache = args.out / "scores.json"
    results = json.loads(cache.read_text()) if cache.is_file() else {}
    for seed in seeds:
        for index in indices:
            done = results.get(str(seed), {}).get(str(index), {})
            todo = [a for a in args.arms if a not in done]
            if not todo:
                continue
            new, _ = score_on_draw(seed, index, shape, {a: folders[a][seed] / "checkpoint.pt" for a in todo}, args.out)
            done = {**done, **new}
            results.setdefault(str(seed), {})[str(index)] = done
            atomic_write_json(cache, results)
            print(f"seed {seed} draw {index} {size}: EMA F1 " + ", ".join(f"{a} {done[a]['ema']['f1']:.3f}" for a in todo)
                  + " (" + ", ".join(f"{m} {r[seed][index]['ema']['f1']:.3f}" for m, r in refs.items()) + ")", flush=True)
    summary = {"seeds": seeds, "draws": indices, "shape": list(shape),
               "reference": str(args.reference) if args.reference else "arms", "models": {}}
    print(f"\nF1 per seed {seeds}, mean of {len(indices)} draws of {size}; arm - each reference model, EMA, paired over seeds")

    def per_seed(get) -> dict[str, list[float]]:
        return {w: [float(np.mean([get(s, i)[w]["f1"] for i in indices])) for s in seeds] for w in WEIGHTS}

    table = {m: per_seed(lambda s, i, r=r: r[s][i]) for m, r in refs.items()}
    table.update({a: per_seed(lambda s, i, a=a: results[str(s)][str(i)][a]) for a in args.arms})
    for name, scores in table.items():
        entry = {"per_seed": scores}
        if name in args.arms:
            entry["minus"] = {m: {w: paired_difference(scores[w], table[m][w]) for w in WEIGHTS}
                              for m in args.reference_models if m != name}
        summary["models"][name] = entry
        print(f"{name:<26}" + "  ".join(f"{w} " + " ".join(f"{v:.3f}" for v in scores[w]) for w in WEIGHTS))
        for m, d in entry.get("minus", {}).items():
            print(f"{'':<4}- {m:<20}EMA {format_difference(d['ema'], 1, 3)}; student {format_difference(d['student'], 1, 3)}")
    atomic_write_json(args.out / "summary.json", summary)
    print(f"\nsummary: {args.out / 'summary.json'}")


if __name__ == "__main__":
    main()
