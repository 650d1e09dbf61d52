"""Learning curves: score the weights a run kept every ``train.snapshot_every`` iterations.

For reporting only: the snapshots are scored after training, on the target labels, so a reader
can see whether a budget has converged; nothing in training or in the tables is chosen from
them. Used by ``demo_seeds.py`` and ``real_mito.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np


def snapshot_steps(run_dir: Path) -> list[tuple[int, Path]]:
    """``(step, path)`` of the snapshots a run kept, in step order."""
    out = []
    for p in sorted((Path(run_dir) / "snapshots").glob("step_*.pt")):
        out.append((int(p.stem.split("_")[1]), p))
    return out


def score_run_curve(run_dir: Path, score: Callable[[Path, str, Path], float], weights=("ema", "student"), offset: int = 0) -> dict:
    """``{weights: [[step + offset, score], ...]}`` over a run's snapshots.

    Args:
        run_dir: the run folder (with ``snapshots/``).
        score: ``score(checkpoint, weights, scratch_folder) -> float`` (e.g. IoU of a prediction).
        weights: which weights of each snapshot to score.
        offset: added to the steps (the source phase's iterations for a warm-started run).
    """
    curve: dict[str, list] = {w: [] for w in weights}
    for step, path in snapshot_steps(run_dir):
        for w in weights:
            scratch = Path(run_dir) / "curve_scratch"
            curve[w].append([step + offset, float(score(path, w, scratch))])
    import shutil

    shutil.rmtree(Path(run_dir) / "curve_scratch", ignore_errors=True)
    return curve


def plot_curves(curves: dict, path: Path, title: str, ylabel: str, boundary: int | None = None) -> None:
    """One line per method (mean over seeds), EMA solid and student dashed, to a PNG.

    Args:
        curves: ``{seed: {method: {weights: [[step, value], ...]}}}``.
        path: the PNG to write.
        title / ylabel: text of the plot.
        boundary: iteration where the warm-started phase begins (a vertical line), or None.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from masktwins3d.atomic import atomic_write

    methods = sorted({m for per_seed in curves.values() for m in per_seed}, key=lambda m: (m != "source", m))
    colours = dict(zip(methods, plt.rcParams["axes.prop_cycle"].by_key()["color"] * 3))
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for m in methods:
        for w, style in (("ema", "-"), ("student", "--")):
            runs = [per_seed[m][w] for per_seed in curves.values() if m in per_seed and per_seed[m].get(w)]
            if not runs:
                continue
            n = min(len(r) for r in runs)
            steps = np.array([runs[0][i][0] for i in range(n)])
            values = np.array([[r[i][1] for i in range(n)] for r in runs])
            ax.plot(steps, 100 * values.mean(axis=0), style, color=colours[m], label=f"{m} ({w})", marker="o" if w == "ema" else None, ms=3)
    if boundary:
        ax.axvline(boundary, color="grey", lw=0.8, ls=":")
    ax.set_xlabel("iteration")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    plt.close(fig)
