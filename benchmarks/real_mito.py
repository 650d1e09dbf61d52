"""Real-data adaptation benchmark: VNC III stack1 -> CDeep3M mitochondria, five methods, several seeds.

Source: VNC III ``stack1`` (serial-section TEM of Drosophila larval VNC, raw + mito labels;
Gerhard et al. 2013, CC BY-NC-SA 3.0). Target: the CDeep3M mitochondria sample (SBEM of
mammalian neuropil; Haberl et al. 2018): ``train_raw`` without labels for adaptation,
``val_raw`` / ``val_mito`` for scoring only, ``train_mito`` for the oracle row only. Every method
trains with the same config (``configs/real_mito.yaml``) and seed, predicts ``val_raw`` and is
scored with the DA-ISC ``2d`` protocol (IoU, F1, MCC, mAP per section, averaged).

The protocol is budget-fair: per seed a ``noadapt`` source model is trained first for the
config's iterations; every method (``noadapt`` continued, ``mic``, ``rmask``, ``masktwins``,
``oracle``) then starts from its EMA weights (``train.init``) for the same ``--adapt-iterations``.
Every run is scored with its last student and its EMA weights, and the table gives paired
per-seed differences with 95 % intervals. Nothing is selected on ``val_mito``: the config is
fixed before the run and the last checkpoint is scored; ``--snapshot-every`` keeps weights for
learning curves, scored after training for the plot only.

Usage (hours on 2 CPU cores; resumable, run it in the background)::

    .venv/bin/python benchmarks/real_mito.py --data ../shared/data --seeds 0 1 2 --jobs 2 --resume

Without the data folder it prints one line and exits 0. ``--resume`` reuses runs that finished
(their ``scores.json``); ``--overwrite`` replaces the output folder.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from masktwins3d.atomic import atomic_write_json, atomic_write_text  # noqa: E402
from masktwins3d.demo import METHODS, WEIGHTS  # noqa: E402
from masktwins3d.evaluate.paired import format_difference, paired_difference  # noqa: E402

METRICS = ("iou", "f1", "mcc", "map")
# Methods cost different amounts per step; the dearest start first so parallel jobs end together.
COST = {"masktwins": 4, "rmask": 3, "mic": 3, "noadapt": 1, "oracle": 1}


def default_data() -> Path:
    return Path(os.environ.get("MASKTWINS3D_DATA", ROOT.parent / "shared" / "data"))


def prepare_scaled(data: Path, folder: Path, scale: float) -> dict[str, str]:
    """Down-sample the five volumes in-plane by ``scale`` into ``folder`` (once); their specs by role."""
    from masktwins3d.data.resample import resample_volume
    from masktwins3d.io import open_volume
    from masktwins3d.io.datasets import load_dataset

    vnc, cd = load_dataset("vnc3", data).split("stack1"), load_dataset("cdeep3m", data)
    volumes = {
        "source_raw": (vnc.raw, False), "source_label": (vnc.labels["mito"], True),
        "target_raw": (cd.split("train").raw, False), "target_label": (cd.split("train").labels["mito"], True),
        "val_raw": (cd.split("val").raw, False),
    }
    specs = {}
    for role, (vol, labels) in volumes.items():
        spec = str(folder / f"{role}.zarr")
        if not (folder / f"{role}.zarr").exists():
            resample_volume(vol.open(), spec + ".tmp", (scale, scale), labels=labels, out_dtype="uint8")
            (folder / f"{role}.zarr.tmp").rename(folder / f"{role}.zarr")
        specs[role] = spec
        open_volume(spec)  # readable
    return specs


def one_run(config: str, data: str, out: str, method: str, seed: int, overrides: list[str], threads: int,
            patch: int, resume: bool, scaled: dict | None = None, val_voxel_size=None) -> dict:
    """Train ``method`` with ``seed``, predict CDeep3M val_raw with both weights, score them; the
    scores (also in out/scores.json): ``{weights: {metric: value, pred_fg}, ...}``.

    ``scaled``: specs of the down-sampled volumes (:func:`prepare_scaled`); prediction then runs
    on the down-sampled val_raw and its probabilities are up-sampled onto val_raw's grid to be scored.
    ``val_voxel_size``: the voxel size val_raw is read with (CDeep3M records none), so that prediction
    resamples it to the checkpoint's and back, as ``masktwins3d predict --voxel-size`` does."""
    import torch

    from masktwins3d.config import load_config
    from masktwins3d.evaluate.report import write_mito_report
    from masktwins3d.io.datasets import load_dataset
    from masktwins3d.train import train

    out_dir = Path(out)
    scores_path = out_dir / "scores.json"
    if resume and scores_path.is_file():
        return json.loads(scores_path.read_text())
    torch.set_num_threads(threads)
    scaled_data = [] if scaled is None else [
        f"data.source.raw={scaled['source_raw']}", f"data.source.label={scaled['source_label']}",
        f"data.target.raw={scaled['target_raw']}", f"data.target.label={scaled['target_label']}"]
    run = load_config(config, [f"method={method}", f"train.seed={seed}", f"train.out_dir={out_dir}", f"data.root={data}",
                               "train.progress=false", f"train.threads={threads}", *scaled_data, *overrides])
    t = time.perf_counter()
    from masktwins3d.adapt.trainer import CHECKPOINT

    if resume and (out_dir / CHECKPOINT).is_file() and int(torch.load(
            out_dir / CHECKPOINT, weights_only=True, map_location="cpu")["step"]) >= run.optim.iterations:
        ckpt = out_dir / CHECKPOINT  # trained, not yet scored
    elif resume and (out_dir / CHECKPOINT).is_file():
        ckpt = train(run, resume=True)
    else:
        ckpt = train(run, overwrite=True)
    train_s = time.perf_counter() - t
    val = load_dataset("cdeep3m", data).split("val")
    t = time.perf_counter()
    scores = {w: score_checkpoint(ckpt, w, out_dir / f"prob_val_{w}.zarr", val, patch, threads, scaled, val_voxel_size)
              for w in WEIGHTS}
    for w in WEIGHTS:
        write_mito_report(scores[w].pop("result"), out_dir / f"val_scores_{w}.json", out_dir / f"val_scores_{w}.csv", overwrite=True)
    scores.update(method=method, seed=seed, train_seconds=train_s, predict_seconds=time.perf_counter() - t,
                  iterations=run.optim.iterations, crop=list(run.data.crop), widths=list(run.model.widths), init=run.train.init)
    atomic_write_json(scores_path, scores)
    return scores


def score_checkpoint(ckpt, weights: str, prob: Path, val, patch: int, threads: int, scaled: dict | None,
                     val_voxel_size=None) -> dict:
    """Predict CDeep3M val_raw with ``weights`` of ``ckpt`` and score it (DA-ISC 2d); also the
    label-free fraction of val_raw predicted as mitochondria (VNC III's labels hold 5.4 %)."""
    import shutil

    from masktwins3d.evaluate.mito import evaluate_mito
    from masktwins3d.inference.checkpoint import predict_with_checkpoint
    from masktwins3d.io import open_volume

    if scaled is None:
        source = val.raw.path if val_voxel_size is None else open_volume(val.raw.path, voxel_size=tuple(val_voxel_size))
        predict_with_checkpoint(ckpt, source, prob, patch_size=(patch, patch), overlap=0.25, overwrite=True,
                                progress=False, threads=threads, weights=weights)
    else:
        from masktwins3d.data.resample import resample_volume

        small_path = prob.parent / (prob.stem + "_scaled.zarr")
        small = predict_with_checkpoint(ckpt, scaled["val_raw"], small_path, patch_size=(patch, patch),
                                        overlap=0.25, overwrite=True, progress=False, threads=threads, weights=weights)
        f = open_volume(scaled["val_raw"]).shape[-1] / val.raw.open().shape[-1]
        shutil.rmtree(prob, ignore_errors=True)
        resample_volume(small, str(prob), (1 / f, 1 / f), like=val.raw.open())
        shutil.rmtree(small_path, ignore_errors=True)
    pred = open_volume(str(prob))
    pred_fg = float(np.mean([np.mean(np.asarray(pred[0, z]) >= 0.5) for z in range(pred.shape[1])]))
    result = evaluate_mito(pred, val.labels["mito"].open(), mode="2d")
    return {**{k: float(result[k]) for k in METRICS}, "pred_fg": pred_fg, "result": result}


PAIRS = (("masktwins", "noadapt"), ("masktwins", "rmask"), ("rmask", "noadapt"), ("mic", "noadapt"), ("oracle", "noadapt"))


def summarise(rows: list[dict], methods) -> dict:
    """Per method and weights: mean and sample sd over seeds of each metric (fractions), the share
    of the noadapt -> oracle IoU gap recovered; per pair of methods: paired per-seed IoU differences."""
    out: dict = {"table": {}, "paired": {}}
    seeds = sorted({r["seed"] for r in rows})
    by = {(r["method"], r["seed"]): r for r in rows}
    for m in methods:
        sel = [by[m, s] for s in seeds if (m, s) in by]
        if not sel:
            continue
        out["table"][m] = {}
        for w in WEIGHTS:
            cell = {k: {"mean": float(np.mean([r[w][k] for r in sel])),
                        "sd": float(np.std([r[w][k] for r in sel], ddof=1)) if len(sel) > 1 else 0.0} for k in (*METRICS, "pred_fg")}
            cell["n"] = len(sel)
            out["table"][m][w] = cell
    t = out["table"]
    if {"noadapt", "oracle"} <= t.keys():
        for w in WEIGHTS:
            gap = t["oracle"][w]["iou"]["mean"] - t["noadapt"][w]["iou"]["mean"]
            for m in t:
                t[m][w]["gap_recovered"] = (t[m][w]["iou"]["mean"] - t["noadapt"][w]["iou"]["mean"]) / gap if gap > 0 else float("nan")
    for a, b in PAIRS:
        common = [s for s in seeds if (a, s) in by and (b, s) in by]
        if common:
            out["paired"][f"{a} - {b}"] = {w: paired_difference([by[a, s][w]["iou"] for s in common], [by[b, s][w]["iou"] for s in common])
                                           for w in WEIGHTS}
    return out


def format_table(summary: dict) -> str:
    head = "| method | weights | IoU | F1 | MCC | mAP | predicted mito | gap recovered |"
    lines = [head, "|---|---|---|---|---|---|---|---|"]
    for m, by_w in summary["table"].items():
        for w, s in by_w.items():
            cells = [f"{100 * s[k]['mean']:.1f} ± {100 * s[k]['sd']:.1f}" for k in METRICS]
            gap = s.get("gap_recovered")
            lines.append(f"| {m} | {w} | " + " | ".join(cells) + f" | {100 * s['pred_fg']['mean']:.1f} % | {'' if gap is None else f'{100 * gap:.0f} %'} |")
    lines.append("")
    lines.append("| pair | weights | IoU difference, points: mean [95 % t interval] (per seed) |")
    lines.append("|---|---|---|")
    for pair, by_w in summary["paired"].items():
        for w, d in by_w.items():
            lines.append(f"| {pair} | {w} | {format_difference(d)} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=default_data(), help="folder with vnc3_stack1.h5 and cdeep3m_mito.h5 (default: $MASKTWINS3D_DATA or ../shared/data)")
    p.add_argument("--config", default=str(ROOT / "configs" / "real_mito.yaml"))
    p.add_argument("--out", type=Path, default=Path("runs/real_mito"))
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--adapt-iterations", type=int, default=400,
                   help="iterations of every method after the source model, from its EMA weights (default 400)")
    p.add_argument("--snapshot-every", type=int, default=0, help="keep weights every N iterations for learning curves (default 0: none)")
    p.add_argument("--jobs", type=int, default=2, help="runs in parallel (each gets cores / jobs torch threads)")
    p.add_argument("--patch", type=int, default=256, help="prediction window edge (default 256)")
    p.add_argument("--scale", type=float, default=0.5,
                   help="down-sample both domains in-plane by this factor before training (e.g. 0.5: 9.2 nm VNC III pixels); "
                        "predictions are up-sampled back and scored on val_raw's own grid (default 0.5; 1: native)")
    p.add_argument("--target-voxel-size", type=float, nargs=3, default=None, metavar=("Z", "Y", "X"),
                   help="CDeep3M's voxel size in nm, which its file does not record (with --scale 1: it is given to "
                        "training as data.target.voxel_size and val_raw is read with it, so data.train_voxel_size "
                        "can zoom the target too)")
    p.add_argument("--set", dest="overrides", nargs="*", default=[], metavar="KEY=VALUE", help="config overrides for every run")
    p.add_argument("--resume", action="store_true", help="reuse runs that already have scores.json")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out folder")
    args = p.parse_args(argv)

    needed = [args.data / "vnc3_stack1.h5", args.data / "cdeep3m_mito.h5"]
    missing = [str(f) for f in needed if not f.is_file()]
    if missing:
        print(f"skipped: real data not found ({missing[0]}); pass --data DIR or set MASKTWINS3D_DATA")
        return 0
    from masktwins3d.config import load_config

    # every mistake in the arguments stops here, before the output folder is touched
    if not 0 < args.scale <= 1:
        print(f"--scale {args.scale} must be in (0, 1]; e.g. 0.5", file=sys.stderr)
        return 2
    scaled, val_vs = None, args.target_voxel_size
    if val_vs is not None:
        if args.scale != 1.0:
            print("--target-voxel-size goes with --scale 1 (the down-sampled volumes carry no voxel size of CDeep3M's); "
                  "drop one of them", file=sys.stderr)
            return 2
        args.overrides = [*args.overrides, "data.target.voxel_size=[" + ",".join(f"{v:g}" for v in val_vs) + "]"]
    load_config(args.config, [f"data.root={args.data}", *args.overrides])  # bad config or overrides: fail before any run
    if args.out.exists() and any(args.out.iterdir()) and not (args.overwrite or args.resume):
        print(f"{args.out} exists; pass --overwrite to replace it or --resume to reuse finished runs", file=sys.stderr)
        return 2
    if args.overwrite and args.out.exists():
        import shutil

        shutil.rmtree(args.out)
    if args.scale != 1.0:
        (args.out / "volumes").mkdir(parents=True, exist_ok=True)
        scaled = prepare_scaled(args.data, args.out / "volumes", args.scale)
    threads = max(1, (os.cpu_count() or 2) // max(1, args.jobs))
    snap = [f"train.snapshot_every={args.snapshot_every}"] if args.snapshot_every else []
    rows = []
    t0 = time.perf_counter()
    ctx = __import__("multiprocessing").get_context("spawn")

    def report(r: dict) -> None:
        e, st = r["ema"], r["student"]
        print(f"[seed {r['seed']} {r['method']}] IoU ema {100 * e['iou']:.1f} / student {100 * st['iou']:.1f}  "
              f"predicted mito {100 * e['pred_fg']:.1f} %  train {r['train_seconds']:.0f} s, predict {r['predict_seconds']:.0f} s  "
              f"({time.perf_counter() - t0:.0f} s)", flush=True)

    with ProcessPoolExecutor(max_workers=args.jobs, mp_context=ctx) as pool:
        # phase 1: one source model per seed
        futures = {pool.submit(one_run, args.config, str(args.data), str(args.out / f"seed{s}" / "source"), "noadapt", s,
                               args.overrides + snap, threads, args.patch, args.resume, scaled, val_vs): s for s in args.seeds}
        sources = {}
        for fut in as_completed(futures):
            r = fut.result()
            r["method"] = "source"
            sources[futures[fut]] = r
            report(r)
        # phase 2: every method from the seed's source model, the same further iterations
        jobs = sorted(((s, m) for s in args.seeds for m in args.methods), key=lambda sm: (-COST[sm[1]], sm[0]))
        futures = {}
        for s, m in jobs:
            init = args.out / f"seed{s}" / "source" / "checkpoint.pt"
            extra = [f"train.init={init}", "loss.target_start=0", f"optim.iterations={args.adapt_iterations}"]
            futures[pool.submit(one_run, args.config, str(args.data), str(args.out / f"seed{s}" / m), m, s,
                                args.overrides + snap + extra, threads, args.patch, args.resume, scaled, val_vs)] = (s, m)
        for fut in as_completed(futures):
            r = fut.result()
            rows.append(r)
            report(r)
    summary = summarise(rows, args.methods)
    summary["source"] = {s: {w: r[w] for w in WEIGHTS} for s, r in sources.items()}
    result = {"config": args.config, "overrides": args.overrides, "scale": args.scale, "target_voxel_size": val_vs,
              "seeds": args.seeds, "summary": summary,
              "adapt_iterations": args.adapt_iterations, "runs": sorted(rows, key=lambda r: (r["method"], r["seed"])),
              "seconds": time.perf_counter() - t0, "jobs": args.jobs}
    atomic_write_json(args.out / "summary.json", result)
    table = format_table(summary)
    atomic_write_text(args.out / "table.md", table + "\n")
    print(f"\nVNC III stack1 -> CDeep3M val, DA-ISC 2d, {len(args.seeds)} seed(s), % mean ± sd")
    print(table)
    print(f"total {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
