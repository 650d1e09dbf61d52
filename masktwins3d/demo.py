"""The embedded demo: synthetic source -> target adaptation, five methods, one table.

Generates synthetic EM volumes with a domain shift (:mod:`masktwins3d.synth`), trains
``noadapt``, ``mic``, ``rmask``, ``masktwins`` and ``oracle`` with the same config, budget and
seed, predicts the held-out target volume, scores it with the DA-ISC 2d protocol and writes
``report.json`` and ``errors.png`` (false negatives red, false positives green).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np

from .atomic import atomic_write, atomic_write_json
from .errors import UserError

METHODS = ("noadapt", "mic", "rmask", "masktwins", "oracle")
PROJECT_ROOT = Path(__file__).resolve().parents[1]


def default_config() -> Path:
    """``configs/mito_demo.yaml`` of the working folder, else of the source checkout."""
    for base in (Path.cwd(), PROJECT_ROOT):
        path = base / "configs" / "mito_demo.yaml"
        if path.is_file():
            return path
    raise UserError("configs/mito_demo.yaml not found; run the demo from the masktwins3d checkout or pass --config")


def format_table(scores: dict[str, dict], seconds: dict[str, float] | None = None) -> str:
    """Methods x (IoU, F1, MCC, mAP) in percent, as a plain-text table."""
    head = f"{'method':<11}{'IoU':>8}{'F1':>8}{'MCC':>8}{'mAP':>8}" + (f"{'train s':>10}" if seconds else "")
    lines = [head, "-" * len(head)]
    for name, s in scores.items():
        row = f"{name:<11}" + "".join(f"{100 * s[k]:>8.1f}" for k in ("iou", "f1", "mcc", "map"))
        if seconds:
            row += f"{seconds.get(name, float('nan')):>10.0f}"
        lines.append(row)
    return "\n".join(lines)


def error_overlay(raw: np.ndarray, prob: np.ndarray, gt: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """RGB uint8 of a section: grey image, false negatives red, false positives green (paper Fig. 3)."""
    grey = raw.astype(np.float32)
    grey = (grey - grey.min()) / max(float(np.ptp(grey)), 1e-6)
    rgb = np.repeat((grey * 255).astype(np.uint8)[..., None], 3, axis=-1)
    pred, truth = prob >= threshold, gt > 0
    rgb[truth & ~pred] = (255, 0, 0)
    rgb[pred & ~truth] = (0, 255, 0)
    return rgb


def save_error_figure(path: Path, raw: np.ndarray, gt: np.ndarray, probs: dict[str, np.ndarray], scores: dict, z: int) -> None:
    """One row: the target section with its labels, then each method's errors."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(probs) + 1
    fig, axes = plt.subplots(1, n, figsize=(3 * n, 3.3))
    axes[0].imshow(raw, cmap="gray")
    axes[0].contour(gt > 0, levels=[0.5], colors="yellow", linewidths=0.6)
    axes[0].set_title(f"target z={z}, labels")
    for ax, (name, prob) in zip(axes[1:], probs.items()):
        ax.imshow(error_overlay(raw, prob, gt))
        ax.set_title(f"{name}  IoU {100 * scores[name]['iou']:.1f}")
    for ax in axes:
        ax.set_axis_off()
    fig.suptitle("false negatives red, false positives green", fontsize=9)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    plt.close(fig)


def run_demo(
    config: str | Path | None = None,
    data_dir: Path = Path("volumes/demo"),
    out_dir: Path = Path("runs/demo"),
    methods=None,
    seed: int = 0,
    iterations: int | None = None,
    overwrite: bool = False,
) -> dict:
    """Run the whole demo and return the report dict (also written to ``out_dir/report.json``)."""
    from .config import load_config
    from .evaluate.mito import evaluate_mito
    from .evaluate.report import write_mito_report
    from .inference.checkpoint import predict_with_checkpoint
    from .io import open_volume
    from .synth import write_demo_data
    from .train import train

    t0 = time.perf_counter()
    methods = tuple(methods or METHODS)
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise UserError(f"--methods {unknown[0]!r} is unknown; choose from {list(METHODS)}")
    config = Path(config) if config else default_config()
    out_dir, data_dir = Path(out_dir), Path(data_dir)
    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
        raise UserError(f"{out_dir} exists; pass --overwrite to replace the demo runs or choose --out")
    if data_dir.exists() and any(data_dir.iterdir()) and not overwrite:
        raise UserError(f"{data_dir} exists; pass --overwrite to regenerate the demo volumes or choose --data")
    base_overrides = [f"train.seed={seed}"] + ([f"optim.iterations={iterations}"] if iterations else [])
    load_config(config, ["method=masktwins", *base_overrides])  # validate the config before long work
    if out_dir.exists():
        shutil.rmtree(out_dir)

    print(f"generating synthetic source and target volumes in {data_dir} ...", flush=True)
    specs = write_demo_data(data_dir, seed=seed, overwrite=overwrite)
    data_overrides = [
        f"data.source.raw={specs['source_train']['raw']}",
        f"data.source.label={specs['source_train']['mito']}",
        f"data.target.raw={specs['target_train']['raw']}",
        f"data.target.label={specs['target_train']['mito']}",
    ]
    test_raw, test_gt = specs["target_test"]["raw"], specs["target_test"]["mito"]

    scores, seconds, probs_paths = {}, {}, {}
    for name in methods:
        run = load_config(config, [f"method={name}", f"train.out_dir={out_dir / name}", *base_overrides, *data_overrides])
        print(f"\n[{name}] training {run.optim.iterations} iterations, crop {list(run.data.crop)}, batch {run.data.batch_size}, widths {list(run.model.widths)}", flush=True)
        t = time.perf_counter()
        ckpt = train(run)
        seconds[name] = time.perf_counter() - t
        prob_path = out_dir / name / "prob_target_test.zarr"
        predict_with_checkpoint(ckpt, test_raw, prob_path, patch_size=(256, 256), overlap=0.25, progress=False)
        result = evaluate_mito(open_volume(str(prob_path)), open_volume(test_gt), mode="2d")
        write_mito_report(result, out_dir / name / "scores.json", out_dir / name / "scores.csv")
        scores[name] = {k: float(result[k]) for k in ("iou", "f1", "mcc", "map")}
        probs_paths[name] = prob_path
        print(f"[{name}] IoU {100 * scores[name]['iou']:.1f}  ({seconds[name]:.0f} s)", flush=True)

    gt_vol, raw_vol = open_volume(test_gt), open_volume(test_raw)
    fg = [float(np.asarray(gt_vol[z]).mean()) for z in range(gt_vol.shape[0])]
    z = int(np.argsort(fg)[len(fg) // 2])
    probs = {name: np.asarray(open_volume(str(p))[0, z], dtype=np.float32) for name, p in probs_paths.items()}
    save_error_figure(out_dir / "errors.png", np.asarray(raw_vol[z]), np.asarray(gt_vol[z]), probs, scores, z)

    total = time.perf_counter() - t0
    report = {
        "mito": {
            "protocol": "da-isc-2d",
            "methods": scores,
            "train_seconds": seconds,
            "config": str(config),
            "seed": seed,
            "data": specs,
        },
        "seconds": total,
    }
    atomic_write_json(out_dir / "report.json", report)
    print("\nheld-out synthetic target, DA-ISC 2d protocol (% , mean over sections)")
    print(format_table(scores, seconds))
    if "noadapt" in scores:
        for name in ("masktwins", "oracle"):
            if name in scores:
                print(f"{name} - noadapt: {100 * (scores[name]['iou'] - scores['noadapt']['iou']):+.1f} IoU points")
    print(f"\nreport: {out_dir / 'report.json'}   errors figure: {out_dir / 'errors.png'}   total {total:.0f} s")
    return report
