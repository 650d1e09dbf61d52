"""Point thresholds chosen on held-out *source* data: do they fix the synapse models' over-prediction
on the target?

No training. For every run folder given (``source/``, ``noadapt/``, ``masktwins/``, ``oracle/``
with a ``checkpoint.pt``), each model's two weights predict a held-out source volume (a fresh
draw of the demo's source style, seed sequence ``[seed, 300]``, 64 x 256 x 256: source labels
only, which a user has) and the demo's held-out target (``[seed, 2]`` at the same shape). The
point thresholds (delta_pre, delta_pre - 0.1) are chosen from :data:`GRID` as those with the
highest WASPSYN F1 on the source volume (ties: the first in grid order, which starts at
AdaSyn's 0.75), and the target is scored with them and with AdaSyn's (0.75, 0.65). Target F1
at every grid point is kept for the record only; nothing is chosen on it. Resumable per model
and weights. Usage::

    .venv/bin/python benchmarks/synapse_source_thresholds.py --out runs/synapse_source_thresholds \\
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

from synapse_test_noise import DEMO_INDEX, MODELS, add_run_arguments, draw, run_folders  # noqa: E402

GRID = (0.75, 0.85, 0.9, 0.95, 0.98)
"""delta_pre candidates; delta_post is delta_pre - 0.1, AdaSyn's gap (0.75 / 0.65 is the first)."""
SHAPE = (64, 256, 256)
SOURCE_INDEX = 300


def curve(prob: np.ndarray, gt) -> list[dict]:
    """WASPSYN F1 and pre-point count at every grid point."""
    from masktwins3d.evaluate.synapse import score_synapses
    from masktwins3d.postprocess.synapse import probabilities_to_points

    out = []
    for d in GRID:
        points = probabilities_to_points(prob, thresholds=(d, round(d - 0.1, 4)))
        out.append({"delta_pre": d, "f1": float(score_synapses(points, gt)["f1"]), "n_pre": int(len(points.pre))})
    return out


def model_row(ckpt: Path, volumes: dict, scratch: Path) -> dict:
    """Per weights: the source and target curves, the thresholds chosen on the source, the target F1 at them."""
    from masktwins3d.config import load_config
    from masktwins3d.inference.checkpoint import predict_with_checkpoint

    crop = tuple(load_config(ckpt.parent / "config.yaml").data.crop)
    row = {}
    for w in WEIGHTS:
        curves = {}
        for name, (raw, gt) in volumes.items():
            prob = predict_with_checkpoint(ckpt, raw, scratch / f"prob_{name}_{w}.zarr", patch_size=crop, overlap=0.25,
                                           progress=False, weights=w, overwrite=True)
            curves[name] = curve(np.asarray(prob[:]), gt)
        best = max(range(len(GRID)), key=lambda i: (curves["source"][i]["f1"], -i))
        row[w] = {"curves": curves, "chosen_delta_pre": GRID[best], "target_f1_adasyn": curves["target"][0]["f1"],
                  "target_f1_chosen": curves["target"][best]["f1"], "target_n_pre_chosen": curves["target"][best]["n_pre"]}
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_arguments(p, "folder for scores.json")
    args = p.parse_args()
    runs = run_folders(args.run, MODELS, args.out)
    args.out.mkdir(parents=True, exist_ok=True)
    cache = args.out / "scores.json"
    results = json.loads(cache.read_text()) if cache.is_file() else {}
    for seed, folder in runs.items():
        if all(m in results.get(str(seed), {}) for m in MODELS):
            continue
        scratch = Path(tempfile.mkdtemp(prefix="synthr_", dir=args.out))
        try:
            volumes = {"source": draw(seed, SOURCE_INDEX, SHAPE, scratch, "syn_source"), "target": draw(seed, DEMO_INDEX, SHAPE, scratch)}
            for m in MODELS:
                if m not in results.get(str(seed), {}):
                    results.setdefault(str(seed), {})[m] = model_row(folder / m / "checkpoint.pt", volumes, scratch)
                    atomic_write_json(cache, results)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        r = results[str(seed)]
        print(f"seed {seed}: EMA target F1 AdaSyn -> source-chosen (delta_pre): " + ", ".join(
            f"{m} {r[m]['ema']['target_f1_adasyn']:.3f} -> {r[m]['ema']['target_f1_chosen']:.3f} ({r[m]['ema']['chosen_delta_pre']})"
            for m in MODELS), flush=True)
    seeds = [str(s) for s in runs]
    for key in ("target_f1_adasyn", "target_f1_chosen"):
        diff = paired_difference([results[s]["masktwins"]["ema"][key] for s in seeds], [results[s]["noadapt"]["ema"][key] for s in seeds])
        print(f"masktwins - noadapt (EMA), {key}: {format_difference(diff, 1.0, 3)}")
    for m in MODELS:
        diff = paired_difference([results[s][m]["ema"]["target_f1_chosen"] for s in seeds], [results[s][m]["ema"]["target_f1_adasyn"] for s in seeds])
        print(f"{m}: source-chosen - AdaSyn thresholds (EMA): {format_difference(diff, 1.0, 3)}")


if __name__ == "__main__":
    main()
