"""CUDA checks of the prediction engine (run on a GPU machine): CUDA-graph replay equals eager,
TTA and uint8 work on the device, and a blockwise run matches the in-memory region.

    python benchmarks/check_cuda_engine.py
"""

import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from masktwins3d.config import ModelConfig  # noqa: E402
from masktwins3d.inference import check_window_settings, predict_blockwise, predict_region  # noqa: E402
from masktwins3d.io import Volume  # noqa: E402
from masktwins3d.models import build_model  # noqa: E402


def main() -> int:
    torch.manual_seed(0)
    for name, shape, patch, head in (("unet2d", (3, 300, 280), (128, 128), "softmax"), ("resunet3d", (40, 90, 100), (32, 32, 32), "sigmoid")):
        model = build_model(ModelConfig(name=name, widths=[8, 16, 16, 32, 32], head=head, adain=False)).cuda().eval()
        data = np.random.default_rng(0).normal(size=shape).astype(np.float32)
        for tta in (False, True):
            s = check_window_settings(len(patch), patch, 0.25, "gaussian", 3, tta=tta, activation=head, amp=True)
            graphs = predict_region(model, data, s, "cuda")
            again = predict_region(model, data, s, "cuda")
            eager = predict_region(model, data, replace(s, cuda_graphs=False), "cuda")
            fp32 = predict_region(model, data, replace(s, amp=False, cuda_graphs=False), "cuda")
            cpu = predict_region(model.cpu(), data, replace(s, amp=False), "cpu")
            model.cuda()
            print(f"{name} tta={tta}: graphs==eager {np.array_equal(graphs, eager)}  replay==replay {np.array_equal(graphs, again)}  "
                  f"|bf16-fp32| {np.abs(graphs - fp32).max():.2e}  |cuda fp32 - cpu| {np.abs(fp32 - cpu).max():.2e}")
        with tempfile.TemporaryDirectory() as tmp:
            vol = Volume(data, path="<memory>", axes="zyx")
            s = check_window_settings(len(patch), patch, 0.25, "gaussian", 3, activation=head)
            out = predict_blockwise(model, vol, Path(tmp) / "p.zarr", preprocess=np.asarray, patch_size=patch, batch_size=3,
                                    activation=head, device="cuda", out_dtype="uint8", block_shape=(64, 512, 512), progress=False)
            ref = predict_region(model, data, s, "cuda", out_dtype="uint8")
            print(f"{name} blockwise (one block) uint8 == region uint8: {np.array_equal(out[...], ref)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
