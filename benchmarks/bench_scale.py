"""Out-of-core scaling of blockwise prediction: peak memory and time on a volume and on one with 8x its voxels.

Writes two uint8 zarr volumes (``--shape`` and twice it along every axis), a checkpoint with
random weights, then predicts each volume with ``masktwins3d predict``'s engine in its own
subprocess and reads that process's peak resident memory (``resource.getrusage`` ru_maxrss), so
the two peaks do not mix. Both runs use the same block shape, so memory should stay flat and
time grow about linearly:

    goal: peak RSS (8x) <= 1.3 x peak RSS (1x), and time (8x) <= 9 x time (1x)

    python benchmarks/bench_scale.py --shape 4,1024,1024 --patch 64,64 --block 2,512,512
    python benchmarks/bench_scale.py --model resunet3d --shape 64,128,128 --patch 32,32,32 --block 32,64,64

Time grows faster than the voxels where blocks are small next to the patch: every block predicts
its context (half a patch on each side) again, and a block on the volume's edge has context on
fewer sides. The larger volume has a larger share of inner blocks, so with a block only as large
as the patch (the quick defaults below) the time ratio is about 12; with blocks 8 patches wide
(the first command) it is under 9, and it tends to 8 as blocks grow.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def ints(text: str) -> tuple[int, ...]:
    return tuple(int(v) for v in text.split(","))


def child(args) -> int:
    """Predict one volume in this process; print its time and peak RSS as JSON."""
    import torch

    from masktwins3d.inference.checkpoint import predict_with_checkpoint

    if args.threads:
        torch.set_num_threads(args.threads)
    t = time.perf_counter()
    predict_with_checkpoint(
        args.checkpoint, args.input, args.output, patch_size=ints(args.patch), block_shape=ints(args.block),
        device=args.device, out_dtype="uint8", progress=False, threads=args.threads,
    )
    seconds = time.perf_counter() - t
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(json.dumps({"seconds": seconds, "peak_rss_mib": peak_kib / 1024}))
    return 0


def write_inputs(root: Path, shape: tuple[int, ...], model: str, widths, seed: int = 0) -> tuple[str, list[str]]:
    import torch

    from masktwins3d.config import ModelConfig
    from masktwins3d.io import create_volume
    from masktwins3d.models import build_model

    torch.manual_seed(seed)
    head = "softmax" if model == "unet2d" else "sigmoid"
    cfg = {"name": model, "in_channels": 1, "out_channels": 2, "widths": list(widths), "head": head, "adain": False, "norm": None}
    ckpt = root / "checkpoint.pt"
    torch.save({"model": build_model(ModelConfig(**cfg)).state_dict(), "model_config": cfg}, ckpt)
    rng = np.random.default_rng(seed)
    specs = []
    for factor in (1, 2):
        big = tuple(s * factor for s in shape)
        vol = create_volume(root / f"raw_x{factor ** 3}.zarr", big, np.uint8, voxel_size=(8, 8, 8), chunks=(1, min(big[1], 512), min(big[2], 512)))
        for z in range(big[0]):  # section by section: the writer stays small too
            vol[z] = rng.integers(0, 256, big[1:], dtype=np.uint8)
        specs.append(str(root / f"raw_x{factor ** 3}.zarr"))
    return str(ckpt), specs


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", choices=["unet2d", "resunet3d"], default="unet2d")
    p.add_argument("--widths", default=None, help="stage widths (default: 16,32,64,128,128 for unet2d, 8,12,16,24,32 for resunet3d)")
    p.add_argument("--shape", default="8,256,256", help="the smaller volume, Z,Y,X voxels (the larger is twice along each axis)")
    p.add_argument("--patch", default=None, help="window (default: 128,128 for unet2d, 32,32,32 for resunet3d)")
    p.add_argument("--block", default=None, help="block Z,Y,X for both runs (default: 4,128,128 for unet2d, 16,64,64 for resunet3d)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None, help="torch threads in each run (default: all cores)")
    p.add_argument("--workdir", default=None, help="folder for the volumes and outputs (default: a temporary folder)")
    # child mode
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--checkpoint", help=argparse.SUPPRESS)
    p.add_argument("--input", help=argparse.SUPPRESS)
    p.add_argument("--output", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.patch = args.patch or ("128,128" if args.model == "unet2d" else "32,32,32")
    args.block = args.block or ("4,128,128" if args.model == "unet2d" else "16,64,64")
    if args.child:
        return child(args)
    widths = ints(args.widths) if args.widths else ((16, 32, 64, 128, 128) if args.model == "unet2d" else (8, 12, 16, 24, 32))
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        root = Path(tmp)
        ckpt, specs = write_inputs(root, ints(args.shape), args.model, widths)
        results = []
        for spec in specs:
            cmd = [sys.executable, __file__, "--child", "--model", args.model, "--patch", args.patch, "--block", args.block,
                   "--device", args.device, "--checkpoint", ckpt, "--input", spec, "--output", spec.replace("raw_", "prob_")]
            if args.threads:
                cmd += ["--threads", str(args.threads)]
            done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
            if done.returncode:
                print(done.stderr, file=sys.stderr)
                return done.returncode
            results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    small, large = results
    shape = ints(args.shape)
    print(f"{args.model} widths {list(widths)}, patch {args.patch}, block {args.block}, device {args.device}")
    for name, r, s in (("1x", small, shape), ("8x", large, tuple(2 * v for v in shape))):
        print(f"  {name} {'x'.join(map(str, s)):>14s}: {r['seconds']:8.2f} s   peak RSS {r['peak_rss_mib']:8.1f} MiB")
    rss, tim = large["peak_rss_mib"] / small["peak_rss_mib"], large["seconds"] / small["seconds"]
    print(f"  peak RSS 8x/1x: {rss:.2f} (goal <= 1.3)   time 8x/1x: {tim:.2f} (goal <= 9)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
