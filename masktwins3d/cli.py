"""The ``masktwins3d`` command line: demo, train, predict, postprocess, evaluate, convert, export, view, datasets.

Every mistake a user can make ends in one line ``error: ...`` naming the file, key or value and
the fix, with exit code 2, before long work starts.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

from . import __version__
from .atomic import refuse_overlap
from .errors import UserError
from .modes import Amp, BlendMode, EmptyRule, EvalMode, MatchMode, OutDtype, Resample, Weights, values


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
        synapse_methods=args.synapse_methods,
        seed=args.seed,
        iterations=args.iterations,
        overwrite=args.overwrite,
        tracks=args.tracks,
        synapse_config=args.synapse_config,
        synapse_iterations=args.synapse_iterations,
        adapt_iterations=args.adapt_iterations,
        synapse_adapt_iterations=args.synapse_adapt_iterations,
    )
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from .config import load_config
    from .train import train

    run = load_config(args.config, args.overrides)
    path = train(run, overwrite=args.overwrite, resume=args.resume)
    if os.environ.get("RANK", "0") == "0":  # under torchrun, rank 0 speaks for the run
        print(f"checkpoint: {path}")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from .inference.checkpoint import predict_with_checkpoint
    from .io.tensorstore_io import is_tensorstore_spec

    voxel_size = _numbers(args.voxel_size, float, "--voxel-size", "40,4,4 (nm, Z,Y,X)") if args.voxel_size else None
    staged = is_tensorstore_spec(args.output)  # predicted into a hidden zarr first: never resumed, never overwritten
    settings = predict_settings(args, **(dict(resume=False, overwrite=False) if staged else {}))
    input_spec = args.input
    if args.scale is not None or voxel_size is not None:
        from .io import open_volume

        input_spec = open_volume(args.input, scale_index=args.scale, voxel_size=voxel_size)
    if staged:
        out = _predict_precomputed(args, input_spec, settings)
    else:
        out = predict_with_checkpoint(args.checkpoint, input_spec, args.output, settings)
    print(f"probabilities: {out}")
    return 0


def predict_settings(args: argparse.Namespace, **changes):
    """The :class:`~masktwins3d.inference.settings.PredictSettings` of ``predict``'s flags (with
    ``changes``), checked: one line naming the flag otherwise."""
    from .inference.settings import PredictSettings

    return PredictSettings(**{**dict(
        patch_size=args.patch,
        overlap=_numbers(args.overlap, float, "--overlap", "0.25 or 0.25,0.5,0.5"),
        blend=args.blend,
        batch_size=args.batch_size,
        device=args.device,
        out_dtype=args.dtype,
        tta=args.tta,
        block_shape=_numbers(args.block, int, "--block", "4,2048,2048") if args.block else None,
        scheduler=args.scheduler,
        threads=args.threads,
        resample=args.resample,
        weights=args.weights,
        allow_missing=args.allow_missing,
        amp=args.amp,
        resume=args.resume,
        overwrite=args.overwrite,
    ), **changes})


def _predict_precomputed(args: argparse.Namespace, input_spec, settings):
    """``predict --output precomputed://PATH`` or ``n5://PATH/dataset``: predict into a hidden zarr
    beside PATH (the blockwise engine's resumable output), then write it as a precomputed volume or
    N5 dataset, staged, and remove the zarr."""
    import shutil
    import tempfile

    from .atomic import overlaps, spec_path
    from .inference.checkpoint import predict_with_checkpoint
    from .io.tensorstore_io import copy_to_tensorstore, is_tensorstore_spec, local_output, local_path, split_spec

    path = local_output(args.output, args.dtype)
    source = local_path(split_spec(args.input)[1]) if is_tensorstore_spec(args.input) else spec_path(args.input)
    if source is not None and overlaps(spec_path(path), spec_path(source)):
        raise UserError(f"--output {args.output} overlaps the input {args.input}; writing it would destroy the input: choose another path")
    if args.resume:
        raise UserError(f"--resume needs a zarr --output (its manifest records the finished blocks); rerun into {args.output} without --resume")
    if path.exists() and not args.overwrite:
        raise UserError(f"{args.output} exists; pass --overwrite to replace it or choose another output")
    path.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{path.name}.predict-", dir=path.parent))
    try:
        prob = predict_with_checkpoint(args.checkpoint, input_spec, work / "prob.zarr", settings)
        return copy_to_tensorstore(prob, args.output, overwrite=args.overwrite).path
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _numbers(text: str, kind: type, flag: str, example: str) -> tuple:
    """``"a,b,c"`` -> numbers of ``kind``; one :class:`UserError` line naming ``flag`` otherwise."""
    try:
        return tuple(kind(v) for v in str(text).replace("x", ",").split(","))
    except ValueError:
        raise UserError(f"{flag} {text!r} is not a comma-separated list of numbers; write e.g. {example}") from None


def cmd_evaluate_mito(args: argparse.Namespace) -> int:
    from .evaluate.mito import evaluate_mito
    from .evaluate.report import write_mito_report
    from .io import open_volume

    refuse_overlap({"--json": args.json, "--csv": args.csv}, {"--pred": args.pred, "--gt": args.gt})
    for path in (args.json, args.csv):
        if path and Path(path).exists() and not args.overwrite:
            raise UserError(f"{path} exists; pass --overwrite to replace it or choose another output")
    pred = open_volume(args.pred)
    gt = open_volume(args.gt)
    result = evaluate_mito(pred, gt, mode=args.mode, empty=args.empty, threshold=args.threshold, channel=args.channel, progress=True)
    write_mito_report(result, args.json, args.csv, overwrite=args.overwrite)
    print(f"{result['protocol']}: IoU {result['iou']:.4f}  F1 {result['f1']:.4f}  MCC {result['mcc']:.4f}  mAP {result['map']:.4f}  ({result['n_scored']} of {result['n_sections']} sections scored)")
    return 0


def cmd_evaluate_synapse(args: argparse.Namespace) -> int:
    from .atomic import atomic_write_json
    from .evaluate.synapse import score_synapses
    from .io.points import offset_from_gt_name, parse_offset, read_points

    refuse_overlap({"--json": args.json}, {"--pred": args.pred, "--gt": args.gt})
    if Path(args.json).exists() and not args.overwrite:
        raise UserError(f"{args.json} exists; pass --overwrite to replace it or choose another --json")
    offset = parse_offset(args.offset) if args.offset is not None else (offset_from_gt_name(args.gt) or (0, 0, 0))
    pred, gt = read_points(args.pred), read_points(args.gt)
    result = score_synapses(pred, gt, mode=args.mode, r_pre=args.r_pre, r_post=args.r_post, offset=offset)
    atomic_write_json(args.json, result)
    print(f"waspsyn ({args.mode}, offset {','.join(map(str, offset))}): F1_pre {result['f1_pre']:.4f}  F1_post {result['f1_post']:.4f}  F1 {result['f1']:.4f}  "
          f"(pre tp/fp/fn {result['pre']['tp']}/{result['pre']['fp']}/{result['pre']['fn']}, {result['post_linked']['n_pairs']} pairs)")
    return 0


def cmd_postprocess_synapse(args: argparse.Namespace) -> int:
    from .io.points import write_points_csv, write_points_h5
    from .postprocess.synapse import points_from_volume

    from .io import open_volume
    from .parallel import check_reachable, parse_scheduler
    from .parallel.resumable import check_resume_flags, run_staged
    from .postprocess.blockwise import DEFAULT_BLOCK, WHOLE_VOLUME_VOXELS, blockwise_points, parse_block

    refuse_overlap({"--out": args.out, "--csv": args.csv}, {"--prob": args.prob})
    check_resume_flags(args.resume, args.overwrite)
    targets = [Path(args.out)] + ([Path(args.csv)] if args.csv else [])
    for t in targets:
        if t.exists() and not args.overwrite and (t.is_file() or any(t.iterdir())):
            raise UserError(f"{t} exists; pass --overwrite to replace it or choose another output")
    scheduler = parse_scheduler(args.scheduler)
    check_reachable(scheduler)
    block = parse_block(args.block) if args.block is not None else None
    vol = open_volume(args.prob)
    voxels = 1
    for s in vol.shape[-3:]:
        voxels *= int(s)
    if block is not None or scheduler.kind != "none" or voxels > WHOLE_VOLUME_VOXELS or args.resume:
        points = run_staged(args.out, args.resume, args.overwrite, lambda work, resuming: blockwise_points(
            vol, thresholds=args.thresholds, min_pre_voxels=args.min_pre_voxels, block_shape=block or DEFAULT_BLOCK,
            scheduler=scheduler, progress=True, work=work, resuming=resuming), what="synapse post-processing", rename=False)
    else:
        points, vol = points_from_volume(vol, thresholds=args.thresholds, min_pre_voxels=args.min_pre_voxels)
    write_points_h5(args.out, points, voxel_size=getattr(vol, "voxel_size", None), offset=getattr(vol, "offset", None))
    if args.csv:
        write_points_csv(args.csv, points)
    print(f"{len(points.pre)} pre and {len(points.post)} post points: {args.out}" + (f" and {args.csv}/pre.csv, post.csv" if args.csv else ""))
    return 0


def _parsed(text: str | None, cast, flag: str, fix: str):
    """``cast(text)`` (None stays None), or a one-line UserError naming ``flag`` and the fix."""
    if text is None:
        return None
    try:
        return cast(text)
    except ValueError:
        raise UserError(f"{flag} {text!r} is not {fix}") from None


def cmd_postprocess_mito(args: argparse.Namespace) -> int:
    from .postprocess.blockwise import blockwise_instances, parse_block

    threshold = _parsed(args.threshold, float, "--threshold", "a number in (0, 1], e.g. 0.5")
    channel = _parsed(args.channel, int, "--channel", "a channel index like 1")
    connectivity = _parsed(args.connectivity, int, "--connectivity", "6, 18 or 26")
    min_size = _parsed(args.min_size, int, "--min-size", "a whole number of voxels like 100")
    result = blockwise_instances(
        args.prob, args.out, threshold=threshold, channel=channel, connectivity=connectivity, min_size=min_size,
        block_shape=parse_block(args.block), scheduler=args.scheduler, overwrite=args.overwrite, resume=args.resume, progress=True,
        whole=False if args.block is not None else None,  # blocks asked for: block by block (resumable)
    )
    print(f"{result.count} mitochondria instances ({connectivity}-connected, p >= {threshold:g}, at least {min_size} voxels): {args.out}")
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    from .io import open_volume
    from .io.convert import convert_stack, parse_rule
    from .io.datasets import convert_split, load_dataset
    from .io.zarr_io import check_dense, is_zarr_spec

    voxel_size = _numbers(args.voxel_size, float, "--voxel-size", "50,4.6,4.6 (nm, Z,Y,X)") if args.voxel_size else None
    offset = _numbers(args.offset, int, "--offset", "0,0,0 (voxels, Z,Y,X)") if args.offset else None
    chunks = _numbers(args.chunks, int, "--chunks", "1,256,256 (voxels, Z,Y,X)") if args.chunks else None
    common = dict(voxel_size=voxel_size, offset=offset, chunks=chunks, overwrite=args.overwrite, progress=True)
    if (args.input is None) == (args.dataset is None):
        raise UserError("give either --input SPEC or --dataset NAME --data-root FOLDER --split NAME; see `masktwins3d convert --help`")
    if args.input is not None:
        if args.data_root or args.split or args.volumes:
            raise UserError("--data-root, --split and --volumes go with --dataset; with --input, drop them")
        parse_rule(args.rule)
        refuse_overlap({"--output": args.output}, {"--input": args.input, "--like": args.like})
        if not args.label and not args.allow_missing and is_zarr_spec(Path(args.input)):
            check_dense(open_volume(args.input), "--input")
        sections = _numbers(args.sections, int, "--sections", "0,10 (start,stop)") if args.sections else None
        if sections is not None and len(sections) != 2:
            raise UserError(f"--sections {args.sections!r} must be two numbers start,stop (stop excluded), e.g. 0,10")
        summary = convert_stack(args.input, args.output, labels=args.label, rule=args.rule, like=args.like, sections=sections, **common)
        print("\n".join(summary.lines()))
        return 0
    if args.label or args.like or args.sections or args.rule != "nonzero":
        raise UserError("--label, --rule, --like and --sections go with --input; a dataset descriptor states which volumes are labels and their rules")
    if not args.data_root or not args.split:
        raise UserError(f"--dataset {args.dataset} needs --data-root FOLDER and --split NAME; list the splits with `masktwins3d datasets`")
    dataset = load_dataset(args.dataset, args.data_root)
    for name, summary in convert_split(dataset, args.split, args.output, names=args.volumes, **common):
        print(f"[{dataset.name} {args.split} {name}]")
        print("\n".join(summary.lines()))
    return 0


def cmd_resample(args: argparse.Namespace) -> int:
    from .data.resample import resample_volume
    from .io import open_volume
    from .io.convert import check_output, staged

    factors = _numbers(args.scale, float, "--scale", "0.5 or 0.5,0.5 (in-plane zoom, Y,X)")
    if len(factors) == 1:
        factors = factors * 2
    if len(factors) != 2 or not all(0 < f < 100 for f in factors):
        raise UserError(f"--scale {args.scale!r} must be one or two in-plane zooms Y,X above 0, e.g. 0.5 (half the pixels per axis)")
    refuse_overlap({"--output": args.output}, {"--input": args.input, "--like": args.like})
    out = check_output(args.output, args.overwrite)
    source = open_volume(args.input)
    like = open_volume(args.like) if args.like else None
    if like is not None and like.shape[-3] != source.shape[-3]:
        raise UserError(f"--like {args.like} has {like.shape[-3]} sections but --input {args.input} has {source.shape[-3]}; "
                        "give the volume the input was resampled from")
    with staged(out) as tmp:
        vol = resample_volume(source, str(tmp), factors, labels=args.label, out_dtype=None if args.label else args.dtype,
                              like=like, progress=True)
        shape, voxel = tuple(vol.shape), tuple(vol.voxel_size)
    print(f"{args.input} {tuple(source.shape)} at {tuple(source.voxel_size)} nm -> {out} {shape} at {voxel} nm "
          f"({'nearest, labels' if args.label else 'linear, anti-aliased'})")
    return 0


def cmd_datasets(args: argparse.Namespace) -> int:
    from .io.datasets import DESCRIPTOR_DIR, list_datasets, load_dataset

    names = [args.name] if args.name else list_datasets()
    if not names:
        raise UserError(f"no dataset descriptors in {DESCRIPTOR_DIR}; add volumes/<name>.yaml")
    for name in names:
        ds = load_dataset(name, args.data_root)
        vs = ", ".join(f"{v:g}" for v in ds.voxel_size) + " nm (Z, Y, X)" if ds.voxel_size else f"not known ({ds.voxel_size_note or 'give --voxel-size'})"
        print(f"{ds.name}: {ds.title}")
        print(f"  voxel size: {vs}")
        print(f"  citation: {ds.citation}")
        print(f"  licence: {ds.licence}")
        for split in ds.splits.values():
            parts = []
            for vname, vol in split.volumes().items():
                extra = (f" [{vol.pattern}]" if vol.pattern else "") + (f" sections {vol.sections[0]}..{vol.sections[1] - 1}" if vol.sections else "")
                missing = "" if not args.data_root or vol.exists() else " (missing)"
                parts.append(f"{vname}{' (label, ' + vol.rule.value + ')' if vol.labels else ''}: {vol.path}{extra}{missing}")
            print(f"  split {split.name}: " + ("; ".join(parts) or "no volumes recorded") + (f"  # {split.note}" if split.note else ""))
    return 0


def cmd_export_bioimageio(args: argparse.Namespace) -> int:
    from .export import export_bioimageio, test_package

    result = export_bioimageio(args.checkpoint, args.out, input_spec=args.input, weights=args.weights, name=args.name,
                               authors=args.author, license=args.license, overwrite=args.overwrite)
    print(f"bioimage.io package: {result.path} ({result.size_bytes / 1e6:.2f} MB, {result.name!r}; "
          f"test input and normalisation from {result.input_spec})")
    if args.test:
        failed = test_package(result.path)
        for line in failed:
            print(f"bioimageio test failed: {line}", file=sys.stderr)
        if failed:
            return 1
        print("bioimageio test: passed (both weight formats, test tensors and every size step)")
    return 0


def cmd_view(args: argparse.Namespace) -> int:
    from .view import neuroglancer_viewer

    viewer = neuroglancer_viewer(args.raw, pred=args.pred or (), labels=args.labels or (), points=args.points,
                                 bind=args.bind, port=args.port, scale_index=args.scale)
    url = viewer.get_viewer_url()
    print(f"neuroglancer: {url}", flush=True)
    if args.no_wait:
        return 0
    if args.open:
        import webbrowser

        webbrowser.open(url)
    print("serving the volumes from this process; Ctrl-C stops it", file=sys.stderr, flush=True)
    try:
        import threading

        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    return 0


def _float_pair(text: str) -> tuple[float, float]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 2:
        raise argparse.ArgumentTypeError(f"{text!r} is not two numbers like 0.75,0.65")
    return values  # type: ignore[return-value]


def _add_demo(sub) -> None:
    """The ``demo`` subcommand."""
    from .demo import ADAPT_ITERATIONS, DEFAULT_TRACKS, DEMO_METHODS, METHODS, SYNAPSE_METHODS

    d = sub.add_parser("demo", help="synthetic source -> target demo on both tracks: train, predict, evaluate, print the tables",
                       description="Mitochondria: generate synthetic source/target EM volumes, train a source model (noadapt), then warm-start noadapt (continued), mic, rmask, masktwins and oracle from it with the same budget and seed, predict the held-out target with each run's EMA and last-student weights, score it (DA-ISC 2d). Synapses: isotropic synthetic volumes with pre/post points, noadapt, masktwins and oracle with the 3D ResUNet the same way, the source model first scored on a held-out source volume, points by the AdaSyn protocol, WASPSYN scores. Writes runs/demo/report.json and errors.png.")
    d.add_argument("--config", default=None, help="mito training config for every method (default: configs/mito_demo.yaml)")
    d.add_argument("--synapse-config", default=None, help="synapse training config (default: configs/synapse_demo.yaml)")
    d.add_argument("--tracks", nargs="+", default=list(DEFAULT_TRACKS), help=f"mito, synapse or both (default: {' '.join(DEFAULT_TRACKS)})")
    d.add_argument("--data", default="volumes/demo", help="where the synthetic volumes are written (default: volumes/demo)")
    d.add_argument("--out", default="runs/demo", help="run folder (default: runs/demo)")
    d.add_argument("--methods", nargs="+", default=None, help=f"mito methods among {' '.join(METHODS)} (default: {' '.join(DEMO_METHODS)})")
    d.add_argument("--synapse-methods", nargs="+", default=None,
                   help=f"synapse methods among {' '.join(METHODS)} (default: {' '.join(SYNAPSE_METHODS)})")
    d.add_argument("--seed", type=int, default=0, help="seed of the data and of every run (default: 0)")
    d.add_argument("--iterations", type=int, default=None, help="mito source-model iterations (default: the config's)")
    d.add_argument("--synapse-iterations", type=int, default=None, help="synapse source-model iterations (default: the config's)")
    d.add_argument("--adapt-iterations", type=int, default=None,
                   help=f"mito iterations of every method from the source model (default: {ADAPT_ITERATIONS['mito']})")
    d.add_argument("--synapse-adapt-iterations", type=int, default=None,
                   help=f"synapse iterations of every method from the source model (default: {ADAPT_ITERATIONS['synapse']})")
    d.add_argument("--overwrite", action="store_true", help="replace existing demo volumes and runs")
    d.set_defaults(func=cmd_demo)


def _add_train(sub) -> None:
    """The ``train`` subcommand."""
    t = sub.add_parser("train", help="train one method from a YAML config",
                       description="Train as the YAML config says; key=value overrides use dotted keys, e.g. method=masktwins optim.lr=1e-4 data.crop=[256,256]. On several GPUs or CPU processes: torchrun --nproc_per_node N -m masktwins3d train --config ... (DistributedDataParallel; data.batch_size is per process, rank 0 writes the run folder).")
    t.add_argument("--config", required=True, help="YAML run config (see configs/)")
    t.add_argument("overrides", nargs="*", help="dotted key=value overrides")
    t.add_argument("--overwrite", action="store_true", help="replace an existing run folder")
    t.add_argument("--resume", action="store_true", help="continue the run in train.out_dir from its checkpoint.pt")
    t.set_defaults(func=cmd_train)


def _add_predict(sub) -> None:
    """The ``predict`` subcommand."""
    r = sub.add_parser("predict", help="predict probabilities over a volume with a checkpoint",
                       description="Blockwise sliding-window prediction, blended, out of core (2D models section by section, 3D models in 3D windows): the volume is cut into blocks (write region + half a patch of context), each written to a chunk-aligned probability zarr (C, Z, Y, X) with the input's voxel size and offset; a manifest in the output lets --resume finish an interrupted run; --scheduler runs blocks on a dask cluster.")
    r.add_argument("--checkpoint", required=True, help="checkpoint.pt written by `masktwins3d train`")
    r.add_argument("--input", required=True, help="image volume spec (x.zarr/raw, f.h5:/raw, stack.tif, folder, precomputed://PATH_OR_URL, n5://PATH/dataset)")
    r.add_argument("--scale", type=int, default=None, help="resolution level of a precomputed:// input (default: 0, full resolution)")
    r.add_argument("--voxel-size", default=None, help="Z,Y,X in nm, replacing the input's (needed for an N5 input without resolution attributes)")
    r.add_argument("--output", required=True, help="output zarr path, e.g. runs/x/prob.zarr, or precomputed://PATH (local) to view it in Neuroglancer")
    r.add_argument("--patch", type=_int_tuple, default=None, help="window in voxels, multiples of 16: Y,X for 2D, Z,Y,X for 3D models (default: 256,256 or 64,64,64)")
    r.add_argument("--overlap", default="0.25", help="window overlap fraction in [0, 1): one value, or one per patch axis (Y,X or Z,Y,X) (default: 0.25)")
    r.add_argument("--blend", choices=values(BlendMode), default="gaussian", help="weighting of overlapping windows (default: gaussian)")
    r.add_argument("--tta", action="store_true", help="flip test-time augmentation: mean over all flips of the spatial axes (4 passes for 2D, 8 for 3D)")
    r.add_argument("--batch-size", type=int, default=4, help="windows per forward pass (default: 4)")
    r.add_argument("--block", default=None, help="write region per block, Z,Y,X voxels (default: 4,2048,2048 for 2D, 128,256,256 for 3D models)")
    r.add_argument("--scheduler", default="none", help="none (this process) | local[:N] (dask LocalCluster of N processes) | ADDRESS of a dask scheduler (default: none)")
    r.add_argument("--threads", type=int, default=None, help="torch threads per block worker (default: CPU cores / workers); equal values give bit-identical outputs")
    r.add_argument("--device", default="auto", help="auto | cpu | cuda[:N] (default: auto)")
    r.add_argument("--dtype", choices=values(OutDtype), default="float32", help="output dtype (default: float32)")
    r.add_argument("--amp", choices=values(Amp), default="auto",
                   help="bf16 autocast: auto (a GPU with bf16, or a CPU with native bf16 units: AMX / AVX512-BF16; fp32 elsewhere) | on | off "
                        "(default: auto; the choice and why are printed)")
    r.add_argument("--resume", action="store_true", help="finish an interrupted run into --output: skip the blocks its manifest lists (same settings required)")
    r.add_argument("--allow-missing", action="store_true",
                   help="accept a zarr input with missing chunks (they read as its fill value); default: refuse")
    r.add_argument("--resample", choices=values(Resample), default="auto",
                   help="auto: a 2D model predicts an input of another known in-plane voxel size (over 5 %% apart) at the voxel size it was trained at, "
                        "and the probabilities come back on the input's grid; never: predict the input as it is (default: auto)")
    r.add_argument("--weights", choices=values(Weights), default="student",
                   help="which weights of the checkpoint predict: the last student iterate (default) or the EMA of the weights")
    r.add_argument("--overwrite", action="store_true", help="replace an existing output")
    r.set_defaults(func=cmd_predict)


def _add_evaluate(sub) -> None:
    """The ``evaluate`` subcommand."""
    e = sub.add_parser("evaluate", help="score predictions against ground truth",
                       description="Score predictions with the published protocols (EVALUATION.md).")
    esub = e.add_subparsers(dest="what", required=True, metavar="{mito,synapse}")
    m = esub.add_parser("mito", help="mitochondria: IoU, F1, MCC, mAP (DA-ISC protocol)",
                        description="DA-ISC mitochondria scores: per-section mean (2d, published protocol) or whole volume (3d).")
    m.add_argument("--pred", required=True, help="foreground probability volume (ZYX, or CZYX with one channel)")
    m.add_argument("--gt", required=True, help="binary ground truth volume (0/1, 0/255 or bool)")
    m.add_argument("--mode", choices=values(EvalMode), default="2d", help="2d: mean over sections (default); 3d: whole volume")
    m.add_argument("--empty", choices=values(EmptyRule), default="skip", help="sections with empty ground truth (default: skip)")
    m.add_argument("--threshold", type=float, default=0.5, help="binarisation threshold (default: 0.5)")
    m.add_argument("--channel", type=int, default=None, help="channel of a multi-channel prediction")
    m.add_argument("--json", required=True, help="output JSON report")
    m.add_argument("--csv", default=None, help="optional per-section CSV")
    m.add_argument("--overwrite", action="store_true", help="replace existing reports")
    m.set_defaults(func=cmd_evaluate_mito)
    y = esub.add_parser("synapse", help="synapses: F1_pre, F1_post, F1 (WASPSYN protocol)",
                        description="WASPSYN scorer: pre points matched by Hungarian assignment then the radius (official), posts scored inside matched pre pairs; extras: unlinked post F1, connectivity, pair recall.")
    y.add_argument("--pred", required=True, help="predicted points: WASPSYN .h5 (pre, post) or CSV folder, chunk-local voxels")
    y.add_argument("--gt", required=True, help="ground-truth points: WASPSYN .h5 or CSV folder")
    y.add_argument("--offset", default=None, help="z,y,x subtracted from the GT (default: parsed from a syns_zyx_* GT name, else 0,0,0)")
    y.add_argument("--mode", choices=values(MatchMode), default="waspsyn", help="waspsyn: official Hungarian then radius (default); strict: most matches within the radius")
    y.add_argument("--r-pre", type=float, default=11.0, help="pre match radius in voxels (default: 11)")
    y.add_argument("--r-post", type=float, default=6.5, help="post match radius in voxels (default: 6.5)")
    y.add_argument("--json", required=True, help="output JSON report")
    y.add_argument("--overwrite", action="store_true", help="replace an existing report")
    y.set_defaults(func=cmd_evaluate_synapse)


def _add_postprocess(sub) -> None:
    """The ``postprocess`` subcommand."""
    pp = sub.add_parser("postprocess", help="turn probabilities into objects",
                        description="Post-processing of predicted probability volumes.")
    psub = pp.add_subparsers(dest="what", required=True, metavar="{mito,synapse}")
    pm = psub.add_parser("mito", help="mitochondria instance labels from a probability volume (blockwise, exact stitching)",
                         description="Foreground p >= threshold, connected components (cc3d) block by block, stitched across block faces, "
                                     "edges and corners: the labels equal whole-volume connected components (numbered 1..N in raster order "
                                     "of each instance's first voxel; 0 background). Writes a uint32 OME-Zarr with the input's voxel size "
                                     "and offset. The plain binary mask is labels > 0 (e.g. open_volume('out.zarr')[:] > 0).")
    pm.add_argument("--prob", required=True, help="foreground probability volume: ZYX, or CZYX with --channel; float in [0, 1] or uint8 0..255")
    pm.add_argument("--out", required=True, help="output label zarr, e.g. runs/x/mito.zarr")
    pm.add_argument("--threshold", default="0.5", help="foreground when p >= threshold (default: 0.5, as the DA-ISC scores)")
    pm.add_argument("--channel", default=None, help="channel of a CZYX volume (default: the only one; e.g. 1 for a 2-class softmax)")
    pm.add_argument("--connectivity", default="26", help="6 (faces), 18 (+ edges) or 26 (+ corners) (default: 26)")
    pm.add_argument("--min-size", default="1", help="remove instances with fewer voxels, whole-volume size (default: 1, keep all)")
    pm.add_argument("--block", default=None, help="work block by block with this shape Z,Y,X in voxels, resumable (same labels; default: the whole "
                                                  "volume in one pass up to 2**28 voxels, else blocks of 64,512,512); output chunks divide it")
    pm.add_argument("--scheduler", default="none", help="none (this process, default), local or local:N (dask LocalCluster), or a dask scheduler address tcp://host:8786")
    pm.add_argument("--overwrite", action="store_true", help="replace an existing output")
    pm.add_argument("--resume", action="store_true", help="finish an interrupted block-by-block run into --out: only the blocks its manifest "
                                                          "does not list are labelled and written (same settings required)")
    pm.set_defaults(func=cmd_postprocess_mito)
    ps = psub.add_parser("synapse", help="pre/post points from a 2-channel probability map (AdaSyn protocol)",
                         description="uint8 quantisation, thresholds, 26-connected components, pre components under 2 voxels dropped, truncated centroids, each post linked to the nearest pre; WASPSYN h5 and optional CSV.")
    ps.add_argument("--prob", required=True, help="(2, Z, Y, X) probability volume (pre, post), e.g. runs/x/prob.zarr")
    ps.add_argument("--out", required=True, help="output points .h5 (WASPSYN layout)")
    ps.add_argument("--csv", default=None, help="also write pre.csv and post.csv into this folder")
    ps.add_argument("--thresholds", type=_float_pair, default=(0.75, 0.65), help="delta_pre,delta_post (default: 0.75,0.65)")
    ps.add_argument("--min-pre-voxels", type=int, default=2, help="drop pre components smaller than this (default: 2)")
    ps.add_argument("--block", default=None, help="work block by block with this shape Z,Y,X in voxels (same points as whole-volume; "
                                                  "default: whole volume, or blocks of 64,512,512 above 2**28 voxels per channel)")
    ps.add_argument("--scheduler", default="none", help="none (this process, default), local or local:N (dask LocalCluster), or a dask scheduler address; implies blockwise")
    ps.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    ps.add_argument("--resume", action="store_true", help="finish an interrupted block-by-block run for --out: only the blocks its manifest "
                                                          "does not list are labelled (same settings required; implies blockwise)")
    ps.set_defaults(func=cmd_postprocess_synapse)


def _add_convert(sub) -> None:
    """The ``convert`` subcommand."""
    cv = sub.add_parser("convert", help="image or label stacks (section folders, TIFF, HDF5) to OME-Zarr with voxel size",
                        description="Convert a folder of PNG/TIFF sections, a multi-page TIFF, an HDF5 dataset (file.h5:/key) or a zarr array "
                                    "to an OME-Zarr 0.5 volume (zarr v3, chunked, blosc zstd) with voxel size and offset, section by section "
                                    "(memory: one chunk of sections). Images keep their dtype (uint8, uint16, float...), RGB(A) keeps channel 0, "
                                    "palette images become grey. --label writes uint8 0/1: --rule nonzero (value > 0: 0/1, 0/255, 1-and-255, "
                                    "palette 0/1 read as indices, instance ids) or --rule half (value > 127: antialiased 0/255 masks). "
                                    "Or convert a dataset split named by a descriptor in volumes/*.yaml: --dataset vnc3 --data-root DIR --split stack1. "
                                    "Prints what it found; checks everything it can before writing anything.")
    cv.add_argument("--input", default=None, help="input: folder of .png/.tif sections, stack.tif, file.h5:/key or x.zarr/array")
    cv.add_argument("--output", required=True, help="output OME-Zarr, e.g. volumes/mine.zarr/raw (with --dataset: a store, one volume per name inside)")
    cv.add_argument("--label", action="store_true", help="label stack: write uint8 0/1 under --rule")
    cv.add_argument("--rule", default="nonzero", help="label rule: nonzero (value > 0, default) or half (value > 127)")
    cv.add_argument("--voxel-size", default=None, help="Z,Y,X in nm (default: the input's metadata, the dataset descriptor's, or --like's; else required)")
    cv.add_argument("--offset", default=None, help="Z,Y,X in voxels (default: the input's metadata, or --like's, else 0,0,0)")
    cv.add_argument("--like", default=None, help="image volume the input must match in shape (e.g. the image of a label stack); also lends its voxel size and offset")
    cv.add_argument("--sections", default=None, help="START,STOP: convert sections START <= z < STOP only (with --input; default: all)")
    cv.add_argument("--chunks", default=None, help="output chunk shape Z,Y,X in voxels (default: 1,256,256)")
    cv.add_argument("--dataset", default=None, help="dataset name from volumes/*.yaml (see `masktwins3d datasets`) or a descriptor .yaml")
    cv.add_argument("--data-root", default=None, help="folder holding the dataset's files (with --dataset)")
    cv.add_argument("--split", default=None, help="split of the dataset, e.g. stack1 (with --dataset)")
    cv.add_argument("--volumes", nargs="+", default=None, help="names to convert from the split, e.g. raw mito (default: all)")
    cv.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    cv.add_argument("--allow-missing", action="store_true",
                    help="accept a zarr image input with missing chunks (they read as its fill value); default: refuse")
    cv.set_defaults(func=cmd_convert)


def _add_resample(sub) -> None:
    """The ``resample`` subcommand."""
    rs = sub.add_parser("resample", help="zoom a volume's sections in-plane (e.g. down-sample 2x before training), or back onto a grid",
                        description="Write a volume with every z-section zoomed in-plane by --scale (Z is never resampled) to a new "
                                    "OME-Zarr, one section at a time: linear and anti-aliased for images (float32 unless --dtype), "
                                    "nearest for --label volumes (their own dtype). The voxel size is divided by the zoom (an unknown one stays "
                                    "unknown). With --like, the output takes that volume's in-plane shape, voxel size and offset "
                                    "exactly: bring predictions made on a down-sampled target back onto its own grid.")
    rs.add_argument("--input", required=True, help="volume to resample: x.zarr/raw, file.h5:/key, a TIFF stack...")
    rs.add_argument("--output", required=True, help="output OME-Zarr, e.g. volumes/source_half.zarr/raw")
    rs.add_argument("--scale", required=True, help="in-plane zoom, one value or Y,X: 0.5 halves the pixels per axis, 2 doubles them")
    rs.add_argument("--label", action="store_true", help="a label volume: nearest neighbour, its own dtype")
    rs.add_argument("--like", default=None, help="volume whose in-plane grid the output takes (e.g. the native target, for probabilities)")
    rs.add_argument("--dtype", default=None, choices=("uint8", "uint16", "float32"),
                    help="output dtype of an image (default float32; labels keep theirs)")
    rs.add_argument("--overwrite", action="store_true", help="replace an existing output")
    rs.set_defaults(func=cmd_resample)


def _add_export(sub) -> None:
    """The ``export`` subcommand."""
    ex = sub.add_parser("export", help="share a trained model: a bioimage.io model package",
                        description="Package a checkpoint for other tools (ilastik, deepImageJ, QuPath, BiaPy, bioimageio.core).")
    exsub = ex.add_subparsers(dest="what", required=True, metavar="{bioimageio}")
    eb = exsub.add_parser("bioimageio", help="bioimage.io model zip: TorchScript + state-dict weights, preprocessing, test tensors",
                          description="Write a bioimage.io model package (current spec): TorchScript and PyTorch state-dict weights "
                                      "with a self-contained architecture file, both ending in the head's softmax or sigmoid; "
                                      "the training normalisation as preprocessing (dtype range to [0, 1], z-score with the "
                                      "volume's statistics); axes and voxel size in nm; a test crop of the volume and its expected "
                                      "output; README with the training data, method and citations. Validated offline; "
                                      "check it with `bioimageio test model.zip`.")
    eb.add_argument("--checkpoint", required=True, help="checkpoint.pt written by `masktwins3d train`")
    eb.add_argument("--out", required=True, help="the package to write, e.g. model.zip")
    eb.add_argument("--input", default=None, help="image volume for the test crop and the normalisation statistics (default: the run's target raw volume)")
    eb.add_argument("--weights", choices=values(Weights), default="student", help="which weights of the checkpoint (default: student, as predict)")
    eb.add_argument("--name", default=None, help="model name (default: masktwins3d <track> <method> <network>)")
    eb.add_argument("--author", nargs="+", default=None, help="author names (default: this login name)")
    eb.add_argument("--license", default="CC-BY-4.0", help="SPDX licence of the weights (default: CC-BY-4.0)")
    eb.add_argument("--test", action="store_true", help="then run bioimageio.core's test_model on the package, offline (what `bioimageio test` runs)")
    eb.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    eb.set_defaults(func=cmd_export_bioimageio)


def _add_view(sub) -> None:
    """The ``view`` subcommand."""
    vw = sub.add_parser("view", help="raw, probabilities, labels and synapse points in a local Neuroglancer viewer",
                        description="Serve volumes (any format masktwins3d reads, lazily, placed in nm by their voxel size and offset) "
                                    "and synapse points to a Neuroglancer viewer run by this process, print its link and serve until Ctrl-C. "
                                    "Nothing is fetched from the network.")
    vw.add_argument("--raw", required=True, help="image volume (x.zarr/raw, f.h5:/raw, precomputed://PATH, n5://PATH/dataset, ...)")
    vw.add_argument("--pred", nargs="+", default=None, help="probability volumes (ZYX or CZYX), e.g. runs/x/prob.zarr")
    vw.add_argument("--labels", nargs="+", default=None, help="label or instance volumes (segmentation layers), e.g. runs/x/mito.zarr")
    vw.add_argument("--points", default=None, help="synapse points (WASPSYN .h5 or a CSV folder) in --raw's voxels")
    vw.add_argument("--scale", type=int, default=None, help="resolution level of a precomputed:// --raw (default: 0)")
    vw.add_argument("--bind", default="127.0.0.1", help="address the viewer listens on (default: 127.0.0.1, this machine only)")
    vw.add_argument("--port", type=int, default=0, help="port (default: 0, a free one)")
    vw.add_argument("--open", action="store_true", help="open the link in a web browser")
    vw.add_argument("--no-wait", action="store_true", help="print the link and exit (the viewer stops with the process)")
    vw.set_defaults(func=cmd_view)


def _add_datasets(sub) -> None:
    """The ``datasets`` subcommand."""
    ds = sub.add_parser("datasets", help="list the dataset descriptors in volumes/*.yaml",
                        description="Show each dataset descriptor: voxel size, citation, licence and its splits' volumes; with --data-root, mark missing files.")
    ds.add_argument("name", nargs="?", default=None, help="one dataset (default: all)")
    ds.add_argument("--data-root", default=None, help="resolve paths under this folder and mark missing ones")
    ds.set_defaults(func=cmd_datasets)


def build_parser() -> argparse.ArgumentParser:
    """The ``masktwins3d`` command line: one subcommand per verb (each built by its ``_add_*``)."""
    p = argparse.ArgumentParser(prog="masktwins3d", description="Adapt EM segmentation networks to new, unlabelled volumes with MaskTwins.")
    p.add_argument("--version", action="version", version=f"masktwins3d {__version__}")
    sub = p.add_subparsers(dest="verb", required=True, metavar="{demo,train,predict,postprocess,evaluate,convert,resample,export,view,datasets}")
    _add_demo(sub)
    _add_train(sub)
    _add_predict(sub)
    _add_evaluate(sub)
    _add_postprocess(sub)
    _add_convert(sub)
    _add_resample(sub)
    _add_export(sub)
    _add_view(sub)
    _add_datasets(sub)
    return p


_NEGATIVE = re.compile(r"^-\d")


def join_negative_values(argv: list[str]) -> list[str]:
    """``--offset -5,0,0`` -> ``--offset=-5,0,0``: argparse would read a value that starts with a
    minus sign and is not a plain number as an unknown option."""
    out: list[str] = []
    for token in argv:
        if out and out[-1].startswith("--") and "=" not in out[-1] and _NEGATIVE.match(token):
            out[-1] = f"{out[-1]}={token}"
        else:
            out.append(token)
    return out


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(join_negative_values(list(sys.argv[1:] if argv is None else argv)))
    try:
        return args.func(args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # the file system said no: permission, space, a file where a folder should be
        if exc.filename is None:
            raise
        print(f"error: cannot use {exc.filename} ({exc.strerror or type(exc).__name__}); check that the path is right, "
              "that you may write there and that the disk has space", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
