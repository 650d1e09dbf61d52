"""The embedded demo: synthetic source -> target adaptation on both tracks, one report.

Mitochondria: generates synthetic EM volumes with a domain shift (:mod:`masktwins3d.synth`),
trains ``noadapt``, ``mic``, ``rmask``, ``masktwins`` and ``oracle`` with the same config, budget
and seed, predicts the held-out target volume, scores it with the DA-ISC 2d protocol and writes
``errors.png`` (false negatives red, false positives green). Synapses: isotropic synthetic
volumes with pre/post points, ``noadapt`` and ``masktwins`` with the 3D ResUNet, prediction,
points by the AdaSyn protocol, scores by the WASPSYN protocol. Both land in ``report.json``.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np

from .atomic import atomic_write, atomic_write_json
from .errors import UserError

METHODS = ("noadapt", "mic", "rmask", "masktwins", "oracle")
SYNAPSE_METHODS = ("noadapt", "masktwins")
TRACKS = ("mito", "synapse")
DEFAULT_TRACKS = TRACKS
PROJECT_ROOT = Path(__file__).resolve().parents[1]


def default_config(name: str = "mito_demo.yaml") -> Path:
    """``configs/<name>`` of the working folder, else of the source checkout."""
    for base in (Path.cwd(), PROJECT_ROOT):
        path = base / "configs" / name
        if path.is_file():
            return path
    raise UserError(f"configs/{name} not found; run the demo from the masktwins3d checkout or pass the config")


def format_synapse_table(scores: dict[str, dict], seconds: dict[str, float] | None = None) -> str:
    """Methods x (F1_pre, F1_post, F1) and point counts, as a plain-text table."""
    head = f"{'method':<11}{'F1_pre':>8}{'F1_post':>9}{'F1':>8}{'pre':>6}{'post':>6}" + (f"{'train s':>10}" if seconds else "")
    lines = [head, "-" * len(head)]
    for name, s in scores.items():
        row = f"{name:<11}{s['f1_pre']:>8.3f}{s['f1_post']:>9.3f}{s['f1']:>8.3f}{s['n_pre']:>6d}{s['n_post']:>6d}"
        if seconds:
            row += f"{seconds.get(name, float('nan')):>10.0f}"
        lines.append(row)
    return "\n".join(lines)


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
    tracks=DEFAULT_TRACKS,
    synapse_config: str | Path | None = None,
    synapse_methods=None,
    synapse_iterations: int | None = None,
    shapes=None,
    synapse_shapes=None,
) -> dict:
    """Run the demo's tracks and return the report dict (also written to ``out_dir/report.json``).

    Args:
        config / synapse_config: training configs (default ``configs/mito_demo.yaml`` and
            ``configs/synapse_demo.yaml``).
        data_dir: where the synthetic volumes go (synapse volumes in ``data_dir/synapse``).
        out_dir: run folder (mito runs in ``out_dir/<method>``, synapse runs in
            ``out_dir/synapse/<method>``).
        methods / synapse_methods: subsets of :data:`METHODS` / :data:`SYNAPSE_METHODS`.
        seed: seed of the data and of every run.
        iterations / synapse_iterations: override the configs' iterations.
        overwrite: replace existing volumes and runs (default: refuse).
        tracks: ``mito``, ``synapse`` or both (default both).
        shapes / synapse_shapes: volume shapes for the generators (default theirs).
    """
    from .config import load_config

    t0 = time.perf_counter()
    tracks = tuple(tracks)
    bad = [t for t in tracks if t not in TRACKS]
    if bad or not tracks:
        raise UserError(f"--tracks {bad[0] if bad else '(none)'!r} is unknown; choose from {list(TRACKS)}")
    methods = tuple(methods or METHODS)
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise UserError(f"--methods {unknown[0]!r} is unknown; choose from {list(METHODS)}")
    synapse_methods = tuple(synapse_methods or SYNAPSE_METHODS)
    unknown = [m for m in synapse_methods if m not in METHODS]
    if unknown:
        raise UserError(f"--synapse-methods {unknown[0]!r} is unknown; choose from {list(METHODS)}")
    config = Path(config) if config else default_config()
    synapse_config = Path(synapse_config) if synapse_config else default_config("synapse_demo.yaml")
    out_dir, data_dir = Path(out_dir), Path(data_dir)
    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
        raise UserError(f"{out_dir} exists; pass --overwrite to replace the demo runs or choose --out")
    if data_dir.exists() and any(data_dir.iterdir()) and not overwrite:
        raise UserError(f"{data_dir} exists; pass --overwrite to regenerate the demo volumes or choose --data")
    seed_override = [f"train.seed={seed}"]
    if "mito" in tracks:  # validate the configs before long work
        load_config(config, ["method=masktwins", *seed_override] + ([f"optim.iterations={iterations}"] if iterations else []))
    if "synapse" in tracks:
        load_config(synapse_config, ["method=masktwins", *seed_override] + ([f"optim.iterations={synapse_iterations}"] if synapse_iterations else []))
    if out_dir.exists():
        shutil.rmtree(out_dir)
    if data_dir.exists() and overwrite:
        shutil.rmtree(data_dir)

    report: dict = {}
    if "mito" in tracks:
        report["mito"] = mito_track(config, data_dir, out_dir, methods, seed, iterations, shapes)
    if "synapse" in tracks:
        report["synapse"] = synapse_track(synapse_config, data_dir / "synapse", out_dir / "synapse", synapse_methods, seed, synapse_iterations, synapse_shapes)
    total = time.perf_counter() - t0
    report["seconds"] = total
    atomic_write_json(out_dir / "report.json", report)
    if "mito" in report:
        m = report["mito"]
        print("\nmitochondria: held-out synthetic target, DA-ISC 2d protocol (%, mean over sections)")
        print(format_table(m["methods"], m["train_seconds"]))
        _print_gains(m["methods"], "iou", "IoU points", 100)
    if "synapse" in report:
        sy = report["synapse"]
        print("\nsynapses: held-out synthetic target, WASPSYN protocol (r_pre 11, r_post 6.5 voxels)")
        print(format_synapse_table(sy["methods"], sy["train_seconds"]))
        _print_gains(sy["methods"], "f1", "F1", 1)
    figure = f"   errors figure: {out_dir / 'errors.png'}" if "mito" in report else ""
    print(f"\nreport: {out_dir / 'report.json'}{figure}   total {total:.0f} s")
    return report


def _print_gains(scores: dict, key: str, unit: str, scale: float) -> None:
    if "noadapt" not in scores:
        return
    for name in ("masktwins", "oracle"):
        if name in scores:
            print(f"{name} - noadapt: {scale * (scores[name][key] - scores['noadapt'][key]):+.{1 if scale == 100 else 3}f} {unit}")


def mito_track(config: Path, data_dir: Path, out_dir: Path, methods, seed: int, iterations, shapes=None) -> dict:
    """Generate, train every method, predict, score (DA-ISC 2d); the report's ``mito`` section."""
    from .config import load_config
    from .evaluate.mito import evaluate_mito
    from .evaluate.report import write_mito_report
    from .inference.checkpoint import predict_with_checkpoint
    from .io import open_volume
    from .synth import write_demo_data
    from .train import train

    base_overrides = [f"train.seed={seed}"] + ([f"optim.iterations={iterations}"] if iterations else [])
    print(f"generating synthetic source and target volumes in {data_dir} ...", flush=True)
    specs = write_demo_data(data_dir, shapes=shapes, seed=seed, overwrite=True)
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
        predict_with_checkpoint(ckpt, test_raw, prob_path, patch_size=(256, 256), overlap=0.25, progress=False,
                                resample=run.data.resample)
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
    return {
        "protocol": "da-isc-2d",
        "methods": scores,
        "train_seconds": seconds,
        "config": str(config),
        "seed": seed,
        "data": specs,
    }


def synapse_track(config: Path, data_dir: Path, out_dir: Path, methods, seed: int, iterations, shapes=None) -> dict:
    """Generate, train, predict, extract points (AdaSyn), score (WASPSYN); the report's ``synapse`` section."""
    from .config import load_config
    from .evaluate.synapse import score_synapses
    from .inference.checkpoint import predict_with_checkpoint
    from .io import open_volume
    from .io.points import read_points, write_points_h5
    from .postprocess.synapse import probabilities_to_points
    from .synth import write_synapse_demo_data
    from .train import train

    base_overrides = [f"train.seed={seed}"] + ([f"optim.iterations={iterations}"] if iterations else [])
    print(f"\ngenerating synthetic synapse source and target volumes in {data_dir} ...", flush=True)
    specs = write_synapse_demo_data(data_dir, shapes=shapes, seed=seed, overwrite=True)
    data_overrides = [
        f"data.source.raw={specs['source_train']['raw']}",
        f"data.source.points={specs['source_train']['points']}",
        f"data.target.raw={specs['target_train']['raw']}",
        f"data.target.points={specs['target_train']['points']}",
    ]
    test_raw, test_points = specs["target_test"]["raw"], specs["target_test"]["points"]
    gt = read_points(test_points)

    scores, seconds = {}, {}
    for name in methods:
        run = load_config(config, [f"method={name}", f"train.out_dir={out_dir / name}", *base_overrides, *data_overrides])
        print(f"\n[synapse {name}] training {run.optim.iterations} iterations, crop {list(run.data.crop)}, batch {run.data.batch_size}, widths {list(run.model.widths)}", flush=True)
        t = time.perf_counter()
        ckpt = train(run)
        seconds[name] = time.perf_counter() - t
        prob_path = out_dir / name / "prob_target_test.zarr"
        prob = predict_with_checkpoint(ckpt, test_raw, prob_path, patch_size=tuple(run.data.crop), overlap=0.25, progress=False)
        points = probabilities_to_points(np.asarray(prob[:]))  # AdaSyn thresholds 0.75 / 0.65
        write_points_h5(out_dir / name / "points_target_test.h5", points, voxel_size=open_volume(test_raw).voxel_size)
        result = score_synapses(points, gt)
        atomic_write_json(out_dir / name / "scores.json", result)
        scores[name] = {
            "f1_pre": float(result["f1_pre"]),
            "f1_post": float(result["f1_post"]),
            "f1": float(result["f1"]),
            "n_pre": int(len(points.pre)),
            "n_post": int(len(points.post)),
        }
        print(f"[synapse {name}] F1 {scores[name]['f1']:.3f} (pre {scores[name]['f1_pre']:.3f}, post {scores[name]['f1_post']:.3f})  ({seconds[name]:.0f} s)", flush=True)
    return {
        "protocol": "waspsyn",
        "methods": scores,
        "train_seconds": seconds,
        "config": str(config),
        "seed": seed,
        "data": specs,
        "gt": {"n_pre": int(len(gt.pre)), "n_post": int(len(gt.post))},
    }
