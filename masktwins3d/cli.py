"""The ``masktwins3d`` command line: demo, train, predict, evaluate.

Every mistake a user can make ends in one line ``error: ...`` naming the file, key or value and
the fix, with exit code 2, before long work starts.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import __version__
from .errors import UserError


def _int_tuple(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.replace("x", ",").split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a list of integers like 256,256") from None


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    run_demo(
        config=args.config,
        data_dir=Path(args.data),
        out_dir=Path(args.out),
        methods=args.methods,
        seed=args.seed,
        iterations=args.iterations,
        overwrite=args.overwrite,
        tracks=args.tracks,
        synapse_config=args.synapse_config,
        synapse_iterations=args.synapse_iterations,
    )
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from .config import load_config
    from .train import train

    run = load_config(args.config, args.overrides)
    path = train(run, overwrite=args.overwrite, resume=args.resume)
    print(f"checkpoint: {path}")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from .inference.checkpoint import predict_with_checkpoint

    out = predict_with_checkpoint(
        checkpoint=args.checkpoint,
        input_spec=args.input,
        output=args.output,
        patch_size=args.patch,
        overlap=args.overlap,
        blend=args.blend,
        batch_size=args.batch_size,
        device=args.device,
        out_dtype=args.dtype,
        overwrite=args.overwrite,
    )
    print(f"probabilities: {out}")
    return 0


def cmd_evaluate_mito(args: argparse.Namespace) -> int:
    from .evaluate.mito import evaluate_mito
    from .evaluate.report import write_mito_report
    from .io import open_volume

    for path in (args.json, args.csv):
        if path and Path(path).exists() and not args.overwrite:
            raise UserError(f"{path} exists; pass --overwrite to replace it or choose another output")
    pred = open_volume(args.pred)
    gt = open_volume(args.gt)
    result = evaluate_mito(pred, gt, mode=args.mode, empty=args.empty, threshold=args.threshold, channel=args.channel, progress=True)
    write_mito_report(result, args.json, args.csv, overwrite=args.overwrite)
    print(f"{result['protocol']}: IoU {result['iou']:.4f}  F1 {result['f1']:.4f}  MCC {result['mcc']:.4f}  mAP {result['map']:.4f}  ({result['n_scored']} of {result['n_sections']} sections scored)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from .demo import DEFAULT_TRACKS

    p = argparse.ArgumentParser(prog="masktwins3d", description="Adapt EM segmentation networks to new, unlabelled volumes with MaskTwins.")
    p.add_argument("--version", action="version", version=f"masktwins3d {__version__}")
    sub = p.add_subparsers(dest="verb", required=True, metavar="{demo,train,predict,evaluate}")

    d = sub.add_parser("demo", help="synthetic source -> target demo on both tracks: train, predict, evaluate, print the tables",
                       description="Mitochondria: generate synthetic source/target EM volumes, train noadapt, mic, rmask, masktwins and oracle with the same budget and seed, predict the held-out target, score it (DA-ISC 2d). Synapses: isotropic synthetic volumes with pre/post points, noadapt and masktwins with the 3D ResUNet, points by the AdaSyn protocol, WASPSYN scores. Writes runs/demo/report.json and errors.png.")
    d.add_argument("--config", default=None, help="mito training config for every method (default: configs/mito_demo.yaml)")
    d.add_argument("--synapse-config", default=None, help="synapse training config (default: configs/synapse_demo.yaml)")
    d.add_argument("--tracks", nargs="+", default=list(DEFAULT_TRACKS), help=f"mito, synapse or both (default: {' '.join(DEFAULT_TRACKS)})")
    d.add_argument("--data", default="volumes/demo", help="where the synthetic volumes are written (default: volumes/demo)")
    d.add_argument("--out", default="runs/demo", help="run folder (default: runs/demo)")
    d.add_argument("--methods", nargs="+", default=None, help="subset of methods (default: all five)")
    d.add_argument("--seed", type=int, default=0, help="seed of the data and of every run (default: 0)")
    d.add_argument("--iterations", type=int, default=None, help="mito iterations per method (default: the config's)")
    d.add_argument("--synapse-iterations", type=int, default=None, help="synapse iterations per method (default: the config's)")
    d.add_argument("--overwrite", action="store_true", help="replace existing demo volumes and runs")
    d.set_defaults(func=cmd_demo)

    t = sub.add_parser("train", help="train one method from a YAML config",
                       description="Train as the YAML config says; key=value overrides use dotted keys, e.g. method=masktwins optim.lr=1e-4 data.crop=[256,256].")
    t.add_argument("--config", required=True, help="YAML run config (see configs/)")
    t.add_argument("overrides", nargs="*", help="dotted key=value overrides")
    t.add_argument("--overwrite", action="store_true", help="replace an existing run folder")
    t.add_argument("--resume", action="store_true", help="continue the run in train.out_dir from its checkpoint.pt")
    t.set_defaults(func=cmd_train)

    r = sub.add_parser("predict", help="predict probabilities over a volume with a checkpoint",
                       description="Sliding-window prediction, blended (2D models section by section, 3D models in slabs); writes a probability zarr (C, Z, Y, X) with the input's voxel size and offset.")
    r.add_argument("--checkpoint", required=True, help="checkpoint.pt written by `masktwins3d train`")
    r.add_argument("--input", required=True, help="image volume spec (x.zarr/raw, f.h5:/raw, stack.tif, folder)")
    r.add_argument("--output", required=True, help="output zarr path, e.g. runs/x/prob.zarr")
    r.add_argument("--patch", type=_int_tuple, default=None, help="window in voxels, multiples of 16: Y,X for 2D, Z,Y,X for 3D models (default: 256,256 or 64,64,64)")
    r.add_argument("--overlap", type=float, default=0.25, help="window overlap fraction in [0, 1) (default: 0.25)")
    r.add_argument("--blend", choices=["gaussian", "constant"], default="gaussian", help="blending of overlapping windows (default: gaussian)")
    r.add_argument("--batch-size", type=int, default=4, help="windows per forward pass (default: 4)")
    r.add_argument("--device", default="auto", help="auto | cpu | cuda (default: auto)")
    r.add_argument("--dtype", choices=["float32", "float16", "uint8"], default="float32", help="output dtype (default: float32)")
    r.add_argument("--overwrite", action="store_true", help="replace an existing output")
    r.set_defaults(func=cmd_predict)

    e = sub.add_parser("evaluate", help="score predictions against ground truth",
                       description="Score predictions with the published protocols (EVALUATION.md).")
    esub = e.add_subparsers(dest="what", required=True, metavar="{mito}")
    m = esub.add_parser("mito", help="mitochondria: IoU, F1, MCC, mAP (DA-ISC protocol)",
                        description="DA-ISC mitochondria scores: per-section mean (2d, published protocol) or whole volume (3d).")
    m.add_argument("--pred", required=True, help="foreground probability volume (ZYX, or CZYX with one channel)")
    m.add_argument("--gt", required=True, help="binary ground truth volume (0/1, 0/255 or bool)")
    m.add_argument("--mode", choices=["2d", "3d"], default="2d", help="2d: mean over sections (default); 3d: whole volume")
    m.add_argument("--empty", choices=["skip", "include"], default="skip", help="sections with empty ground truth (default: skip)")
    m.add_argument("--threshold", type=float, default=0.5, help="binarisation threshold (default: 0.5)")
    m.add_argument("--channel", type=int, default=None, help="channel of a multi-channel prediction")
    m.add_argument("--json", required=True, help="output JSON report")
    m.add_argument("--csv", default=None, help="optional per-section CSV")
    m.add_argument("--overwrite", action="store_true", help="replace existing reports")
    m.set_defaults(func=cmd_evaluate_mito)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
