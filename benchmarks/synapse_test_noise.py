"""How much of a one-seed synapse score is the test volume: re-score trained synapse models on
further independent draws of their held-out target volume.

No training. For every run folder given (one seed each: ``source/``, ``noadapt/``, ``masktwins/``
and ``oracle/`` with a ``checkpoint.pt``, as ``demo_seeds`` and ``synapse_calibration`` leave
them), the seed's target test volume is drawn again ``--draws`` times at ``--small-shape`` (the demo's
size when this was measured, 64 x 128 x 128) and
``--large-draws`` times at ``--large-shape``, from the demo's target style, with seed sequences
``[seed, 100 + k]`` and ``[seed, 200 + k]`` (indices the demo data never use, so no draw equals a
training volume). Every model is scored on every draw with both weights exactly as the demo
scores: sliding-window prediction at the training crop, AdaSyn points, WASPSYN F1.

Reported per seed and size: each model's mean and standard deviation over draws, and the paired
EMA difference masktwins - noadapt per draw. Across seeds: the within-seed standard deviation of
that difference, pooled (root of the mean per-seed variance), which is the test volume's share
of the spread of a one-seed demo figure. Resumable: a score already in ``scores.json`` is read,
not recomputed. Usage::

    .venv/bin/python benchmarks/synapse_test_noise.py --out runs/synapse_test_noise \\
        --run 0=runs/demo_seeds_syn600/seed0/synapse --run 10=runs/syncal_src600/seed10
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from masktwins3d.atomic import atomic_write_json  # noqa: E402
from masktwins3d.demo import WEIGHTS  # noqa: E402
from masktwins3d.evaluate.paired import format_difference, paired_difference  # noqa: E402
from masktwins3d.synth.synapse_demo import SYNAPSE_DEMO_VOLUMES  # noqa: E402

MODELS = ("source", "noadapt", "masktwins", "oracle")
SMALL, LARGE = 100, 200
"""Seed-sequence offsets of the small and the large draws."""
SMALL_SHAPE = (64, 128, 128)
"""The demo's target_test shape when this was measured (it is 64 x 256 x 256 since)."""
DEMO_INDEX = list(SYNAPSE_DEMO_VOLUMES).index("target_test")
"""The demo data's own target_test draw (``[seed, 2]``): with ``--demo-shape``, the volume the demo
scores on when its target_test has that shape."""


def draw(seed: int, index: int, shape, folder: Path, style: str = "syn_target") -> tuple[str, object]:
    """One labelled volume of a synapse style (default the demo's target style) drawn from the seed
    sequence ``[seed, index]`` and written to ``folder``: its raw path and points."""
    from masktwins3d.io import create_volume
    from masktwins3d.io.points import SynapsePoints
    from masktwins3d.synth.synapse import generate_synapse_volume
    from masktwins3d.synth.synapse_style import get_synapse_style

    style = get_synapse_style(style)
    raw, pre, post = generate_synapse_volume(style, tuple(shape), np.random.default_rng(np.random.SeedSequence([seed, index])))
    path = folder / f"{style.name}_draw{index}.zarr"
    vol = create_volume(str(path), raw.shape, raw.dtype, voxel_size=tuple(style.voxel_size), offset=(0, 0, 0))
    vol[...] = raw
    return str(path), SynapsePoints(pre=np.asarray(pre).reshape(-1, 3), post=np.asarray(post).reshape(-1, 4))


def shift_logits(prob: np.ndarray, shift: float) -> np.ndarray:
    """``sigmoid(logit(prob) - shift)``: probabilities with a constant logit bias taken out (``ln w`` for a model
    trained with BCE ``pos_weight`` w); ``prob`` itself when ``shift`` is 0."""
    if shift == 0:
        return prob
    p = np.clip(prob.astype(np.float64), 1e-12, 1 - 1e-12)
    return (1.0 / (1.0 + np.exp(-(np.log(p / (1 - p)) - shift)))).astype(np.float32)


def score(ckpt: Path, raw: str, gt, scratch: Path, shift: float = 0.0) -> dict:
    """Both weights of ``ckpt`` on one volume, as the demo scores them (``shift``: :func:`shift_logits`)."""
    from masktwins3d.config import load_config
    from masktwins3d.evaluate.synapse import score_synapses
    from masktwins3d.inference.checkpoint import predict_with_checkpoint
    from masktwins3d.postprocess.synapse import probabilities_to_points

    crop = tuple(load_config(ckpt.parent / "config.yaml").data.crop)
    out = {}
    for w in WEIGHTS:
        prob = predict_with_checkpoint(ckpt, raw, scratch / f"prob_{w}.zarr", patch_size=crop, overlap=0.25, progress=False,
                                       weights=w, overwrite=True)
        points = probabilities_to_points(shift_logits(np.asarray(prob[:]), shift))
        s = score_synapses(points, gt)
        out[w] = {"f1": float(s["f1"]), "f1_pre": float(s["f1_pre"]), "f1_post": float(s["f1_post"]),
                  "n_pre": int(len(points.pre)), "n_post": int(len(points.post))}
    return out


def score_on_draw(seed: int, index: int, shape, checkpoints: dict[str, Path], out: Path, shift: float = 0.0) -> tuple[dict, object]:
    """Every checkpoint of ``checkpoints`` (name: path) scored (:func:`score`) on the target draw ``[seed, index]`` of
    ``shape``, written to a scratch folder under ``out`` and removed afterwards; ``(scores by name, the draw's points)``."""
    scratch = Path(tempfile.mkdtemp(prefix="syndraw_", dir=out))
    try:
        raw, gt = draw(seed, index, shape, scratch)
        return {name: score(ckpt, raw, gt, scratch, shift) for name, ckpt in checkpoints.items()}, gt
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def summarise(results: dict) -> dict:
    """Per seed and size: mean / sd per model and weights, the paired EMA difference per draw; and the pooled
    within-seed sd of that difference per size."""
    out, pooled = {}, {}
    for seed, sizes in results.items():
        out[seed] = {}
        for size, every in sizes.items():
            draws = {k: d for k, d in every.items() if int(k) != DEMO_INDEX and set(MODELS) <= set(d["scores"])}
            if not draws:
                continue
            entry = {"n_draws": len(draws), "n_pre_gt": [d["gt"]["n_pre"] for d in draws.values()]}
            for m in MODELS:
                for w in WEIGHTS:
                    v = np.array([d["scores"][m][w]["f1"] for d in draws.values()])
                    entry[f"{m}_{w}"] = {"mean": float(v.mean()), "sd": float(v.std(ddof=1)) if len(v) > 1 else None}
            diff = np.array([d["scores"]["masktwins"]["ema"]["f1"] - d["scores"]["noadapt"]["ema"]["f1"] for d in draws.values()])
            entry["masktwins - noadapt (ema)"] = {"per_draw": diff.tolist(), "mean": float(diff.mean()),
                                                 "sd": float(diff.std(ddof=1)) if len(diff) > 1 else None}
            out[seed][size] = entry
            if len(diff) > 1:
                pooled.setdefault(size, []).append(float(diff.var(ddof=1)))
    def across_seeds(size: str) -> dict:  # per seed: the two models' mean EMA F1 over its draws
        seeds = [s for s in out if size in out[s]]
        return paired_difference([out[s][size]["masktwins_ema"]["mean"] for s in seeds],
                                 [out[s][size]["noadapt_ema"]["mean"] for s in seeds])

    return {"per_seed": out, "pooled_sd": {size: float(np.sqrt(np.mean(v))) for size, v in pooled.items()},
            "seeds_mean_difference": {size: across_seeds(size) for size in pooled}}


def add_run_arguments(p: argparse.ArgumentParser, out_help: str) -> None:
    """``--run SEED=DIR`` (repeatable) and ``--out``, as both synapse re-scoring benchmarks take them."""
    p.add_argument("--run", action="append", required=True, metavar="SEED=DIR",
                   help="a seed and its run folder (source/, noadapt/, masktwins/, oracle/ with checkpoint.pt); repeat")
    p.add_argument("--out", type=Path, required=True, help=out_help)


def run_folders(items: list[str], models, out: Path) -> dict[int, Path]:
    """``{seed: folder}`` from ``--run SEED=DIR`` items, each folder holding ``models``' checkpoints; exits with one
    line on a malformed item, a missing checkpoint, or an ``out`` that is or lies inside a run folder."""
    runs = {}
    for item in items:
        seed, _, folder = item.partition("=")
        if not seed.isdigit() or not folder:
            sys.exit(f"--run {item!r} is not SEED=DIR; give e.g. --run 0=runs/demo_seeds/seed0/synapse")
        missing = [m for m in models if not (Path(folder) / m / "checkpoint.pt").is_file()]
        if missing:
            sys.exit(f"--run {item}: no {Path(folder) / missing[0] / 'checkpoint.pt'}; give a folder a synapse run left")
        runs[int(seed)] = Path(folder)
    if any(out.resolve() == f.resolve() or out.resolve().is_relative_to(f.resolve()) for f in runs.values()):
        sys.exit(f"--out {out} lies inside a run folder; choose a folder outside them")
    return runs


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_arguments(p, "folder for scores.json and summary.json")
    p.add_argument("--draws", type=int, default=8, help="draws at --small-shape (default 8)")
    p.add_argument("--large-draws", type=int, default=2, help="draws at --large-shape (default 2)")
    p.add_argument("--small-shape", type=int, nargs=3, default=SMALL_SHAPE, metavar=("Z", "Y", "X"),
                   help="shape of the --draws volumes (default 64 128 128: the demo's held-out target when measured)")
    p.add_argument("--large-shape", type=int, nargs=3, default=(64, 256, 256), metavar=("Z", "Y", "X"))
    p.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS),
                   help="the run folders' models to score (default all; the summary needs all four)")
    p.add_argument("--logit-shift", type=float, default=0.0,
                   help="take this constant out of the logits before extracting points (ln 30 = 3.4012 for the "
                        "demo's pos_weight; default 0: the demo's scoring); use its own --out")
    p.add_argument("--demo-shape", type=int, nargs=3, metavar=("Z", "Y", "X"),
                   help="also score the demo data's own target_test draw at this shape (what the demo reports "
                        "when its target_test has it; kept apart from the noise summary)")
    args = p.parse_args()
    runs = run_folders(args.run, args.models, args.out)
    args.out.mkdir(parents=True, exist_ok=True)
    cache = args.out / "scores.json"
    settings = {"logit_shift": args.logit_shift}
    held = json.loads((args.out / "settings.json").read_text()) if (args.out / "settings.json").is_file() else settings
    if held != settings:
        sys.exit(f"{args.out} holds scores with {held}; use another --out for {settings}")
    atomic_write_json(args.out / "settings.json", settings)
    results = json.loads(cache.read_text()) if cache.is_file() else {}
    small = tuple(args.small_shape)
    plan = [(SMALL + k, small) for k in range(args.draws)] + [(LARGE + k, tuple(args.large_shape)) for k in range(args.large_draws)]
    if args.demo_shape:
        plan.append((DEMO_INDEX, tuple(args.demo_shape)))
    for seed, folder in runs.items():
        for index, shape in plan:
            size = "x".join(map(str, shape))
            done = results.get(str(seed), {}).get(size, {}).get(str(index), {}).get("scores", {})
            todo = [m for m in args.models if m not in done]
            if not todo:
                continue
            new, gt = score_on_draw(seed, index, shape, {m: folder / m / "checkpoint.pt" for m in todo}, args.out, args.logit_shift)
            scores = {**done, **new}
            entry = {"shape": list(shape), "gt": {"n_pre": int(len(gt.pre)), "n_post": int(len(gt.post_zyx))}, "scores": scores}
            results.setdefault(str(seed), {}).setdefault(size, {})[str(index)] = entry
            atomic_write_json(cache, results)
            print(f"seed {seed} draw {index} {size}: {len(gt.pre)} pre; EMA F1 " + ", ".join(
                f"{m} {scores[m]['ema']['f1']:.3f}" for m in MODELS if m in scores), flush=True)
    if set(args.models) != set(MODELS):
        return
    summary = summarise(results)
    summary["demo_draw"] = {seed: {size: d[str(DEMO_INDEX)] for size, d in sizes.items() if str(DEMO_INDEX) in d}
                            for seed, sizes in results.items()}
    atomic_write_json(args.out / "summary.json", summary)
    for size, sd in summary["pooled_sd"].items():
        print(f"{size}: within-seed sd of EMA masktwins - noadapt, pooled over {len(runs)} seeds: {sd:.3f}; "
              f"seed means {format_difference(summary['seeds_mean_difference'][size], scale=1.0, digits=3)}")


if __name__ == "__main__":
    main()
