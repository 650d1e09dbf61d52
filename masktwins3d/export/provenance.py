"""What an exported model says about itself: training summary, citations and its README.

All of it comes from the checkpoint (its resolved config, step, voxel size, commit) and the
volume the package was made for; citations are text with DOIs, nothing is looked up online.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from .. import __version__
from ..errors import UserError

PAPER = ("Wang, Chen, Liu, Liu, Liu, Gao, Xiong: Dual-form complementary masking for domain-adaptive "
         "image segmentation (MaskTwins), ICML 2025, arXiv:2507.12008", "10.48550/arXiv.2507.12008")
"""(text, DOI) of the method's paper."""

CITATIONS = {
    "unet2d": ("Ronneberger, Fischer, Brox: U-Net: convolutional networks for biomedical image segmentation, MICCAI 2015",
               "10.1007/978-3-319-24574-4_28"),
    "resunet3d": ("Lee, Zung, Li, Jain, Seung: Superhuman accuracy on the SNEMI3D connectomics challenge, 2017, arXiv:1706.00120",
                  "10.48550/arXiv.1706.00120"),
}
"""(text, DOI) of each network's paper."""


def run_config(state: dict) -> dict:
    """The run's resolved config (the YAML a checkpoint keeps), or {} when it has none."""
    try:
        run = yaml.safe_load(state.get("config") or "") or {}
    except yaml.YAMLError:
        run = {}
    return run if isinstance(run, dict) else {}


def training_summary(state: dict, run: dict, checkpoint, weights: str) -> dict:
    """Method, source and target data, budget, network and provenance of a checkpoint (JSON-able)."""
    data = run.get("data") or {}
    cfg = state.get("model_config") or {}

    def where(key):
        vol = data.get(key) or {}
        return vol.get("dataset") or vol.get("raw") or "not recorded"

    optim = run.get("optim") or {}
    return {
        "method": run.get("method", "unknown"),
        "source": where("source"),
        "target": where("target"),
        "iterations": int(state.get("step", 0)),
        "crop": data.get("crop"),
        "batch_size": data.get("batch_size"),
        "lr": optim.get("lr"),
        "network": {k: cfg.get(k) for k in ("name", "widths", "head", "norm", "out_channels")},
        "training_voxel_size_zyx_nm": state.get("voxel_size"),
        "weights": weights,
        "checkpoint": Path(checkpoint).name,
        "commit": state.get("commit"),
    }


def citations(run: dict, network: str) -> list[tuple[str, str]]:
    """(text, DOI) of the paper, the network and, when its descriptor gives a DOI, the source data."""
    cites = [PAPER, CITATIONS[network]]
    dataset = ((run.get("data") or {}).get("source") or {}).get("dataset")
    if dataset:
        try:
            from ..io.datasets import load_dataset

            text = load_dataset(str(dataset).split(":")[0], None).citation
        except (UserError, OSError, KeyError):
            text = None
        doi = re.search(r"doi:\s*(10\.\S+)", text or "")
        if doi:
            cites.append((f"source data: {text}", doi.group(1).rstrip(".,;")))
    return cites


def nm(values) -> str:
    return " x ".join(f"{float(v):g}" for v in values)


def readme(name: str, track: str, dims: int, channels: list[str], training: dict, volume, norm, gain: float,
           cites: list[tuple[str, str]]) -> str:
    """The package's README: training, input and preprocessing, output, validation, citations."""
    net = training["network"]
    method = training["method"]
    how = "complementary-mask consistency, MaskTwins, Wang et al. ICML 2025" if method == "masktwins" else "see masktwins3d METHOD.md"
    out = "softmax class probabilities" if net.get("head") == "softmax" else "sigmoid probabilities, one channel each"
    cited = "\n".join(f"- {text}, doi:{doi}" for text, doi in cites)
    return f"""# {name}

A {'2D U-Net (one EM section at a time)' if dims == 2 else '3D residual U-Net (isotropic blocks)'} for
{track} in electron microscopy, trained with masktwins3d {__version__}.

## Training
- method: `{method}` ({how})
- labelled source data: `{training['source']}`
- unlabelled target data (adapted to): `{training['target']}`
- iterations: {training['iterations']}, crop {training['crop']}, batch {training['batch_size']}, learning rate {training['lr']}
- network: {net.get('name')}, widths {list(net.get('widths') or [])}, {net.get('head')} head, outputs: {', '.join(channels)}
- voxel size the model learned at: {training['training_voxel_size_zyx_nm']} nm (Z, Y, X)
- weights: {training['weights']}

## Input and preprocessing
Input `raw`: {volume.dtype}, axes batch, channel{', y, x' if dims == 2 else ', z, y, x'}; spatial sizes are multiples of 16, at least 32.
Voxel size of the exported-for volume: {nm(volume.voxel_size)} nm (Z, Y, X).
Preprocessing (as masktwins3d trains and predicts): to float32, times {gain:.6g} (to [0, 1]),
then z-score with mean {norm.mean:.6g} and std {norm.std:.6g}, the statistics of `{volume.path}`.
For another volume, replace these two numbers by its own (masktwins3d computes them from up to 16
evenly spaced sections).

## Output
`prob`: {out} ({', '.join(channels)}), same spatial size as the input.
masktwins3d predicts large volumes with blended sliding windows (`masktwins3d predict`); mitochondria
masks are `p >= 0.5`, synapse points come from `masktwins3d postprocess synapse`.

## Validation
The package's test input is a centred crop of `{volume.path}` and its expected output was computed
by the trained network; TorchScript weights, the state-dict weights with `masktwins3d_net.py` and
the preprocessing reproduce it (`bioimageio test model.zip`). Accuracy on held-out data is not part
of the package: score predictions with `masktwins3d evaluate` (DA-ISC mitochondria metrics, WASPSYN
synapse F1).

## Citations
{cited}
"""
