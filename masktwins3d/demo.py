"""The embedded demo: synthetic source -> target adaptation on both tracks, one report.

The protocol is the one a lab follows and the one that compares methods on equal terms:

1. a **source model**: ``noadapt`` trained from scratch on the labelled source for the
   config's ``optim.iterations``;
2. every method **warm-started** from that model's EMA weights (``train.init``) for the same
   further ``adapt_iterations``, target losses from the first of them: ``noadapt`` continued
   (the budget-fair source-only row), ``mic``, ``rmask``, ``masktwins`` and the ``oracle``
   (target labels). The synapse source model is first scored on a held-out *source* volume
   (source labels only, as a lab checks its source model before adapting it);
3. every run scored twice on the held-out target: its **last student** and its **EMA** weights
   (which weights to trust is fixed before scoring: the tables lead with EMA, the usual choice
   for mean-teacher methods, and show the student beside it).

Mitochondria: synthetic EM volumes with a domain shift (:mod:`masktwins3d.synth`), DA-ISC 2d
scores, ``errors.png`` (false negatives red, false positives green). Synapses: isotropic
synthetic volumes with pre/post points, the 3D ResUNet, points by the AdaSyn protocol, WASPSYN
scores. Both land in ``report.json``.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from .atomic import atomic_write, atomic_write_json, discard, restore_on_error, set_aside
from .errors import UserError

METHODS = ("noadapt", "mic", "rmask", "masktwins", "oracle")
DEMO_METHODS = ("noadapt", "rmask", "masktwins", "oracle")
"""The mito methods `masktwins3d demo` runs by default: source-only, the paper's method, its
independent-mask ablation and the oracle (``--methods`` adds ``mic``; left out of the default so
that the demo fits 15 minutes on a 2-core CPU)."""
SYNAPSE_METHODS = ("noadapt", "masktwins", "oracle")
"""The synapse methods the demo runs by default: source-only, the paper's method and the oracle,
whose gain over noadapt is the room adaptation has on this pair."""
WEIGHTS = ("ema", "student")
"""Both weights of every run are scored; the first is the headline."""
ADAPT_ITERATIONS = {"mito": 100, "synapse": 100}
"""Iterations of the warm-started phase per track (the source phase is the config's). Set by the
demo's time limit (15 minutes with the install on a 2-core CPU), not by scores: the 3-seed
learning curves at 300 / 200 iterations (BENCHMARKS.md) show every warm-started method's target
score flat or falling after its first 50-100 iterations, so a shorter phase loses nothing."""
ADAPT_SETTINGS = {
    "mito": ("optim.lr=2e-4", "optim.warmup=20"),
    "synapse": ("optim.lr=2e-4", "optim.warmup=20"),
}
"""Overrides of the warm-started phase, the same for every method of a track: a fine-tune at a
fifth of the source phase's learning rate with a short warm-up, the usual recipe for adapting a
trained model. Fixed once, on a calibration run of the synthetic pair (one seed, before the
3-seed tables), and never tuned on a real target: at the source rate last student and EMA of
masktwins differed by 16 IoU points, at a fifth by 1-3 (BENCHMARKS.md, "demo calibration")."""
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
    """Methods x weights x (F1_pre, F1_post, F1) and point counts, as a plain-text table.

    Args:
        scores: ``{method: {weights: {f1_pre, f1_post, f1, n_pre, n_post}}}``.
        seconds: training seconds per method.
    """
    head = f"{'method':<11}{'weights':<9}{'F1_pre':>8}{'F1_post':>9}{'F1':>8}{'pre':>6}{'post':>6}" + (f"{'train s':>10}" if seconds else "")
    lines = [head, "-" * len(head)]
    for name, by_weights in scores.items():
        for w, s in by_weights.items():
            row = f"{name:<11}{w:<9}{s['f1_pre']:>8.3f}{s['f1_post']:>9.3f}{s['f1']:>8.3f}{s['n_pre']:>6d}{s['n_post']:>6d}"
            if seconds:
                row += f"{seconds.get(name, float('nan')):>10.0f}"
            lines.append(row)
    return "\n".join(lines)


def format_table(scores: dict[str, dict], seconds: dict[str, float] | None = None) -> str:
    """Methods x weights x (IoU, F1, MCC, mAP) in percent, as a plain-text table.

    Args:
        scores: ``{method: {weights: {iou, f1, mcc, map}}}`` (fractions).
        seconds: training seconds per method.
    """
    head = f"{'method':<11}{'weights':<9}{'IoU':>8}{'F1':>8}{'MCC':>8}{'mAP':>8}" + (f"{'train s':>10}" if seconds else "")
    lines = [head, "-" * len(head)]
    for name, by_weights in scores.items():
        for w, s in by_weights.items():
            row = f"{name:<11}{w:<9}" + "".join(f"{100 * s[k]:>8.1f}" for k in ("iou", "f1", "mcc", "map"))
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


def check_demo_args(tracks, methods, synapse_methods, budgets: dict) -> tuple[tuple, tuple, tuple]:
    """``(tracks, methods, synapse_methods)`` as tuples, or a one-line :class:`UserError` naming the
    flag; ``budgets``: ``{flag: iterations or None}``, each at least 1 when given."""
    tracks = tuple(tracks)
    bad = [t for t in tracks if t not in TRACKS]
    if bad or not tracks:
        raise UserError(f"--tracks {bad[0] if bad else '(none)'!r} is unknown; choose from {list(TRACKS)}")
    chosen = []
    for flag, names, default in (("--methods", methods, DEMO_METHODS), ("--synapse-methods", synapse_methods, SYNAPSE_METHODS)):
        names = tuple(names or default)
        unknown = [m for m in names if m not in METHODS]
        if unknown:
            raise UserError(f"{flag} {unknown[0]!r} is unknown; choose from {list(METHODS)}")
        chosen.append(names)
    for flag, value in budgets.items():
        if value is not None and value < 1:
            raise UserError(f"{flag} {value} must be at least 1; leave it out for the config's budget")
    return tracks, chosen[0], chosen[1]


def print_report(report: dict, out_dir: Path) -> None:
    """The demo's tables, gains and where the report went, as the terminal shows them."""
    if "mito" in report:
        m = report["mito"]
        print(f"\nmitochondria: held-out synthetic target, DA-ISC 2d protocol (%, mean over sections); source model "
              f"{m['source_iterations']} iterations, then every method {m['adapt_iterations']} more from it")
        print(format_table(m["methods"], m["train_seconds"]))
        print_gains(m["methods"], "iou", "IoU points", 100)
    if "synapse" in report:
        sy = report["synapse"]
        print(f"\nsynapses: held-out synthetic target, WASPSYN protocol (r_pre 11, r_post 6.5 voxels); source model "
              f"{sy['source_iterations']} iterations, then every method {sy['adapt_iterations']} more from it")
        print(format_synapse_table(sy["methods"], sy["train_seconds"]))
        print_gains(sy["methods"], "f1", "F1", 1)
    figure = f"   errors figure: {out_dir / 'errors.png'}" if "mito" in report else ""
    print(f"\nreport: {out_dir / 'report.json'}{figure}   total {report['seconds']:.0f} s")


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
    adapt_iterations: int | None = None,
    synapse_adapt_iterations: int | None = None,
    snapshot_every: int = 0,
) -> dict:
    """Run the demo's tracks and return the report dict (also written to ``out_dir/report.json``).

    Args:
        config / synapse_config: training configs (default ``configs/mito_demo.yaml`` and
            ``configs/synapse_demo.yaml``).
        data_dir: where the synthetic volumes go (synapse volumes in ``data_dir/synapse``).
        out_dir: run folder (the source model in ``out_dir/source``, warm-started runs in
            ``out_dir/<method>``; synapse runs likewise under ``out_dir/synapse``).
        methods / synapse_methods: subsets of :data:`METHODS` (default :data:`DEMO_METHODS`) /
            :data:`SYNAPSE_METHODS`.
        seed: seed of the data and of every run.
        iterations / synapse_iterations: override the configs' iterations (the source phase).
        adapt_iterations / synapse_adapt_iterations: iterations of the warm-started phase
            (default :data:`ADAPT_ITERATIONS`).
        overwrite: replace existing volumes and runs (default: refuse). The earlier ones are set
            aside, not deleted, until the new demo has finished, and put back if it fails or is
            interrupted.
        tracks: ``mito``, ``synapse`` or both (default both).
        shapes / synapse_shapes: volume shapes for the generators (default theirs).
        snapshot_every: keep the weights of every run every this many iterations (learning
            curves; 0: none).
    """
    from .config import load_config

    t0 = time.perf_counter()
    tracks, methods, synapse_methods = check_demo_args(tracks, methods, synapse_methods, {
        "--iterations": iterations, "--synapse-iterations": synapse_iterations,
        "--adapt-iterations": adapt_iterations, "--synapse-adapt-iterations": synapse_adapt_iterations})
    adapt = {"mito": adapt_iterations or ADAPT_ITERATIONS["mito"], "synapse": synapse_adapt_iterations or ADAPT_ITERATIONS["synapse"]}
    config = Path(config) if config else default_config()
    synapse_config = Path(synapse_config) if synapse_config else default_config("synapse_demo.yaml")
    out_dir, data_dir = Path(out_dir), Path(data_dir)
    for folder, what, flag in ((out_dir, "the demo runs", "--out"), (data_dir, "the demo volumes", "--data")):
        if folder.exists() and any(folder.iterdir()) and not overwrite:
            raise UserError(f"{folder} exists; pass --overwrite to replace {what} or choose {flag}")
    seed_override = [f"train.seed={seed}"]
    if "mito" in tracks:  # validate the configs before long work
        load_config(config, ["method=masktwins", *seed_override] + ([f"optim.iterations={iterations}"] if iterations else []))
    if "synapse" in tracks:
        load_config(synapse_config, ["method=masktwins", *seed_override] + ([f"optim.iterations={synapse_iterations}"] if synapse_iterations else []))

    # the earlier demo stays whole beside the new one until the new one is complete
    out_aside, data_aside = set_aside(out_dir), set_aside(data_dir)
    report: dict = {}
    with restore_on_error(out_dir, out_aside), restore_on_error(data_dir, data_aside):
        if "mito" in tracks:
            report["mito"] = mito_track(config, data_dir, out_dir, methods, seed, iterations, shapes, adapt["mito"], snapshot_every)
        if "synapse" in tracks:
            report["synapse"] = synapse_track(synapse_config, data_dir / "synapse", out_dir / "synapse", synapse_methods, seed,
                                              synapse_iterations, synapse_shapes, adapt["synapse"], snapshot_every)
        report["seconds"] = time.perf_counter() - t0
        atomic_write_json(out_dir / "report.json", report)
    discard(out_aside)
    discard(data_aside)
    print_report(report, out_dir)
    return report


def gains(scores: dict, key: str) -> dict[str, dict[str, float]]:
    """``{"masktwins - noadapt": {weights: diff}, ...}`` for the pairs present in ``scores``."""
    pairs = [("masktwins", "noadapt"), ("masktwins", "rmask"), ("oracle", "noadapt")]
    out = {}
    for a, b in pairs:
        if a in scores and b in scores:
            out[f"{a} - {b}"] = {w: float(scores[a][w][key] - scores[b][w][key]) for w in scores[a] if w in scores[b]}
    return out


def print_gains(scores: dict, key: str, unit: str, scale: float) -> None:
    digits = 1 if scale == 100 else 3
    for pair, by_weights in gains(scores, key).items():
        print(f"{pair}: " + ", ".join(f"{scale * d:+.{digits}f} {unit} ({w})" for w, d in by_weights.items()))


def _overrides(run_dir: Path, method: str, seed: int, iterations: int | None, data: list[str], snapshot_every: int,
               init: Path | None = None, adapt: tuple[str, ...] = ()) -> list[str]:
    out = [f"method={method}", f"train.out_dir={run_dir}", f"train.seed={seed}", *data]
    if iterations:
        out.append(f"optim.iterations={iterations}")
    if snapshot_every:
        out.append(f"train.snapshot_every={snapshot_every}")
    if init is not None:  # warm start: the source phase is done, so the target losses start at once
        out += [f"train.init={init}", "loss.target_start=0", *adapt]
    return out


def _phases(config: Path, out_dir: Path, methods, seed: int, iterations, adapt_iterations: int, data: list[str],
            snapshot_every: int, label: str, adapt: tuple[str, ...] = ()):
    """Train the source model, then every method from it; yields ``(method, checkpoint, seconds)``."""
    from .config import load_config
    from .train import train

    run = load_config(config, _overrides(out_dir / "source", "noadapt", seed, iterations, data, snapshot_every))
    print(f"\n[{label}source] noadapt from scratch: {run.optim.iterations} iterations, crop {list(run.data.crop)}, "
          f"batch {run.data.batch_size}, widths {list(run.model.widths)}", flush=True)
    t = time.perf_counter()
    source = train(run)
    source_seconds = time.perf_counter() - t
    yield "source", source, source_seconds, run.optim.iterations
    for name in methods:
        run = load_config(config, _overrides(out_dir / name, name, seed, adapt_iterations, data, snapshot_every, init=source,
                                             adapt=adapt))
        print(f"\n[{label}{name}] from the source model's EMA weights: {run.optim.iterations} iterations at lr "
              f"{run.optim.lr:g}", flush=True)
        t = time.perf_counter()
        ckpt = train(run)
        yield name, ckpt, time.perf_counter() - t, run.optim.iterations


def _file(name: str, by_weights: dict, secs: float, source: dict, scores: dict, seconds: dict) -> None:
    """Put one run's scores where the report wants them: the source model apart, the methods by name."""
    if name == "source":
        source.update(scores=by_weights, train_seconds=secs)
    else:
        scores[name], seconds[name] = by_weights, secs


def mito_track(config: Path, data_dir: Path, out_dir: Path, methods, seed: int, iterations, shapes=None,
               adapt_iterations: int = ADAPT_ITERATIONS["mito"], snapshot_every: int = 0) -> dict:
    """Generate, train the source model and every method from it, predict with both weights,
    score (DA-ISC 2d); the report's ``mito`` section."""
    from .evaluate.mito import evaluate_mito
    from .evaluate.report import write_mito_report
    from .inference.checkpoint import predict_with_checkpoint
    from .io import open_volume
    from .synth import write_demo_data

    print(f"generating synthetic source and target volumes in {data_dir} ...", flush=True)
    specs = write_demo_data(data_dir, shapes=shapes, seed=seed, overwrite=True)
    data = [
        f"data.source.raw={specs['source_train']['raw']}",
        f"data.source.label={specs['source_train']['mito']}",
        f"data.target.raw={specs['target_train']['raw']}",
        f"data.target.label={specs['target_train']['mito']}",
    ]
    test_raw, test_gt = specs["target_test"]["raw"], specs["target_test"]["mito"]
    gt_vol = open_volume(test_gt)

    scores, seconds, probs_paths, source = {}, {}, {}, {}
    steps = {}
    for name, ckpt, secs, its in _phases(config, out_dir, methods, seed, iterations, adapt_iterations, data, snapshot_every, "",
                                           ADAPT_SETTINGS["mito"]):
        steps[name] = its
        by_weights = {}
        for w in WEIGHTS:
            prob_path = ckpt.parent / f"prob_target_test_{w}.zarr"
            predict_with_checkpoint(ckpt, test_raw, prob_path, patch_size=(256, 256), overlap=0.25, progress=False,
                                    resample="never", weights=w)
            result = evaluate_mito(open_volume(str(prob_path)), gt_vol, mode="2d")
            write_mito_report(result, ckpt.parent / f"scores_{w}.json", ckpt.parent / f"scores_{w}.csv")
            by_weights[w] = {k: float(result[k]) for k in ("iou", "f1", "mcc", "map")}
            probs_paths.setdefault(name, prob_path)
        line = ", ".join(f"{w} IoU {100 * by_weights[w]['iou']:.1f}" for w in WEIGHTS)
        print(f"[{name}] {line}  ({secs:.0f} s)", flush=True)
        _file(name, by_weights, secs, source, scores, seconds)

    raw_vol = open_volume(test_raw)
    fg = [float(np.asarray(gt_vol[z]).mean()) for z in range(gt_vol.shape[0])]
    z = int(np.argsort(fg)[len(fg) // 2])
    shown = {name: p for name, p in probs_paths.items() if name != "source"}
    probs = {name: np.asarray(open_volume(str(p))[0, z], dtype=np.float32) for name, p in shown.items()}
    save_error_figure(out_dir / "errors.png", np.asarray(raw_vol[z]), np.asarray(gt_vol[z]), probs,
                      {n: scores[n][WEIGHTS[0]] for n in shown}, z)
    return {
        "protocol": "da-isc-2d",
        "methods": scores,
        "gains": gains(scores, "iou"),
        "source": source,
        "source_iterations": steps.get("source"),
        "adapt_iterations": adapt_iterations,
        "train_seconds": seconds,
        "config": str(config),
        "seed": seed,
        "data": specs,
    }


def source_check_warning(held_out: dict) -> str | None:
    """A line for the user when the synapse source model's EMA weights, the ones every method
    starts from, find no pre point on held-out source data (``held_out``: ``{weights: {"n_pre":
    n, ...}}``); None otherwise. Such a model leaves self-training nothing to start from."""
    if held_out["ema"]["n_pre"] > 0:
        return None
    return ("the source model's EMA weights find no synapse on held-out source data, so adaptation has nothing "
            "to start from; train the source model longer (optim.iterations) or with another train.seed")


def synapse_track(config: Path, data_dir: Path, out_dir: Path, methods, seed: int, iterations, shapes=None,
                  adapt_iterations: int = ADAPT_ITERATIONS["synapse"], snapshot_every: int = 0) -> dict:
    """Generate, train the source model and every method from it, predict with both weights,
    extract points (AdaSyn), score (WASPSYN); the report's ``synapse`` section."""
    from .config import load_config
    from .evaluate.synapse import score_synapses
    from .inference.checkpoint import predict_with_checkpoint
    from .io import open_volume
    from .io.points import read_points, write_points_h5
    from .postprocess.synapse import probabilities_to_points
    from .synth import write_synapse_demo_data

    print(f"\ngenerating synthetic synapse source and target volumes in {data_dir} ...", flush=True)
    specs = write_synapse_demo_data(data_dir, shapes=shapes, seed=seed, overwrite=True)
    data = [
        f"data.source.raw={specs['source_train']['raw']}",
        f"data.source.points={specs['source_train']['points']}",
        f"data.target.raw={specs['target_train']['raw']}",
        f"data.target.points={specs['target_train']['points']}",
    ]
    gt = {name: read_points(specs[name]["points"]) for name in ("target_test", "source_test")}
    voxel_size = open_volume(specs["target_test"]["raw"]).voxel_size

    def score(ckpt: Path, volume: str) -> dict:
        """Both weights of ``ckpt`` on one labelled demo volume: points (AdaSyn), WASPSYN scores."""
        crop = tuple(load_config(ckpt.parent / "config.yaml").data.crop)
        by_weights = {}
        for w in WEIGHTS:
            prob = predict_with_checkpoint(ckpt, specs[volume]["raw"], ckpt.parent / f"prob_{volume}_{w}.zarr", patch_size=crop,
                                           overlap=0.25, progress=False, weights=w)
            points = probabilities_to_points(np.asarray(prob[:]))  # AdaSyn thresholds 0.75 / 0.65
            write_points_h5(ckpt.parent / f"points_{volume}_{w}.h5", points, voxel_size=voxel_size)
            result = score_synapses(points, gt[volume])
            atomic_write_json(ckpt.parent / (f"scores_{w}.json" if volume == "target_test" else f"scores_{volume}_{w}.json"), result)
            by_weights[w] = {
                "f1_pre": float(result["f1_pre"]),
                "f1_post": float(result["f1_post"]),
                "f1": float(result["f1"]),
                "n_pre": int(len(points.pre)),
                "n_post": int(len(points.post)),
            }
        return by_weights

    scores, seconds, source, steps = {}, {}, {}, {}
    for name, ckpt, secs, its in _phases(config, out_dir, methods, seed, iterations, adapt_iterations, data, snapshot_every, "synapse ",
                                           ADAPT_SETTINGS["synapse"]):
        steps[name] = its
        if name == "source":  # the check a lab runs before adapting: source labels only
            source["held_out_source"] = held_out = score(ckpt, "source_test")
            print("[synapse source] held-out source volume: " + ", ".join(
                f"{w} F1 {held_out[w]['f1']:.3f} ({held_out[w]['n_pre']} pre)" for w in WEIGHTS), flush=True)
            if (warning := source_check_warning(held_out)) is not None:
                print(f"warning: {warning}", flush=True)
        by_weights = score(ckpt, "target_test")
        line = ", ".join(f"{w} F1 {by_weights[w]['f1']:.3f} (pre {by_weights[w]['f1_pre']:.3f})" for w in WEIGHTS)
        print(f"[synapse {name}] {line}  ({secs:.0f} s)", flush=True)
        _file(name, by_weights, secs, source, scores, seconds)
    return {
        "protocol": "waspsyn",
        "methods": scores,
        "gains": gains(scores, "f1"),
        "source": source,
        "source_iterations": steps.get("source"),
        "adapt_iterations": adapt_iterations,
        "train_seconds": seconds,
        "config": str(config),
        "seed": seed,
        "data": specs,
        "gt": {"n_pre": int(len(gt["target_test"].pre)), "n_post": int(len(gt["target_test"].post))},
    }
