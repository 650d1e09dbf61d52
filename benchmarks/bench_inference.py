"""Sliding-window inference: our engine against ``monai.inferers.sliding_window_inference``.

Both get the same work: the same model (random weights, eval mode), the same in-memory float32
volume (numpy in), patch, overlap, gaussian blending (sigma 0.125 of the patch), batch size,
``torch.inference_mode`` (and bf16 autocast on CUDA with ``--amp``), and both return softmax
probabilities of classes 1..K-1 (sigmoid for ``resunet3d``) as numpy. A 2D model predicts the
volume's sections (their windows batched together), a 3D model the whole volume. Each repeat
runs MONAI and ours back to back; the medians are compared:

    ratio = median time MONAI / median time ours   (> 1: ours is faster; the goal is >= 1.2)

and the largest absolute difference of the probabilities is printed (expected < 1e-4 in
float32; bf16 autocast differs more, the same for both).

``--profile`` runs one more pass of each under ``torch.profiler`` and prints the operators that
take the time, so a note can say what bounds the run (on a CPU: the convolutions).

    python benchmarks/bench_inference.py --model unet2d --shape 8,1024,1024 --patch 256,256
    python benchmarks/bench_inference.py --model resunet3d --shape 96,256,256 --patch 64,64,64 --device cuda --amp
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from masktwins3d.config import ModelConfig  # noqa: E402
from masktwins3d.inference import check_window_settings, predict_region  # noqa: E402
from masktwins3d.models import build_model  # noqa: E402


def ints(text: str) -> tuple[int, ...]:
    return tuple(int(v) for v in text.split(","))


def build(args) -> tuple[torch.nn.Module, str]:
    torch.manual_seed(0)
    head = "softmax" if args.model == "unet2d" else "sigmoid"
    widths = ints(args.widths) if args.widths else ((16, 32, 64, 128, 128) if args.model == "unet2d" else (28, 36, 48, 64, 80))
    cfg = ModelConfig(name=args.model, widths=list(widths), out_channels=2, head=head, adain=False)
    return build_model(cfg).to(args.device).eval(), head


def monai_predict(model, data: np.ndarray, args, head: str) -> np.ndarray:
    """MONAI's sliding window on the same input: numpy -> device -> windows -> probabilities -> numpy."""
    from monai.inferers import sliding_window_inference

    dims = getattr(model, "spatial_dims", 2)
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if args.amp and args.device == "cuda" else nullcontext()

    def predictor(batch):
        with amp:
            return model(batch).float()

    with torch.inference_mode():
        x = torch.from_numpy(data).to(args.device)
        image = x[:, None] if dims == 2 else x[None, None]
        logits = sliding_window_inference(
            image, ints(args.patch), args.batch_size, predictor, overlap=args.overlap, mode="gaussian", sigma_scale=0.125
        )
        logits = torch.as_tensor(logits)
        logits = logits.transpose(0, 1) if dims == 2 else logits[0]
        prob = torch.softmax(logits, 0)[1:] if head == "softmax" else torch.sigmoid(logits)
        return prob.cpu().numpy()


def ours_predict(model, data: np.ndarray, args, head: str) -> np.ndarray:
    dims = getattr(model, "spatial_dims", 2)
    settings = check_window_settings(dims, ints(args.patch), args.overlap, "gaussian", args.batch_size, activation=head, amp=args.amp)
    return predict_region(model, data, settings, args.device)


def timed(fn, *a) -> tuple[float, np.ndarray]:
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    t = time.perf_counter()
    out = fn(*a)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - t, out


def profile(fn, model, data, args, head, label: str) -> None:
    from torch.profiler import ProfilerActivity, profile as torch_profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if args.device == "cuda" else [])
    with torch_profile(activities=activities) as prof:
        fn(model, data, args, head)
    key = "self_cuda_time_total" if args.device == "cuda" else "self_cpu_time_total"
    print(f"\n--- profile: {label} (top operators by {key}) ---")
    print(prof.key_averages().table(sort_by=key, row_limit=args.profile_rows, max_name_column_width=40))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", choices=["unet2d", "resunet3d"], default="unet2d")
    p.add_argument("--widths", default=None, help="stage widths (default: demo 16,32,64,128,128 for unet2d; paper 28,36,48,64,80 for resunet3d)")
    p.add_argument("--shape", default="4,512,512", help="volume Z,Y,X in voxels (default: 4,512,512)")
    p.add_argument("--patch", default=None, help="window (default: 256,256 for unet2d, 64,64,64 for resunet3d)")
    p.add_argument("--overlap", type=float, default=0.25, help="window overlap fraction (default: 0.25)")
    p.add_argument("--batch-size", type=int, default=4, help="windows per forward pass, both engines (default: 4)")
    p.add_argument("--repeats", type=int, default=3, help="timed repeats of each engine after one warm-up (default: 3)")
    p.add_argument("--device", default="cpu", help="cpu | cuda (default: cpu)")
    p.add_argument("--amp", action="store_true", help="bf16 autocast on CUDA for both engines")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--profile", action="store_true", help="print torch.profiler tables of one pass of each engine")
    p.add_argument("--profile-rows", type=int, default=12)
    args = p.parse_args(argv)
    args.patch = args.patch or ("256,256" if args.model == "unet2d" else "64,64,64")
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device == "cuda":
        torch.backends.cudnn.benchmark = True
    model, head = build(args)
    data = np.random.default_rng(0).normal(size=ints(args.shape)).astype(np.float32)

    # warm-up (allocators, cuDNN autotuning), then alternate the engines repeat by repeat
    _, ref = timed(monai_predict, model, data, args, head)
    _, got = timed(ours_predict, model, data, args, head)
    times = {"monai": [], "ours": []}
    for _ in range(args.repeats):
        t, ref = timed(monai_predict, model, data, args, head)
        times["monai"].append(t)
        t, got = timed(ours_predict, model, data, args, head)
        times["ours"].append(t)
    med = {k: statistics.median(v) for k, v in times.items()}
    device = torch.cuda.get_device_name() if args.device == "cuda" else f"cpu ({torch.get_num_threads()} threads)"
    print(f"{args.model} widths {getattr(args, 'widths', None) or 'default'}, volume {args.shape}, patch {args.patch}, overlap {args.overlap}, "
          f"batch {args.batch_size}, {device}{', bf16 autocast' if args.amp and args.device == 'cuda' else ''}")
    for k in ("monai", "ours"):
        print(f"  {k:5s}: median {med[k]:.3f} s  ({', '.join(f'{t:.3f}' for t in times[k])})")
    print(f"  ratio MONAI/ours: {med['monai'] / med['ours']:.2f}x   max |difference|: {np.abs(ref - got).max():.2e}")
    if args.profile:
        profile(ours_predict, model, data, args, head, "ours")
        profile(monai_predict, model, data, args, head, "MONAI")
    return 0


if __name__ == "__main__":
    sys.exit(main())
