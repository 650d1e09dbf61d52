"""Write the README's picture: the napari Evaluate view on the demo's synthetic target.

Opens the held-out synthetic target (``volumes/demo/target_test.zarr``, generated when missing,
as ``make demo`` does) in napari through the plugin's reader, predicts it with a MaskTwins
checkpoint in the Predict widget, thresholds it in the Post-process widget and scores it in the
Evaluate widget against the labels: false negatives red, false positives green, the DA-ISC
metrics in the widget's table. The checkpoint is ``--checkpoint``, else the demo's
(``runs/demo/masktwins/checkpoint.pt`` after ``make demo``), else one trained here with the
demo's config and budget (a few minutes on a laptop CPU) into ``runs/screenshot/masktwins``.

Needs a display: ``make screenshot`` runs it under ``xvfb-run`` when there is none.

    python scripts/screenshot_evaluate.py [--out docs/napari-evaluate.png] [--overwrite]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default="volumes/demo", help="demo volumes folder (default: volumes/demo; generated if missing)")
    p.add_argument("--checkpoint", default=None, help="checkpoint to predict with (default: the demo's masktwins run, else trained here)")
    p.add_argument("--iterations", type=int, default=None, help="iterations when a checkpoint is trained here (default: the demo config's 300)")
    p.add_argument("--threshold", type=float, default=0.5, help="mitochondria threshold in Post-process and Evaluate (default 0.5)")
    p.add_argument("--out", default="docs/napari-evaluate.png", help="PNG to write (default: docs/napari-evaluate.png)")
    p.add_argument("--size", default="1500x900", help="window size WxH in pixels (default 1500x900)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    return p.parse_args(argv)


def demo_data(folder: Path) -> dict:
    from masktwins3d.synth import DEMO_VOLUMES, write_demo_data

    paths = {name: {"raw": f"{folder}/{name}.zarr/raw", "mito": f"{folder}/{name}.zarr/mito"} for name in DEMO_VOLUMES}
    if all(Path(v["raw"]).exists() for v in paths.values()):
        return paths
    print(f"generating the demo's synthetic volumes in {folder} ...", flush=True)
    return write_demo_data(folder, seed=0, overwrite=True)


def checkpoint(args, data: dict) -> Path:
    if args.checkpoint:
        return Path(args.checkpoint)
    for candidate in (ROOT / "runs/demo/masktwins/checkpoint.pt", ROOT / "runs/screenshot/masktwins/checkpoint.pt"):
        if candidate.is_file() and args.iterations is None:
            print(f"using {candidate.relative_to(ROOT)}", flush=True)
            return candidate
    from masktwins3d.config import load_config
    from masktwins3d.train import train

    out = ROOT / "runs/screenshot/masktwins"
    overrides = ["method=masktwins", f"train.out_dir={out}", "train.seed=0",
                 f"data.source.raw={data['source_train']['raw']}", f"data.source.label={data['source_train']['mito']}",
                 f"data.target.raw={data['target_train']['raw']}", f"data.target.label={data['target_train']['mito']}"]
    if args.iterations:
        overrides.append(f"optim.iterations={args.iterations}")
    run = load_config(ROOT / "configs/mito_demo.yaml", overrides)
    print(f"training masktwins for {run.optim.iterations} iterations (the demo's config) into {out} ...", flush=True)
    return Path(train(run, overwrite=True))


def wait(widget, what: str, timeout: float = 1800.0) -> None:
    """Let Qt run until the widget's worker has finished."""
    from qtpy.QtWidgets import QApplication

    start = time.monotonic()
    while widget.worker is not None:
        QApplication.processEvents()
        time.sleep(0.02)
        if time.monotonic() - start > timeout:
            raise SystemExit(f"{what} did not finish in {timeout:.0f} s")
    for _ in range(5):
        QApplication.processEvents()


def main(argv=None) -> int:
    args = parse_args(argv)
    out = Path(args.out)
    if out.exists() and not args.overwrite:
        print(f"error: {out} exists; pass --overwrite to replace it, or choose another --out", file=sys.stderr)
        return 2
    try:
        width, height = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        print(f"error: --size {args.size!r} is not WxH, e.g. 1500x900", file=sys.stderr)
        return 2
    data = demo_data(ROOT / args.data if not Path(args.data).is_absolute() else Path(args.data))
    ckpt = checkpoint(args, data)

    import napari
    from qtpy.QtWidgets import QApplication

    from masktwins3d.io import open_volume

    viewer = napari.Viewer(show=True, title="masktwins3d: Evaluate")
    viewer.window._qt_window.resize(width, height)
    raw = viewer.open(data["target_test"]["raw"], plugin="masktwins3d")[0]
    gt = viewer.open(data["target_test"]["mito"], plugin="masktwins3d")[0]

    pdock, predict = viewer.window.add_plugin_dock_widget("masktwins3d", "Predict")
    predict.image.value, predict.checkpoint.value = raw, ckpt
    predict.resample.value = "never"  # as the demo predicts: the 8 vs 10 nm difference is part of its shift
    predict.predict()
    wait(predict, "prediction")
    prob = viewer.layers[f"{raw.name} probabilities"]

    qdock, post = viewer.window.add_plugin_dock_widget("masktwins3d", "Post-process")
    post.prob.value = prob
    post.threshold.value = args.threshold
    post.run()
    wait(post, "post-processing")
    post.live.value = False
    mito = viewer.layers[f"{prob.name} mito"]

    _, evaluate = viewer.window.add_plugin_dock_widget("masktwins3d", "Evaluate")
    evaluate.pred.value, evaluate.gt.value = prob, gt
    evaluate.threshold.value = args.threshold
    evaluate.run()
    wait(evaluate, "evaluation")
    table = dict(zip(evaluate.table.value["index"], (row[0] for row in evaluate.table.value["data"])))
    viewer.window.remove_dock_widget(pdock)
    viewer.window.remove_dock_widget(qdock)

    truth = np.asarray(open_volume(data["target_test"]["mito"]).read())
    fg = truth.reshape(truth.shape[0], -1).mean(axis=1)
    z = int(np.argsort(fg)[len(fg) // 2])  # the section of median foreground, as the demo's errors.png
    viewer.dims.set_point(0, z * raw.scale[0] + raw.translate[0])
    for layer in viewer.layers:
        layer.visible = layer is raw or layer.name.endswith("errors")
    viewer.layers.selection.active = viewer.layers[f"{prob.name} errors"]
    viewer.reset_view()
    for _ in range(20):
        QApplication.processEvents()
        time.sleep(0.02)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.partial.png")
    viewer.screenshot(str(partial), canvas_only=False, flash=False)
    partial.replace(out)
    viewer.close()
    print(f"section z={z}; {', '.join(f'{k} {v}' for k, v in table.items())}")
    print(f"mito instances: {int(np.asarray(mito.data).max())}; wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
