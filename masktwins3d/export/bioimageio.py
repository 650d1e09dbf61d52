"""Export a training checkpoint as a bioimage.io model package (``model.zip``, current spec).

>>> export_bioimageio("runs/x/checkpoint.pt", "model.zip")

The package holds, for both heads (2D softmax mitochondria, 3D sigmoid synapses):

- TorchScript weights and PyTorch state-dict weights (:data:`~.architecture.CALLABLE` of a
  self-contained architecture file, :mod:`.architecture`), both ending in the head's activation,
  so consumers get probabilities;
- the input normalisation of training and prediction (:mod:`masktwins3d.data.normalize`) as
  preprocessing: ``ensure_dtype`` float32, ``scale_linear`` by the dtype range (uint8: 1/255),
  ``fixed_zero_mean_unit_variance`` with the statistics of the volume the model is exported for
  (by default the run's target volume, the one it was adapted to);
- axes (batch, channel, (z,) y, x) with the voxel size in nanometres, sizes in steps of 16;
- a test input cropped from that volume and the expected output (computed by the eager network,
  checked against the TorchScript weights and the architecture file before anything is written);
- a README with the training data, method and settings, citations as text with DOIs.

Nothing is fetched from the network: validation runs with ``perform_io_checks`` off. The zip is
written beside ``out`` and renamed into place when complete.
"""

from __future__ import annotations

import getpass
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from .. import __version__
from ..atomic import discard, put_back, set_aside
from ..errors import UserError
from .architecture import CALLABLE, architecture_source, load_architecture
from .compat import patch_bioimageio_spec

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

TOLERANCE = {"relative_tolerance": 1e-4, "absolute_tolerance": 1e-4, "mismatched_elements_per_million": 100}
"""How closely a consumer must reproduce the test output (probabilities in [0, 1])."""

SIZE_STEP = 16
"""Spatial sizes the networks take: multiples of 16 (four 2x down-samplings)."""

SIZE_MIN = 32
"""Smallest spatial size in the package: 16 would leave one voxel at the bottleneck, where
instance normalisation has no statistics."""

TEST_SIZE = {2: (1, 128, 128), 3: (32, 32, 32)}
"""Largest test crop, (Z, Y, X), by the model's number of spatial axes."""

DTYPE_GAIN = {"uint8": 1 / 255, "uint16": 1 / 65535, "float32": 1.0, "float64": 1.0, "float16": 1.0}
"""``scale_linear`` gain that maps each input dtype to the unit range (as ``to_unit_range``)."""


@dataclass(frozen=True)
class Exported:
    """What :func:`export_bioimageio` wrote.

    Args:
        path: the package (``.zip``).
        size_bytes: its size on disk.
        name: the model's name in the package.
        input_spec: the volume the test tensors and normalisation came from.
    """

    path: Path
    size_bytes: int
    name: str
    input_spec: str


def export_bioimageio(
    checkpoint: str | Path,
    out: str | Path,
    *,
    input_spec: str | None = None,
    weights: str = "student",
    name: str | None = None,
    authors: list[str] | None = None,
    license: str = "CC-BY-4.0",
    overwrite: bool = False,
) -> Exported:
    """Write ``checkpoint`` as a bioimage.io model package at ``out`` (see the module docstring).

    Args:
        checkpoint: ``checkpoint.pt`` of a training run.
        out: the package to write, a ``.zip`` path (refused if it exists, unless ``overwrite``).
        input_spec: volume for the normalisation statistics and the test crop (default: the run's
            ``data.target.raw``, else ``data.source.raw``).
        weights: ``student`` (default, as ``predict``) or ``ema``.
        name: model name (default ``masktwins3d <track> <method> <network>``).
        authors: names of the people who trained it (default: this login name).
        license: SPDX licence of the weights (default CC-BY-4.0).
        overwrite: replace an existing ``out`` (default False).
    """
    from ..adapt.trainer import load_checkpoint
    from ..inference.checkpoint import model_from_checkpoint

    out = Path(out)
    if out.suffix.lower() != ".zip":
        raise UserError(f"--out {out} must end in .zip (a bioimage.io package is one zip file), e.g. model.zip")
    if (out.exists() or out.is_symlink()) and not overwrite:
        raise UserError(f"{out} exists; pass --overwrite to replace it or choose another --out")
    if out.is_dir():
        raise UserError(f"{out} is a folder; give a .zip file path for --out")
    state = load_checkpoint(checkpoint)
    model = model_from_checkpoint(checkpoint, weights)
    cfg = dict(state["model_config"])
    run = _run_config(state)
    volume = _open_input(input_spec, run, checkpoint)
    dims = int(getattr(model, "spatial_dims", 2))
    if volume.dtype.name not in DTYPE_GAIN:
        raise UserError(f"{volume.path} has dtype {volume.dtype}; export needs a uint8, uint16 or float image volume for the test input")
    if cfg.get("in_channels", 1) != 1 or volume.axes.startswith("c"):
        raise UserError(f"{volume.path}: export supports single-channel EM images and models (the model has {cfg.get('in_channels')} input channels)")
    from ..data.normalize import volume_normalizer

    norm = volume_normalizer(volume)
    crop = _test_crop(volume, dims)
    track = "synapse" if cfg.get("head") == "sigmoid" else "mitochondria"
    method = run.get("method", "unknown")
    name = name or f"masktwins3d {track} {method} {cfg['name']}"
    authors = authors or [getpass.getuser() or "masktwins3d user"]

    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{out.name}.build-", dir=out.parent) as tmp:
        work = Path(tmp)
        descr = _describe(work, model, cfg, state, run, volume, norm, crop, dims, track, method, name, authors, license, checkpoint, weights)
        _package(descr, out, work, overwrite)
    return Exported(out, out.stat().st_size, name, volume.path)


def test_package(path: str | Path, devices: tuple[str, ...] = ("cpu",)) -> list[str]:
    """Run bioimageio.core's ``test_model`` (what ``bioimageio test`` runs) on a package, offline.

    Returns:
        one line per failed check (empty: every check passed).
    """
    os.environ.setdefault("BIOIMAGEIO_PERFORM_IO_CHECKS", "false")
    patch_bioimageio_spec()
    from bioimageio.core import test_model
    from bioimageio.spec import ValidationContext

    with ValidationContext(perform_io_checks=False):
        summary = test_model(Path(path), devices=list(devices))
    failed = [f"{d.name}: {d.errors[0].msg.splitlines()[0] if d.errors else 'failed'}" for d in summary.details if d.status == "failed"]
    if summary.status != "passed" and not failed:
        failed = [f"bioimageio test: {summary.status}"]
    return failed


def _run_config(state: dict) -> dict:
    try:
        run = yaml.safe_load(state.get("config") or "") or {}
    except yaml.YAMLError:
        run = {}
    return run if isinstance(run, dict) else {}


def _open_input(input_spec, run: dict, checkpoint) -> Any:
    from ..io import open_volume

    data = run.get("data") or {}
    spec = input_spec or (data.get("target") or {}).get("raw") or (data.get("source") or {}).get("raw")
    if not spec:
        raise UserError(f"{checkpoint} records no training volume; pass --input VOLUME for the test input and normalisation")
    try:
        return open_volume(spec).require_3d("export")
    except UserError as exc:
        if input_spec:
            raise
        raise UserError(f"{exc} (the run's training volume); pass --input VOLUME to export with another volume") from None


def _test_crop(volume, dims: int) -> np.ndarray:
    """A centred crop of ``volume`` (Z, Y, X; Z = 1 for a 2D model), sides multiples of 16."""
    shape = volume.shape
    want = TEST_SIZE[dims]
    size = [1] if dims == 2 else []
    for axis, (n, w) in enumerate(zip(shape, want)):
        if dims == 2 and axis == 0:
            continue
        s = min(n, w) // SIZE_STEP * SIZE_STEP
        if s < SIZE_MIN:
            raise UserError(f"{volume.path} has shape {tuple(shape)}; a test crop needs {SIZE_MIN} voxels per axis: pass --input with a larger volume")
        size.append(s)
    start = [(n - s) // 2 for n, s in zip(shape, size)]
    return np.asarray(volume[tuple(slice(a, a + s) for a, s in zip(start, size))])


def _wrapper(model: torch.nn.Module, head: str) -> torch.nn.Module:
    class Head(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = model

        def forward(self, x):
            logits = self.net(x)
            return torch.softmax(logits, dim=1) if head == "softmax" else torch.sigmoid(logits)

    return Head().eval()


def _describe(work: Path, model, cfg, state, run, volume, norm, crop, dims, track, method, name, authors, license,
              checkpoint, weights):
    from bioimageio.spec import ValidationContext
    from bioimageio.spec.model import v0_5 as bio

    patch_bioimageio_spec()

    head = cfg.get("head", "softmax")
    channels = (["pre", "post"] if cfg["out_channels"] == 2 else [f"c{i}" for i in range(cfg["out_channels"])]) \
        if head == "sigmoid" else (["background", "mitochondria"] if cfg["out_channels"] == 2 else [f"class{i}" for i in range(cfg["out_channels"])])
    dtype = volume.dtype.name
    gain = DTYPE_GAIN[dtype]
    test_input = crop[0] if dims == 2 else crop
    test_input = test_input[None, None]  # batch, channel
    x = (test_input.astype(np.float32) * np.float32(gain) - np.float32(norm.mean)) / np.float32(norm.std)
    wrapped = _wrapper(model, head)
    with torch.no_grad(), warnings.catch_warnings():
        # the trace keeps shape checks of the norm layers as constants; sizes >= SIZE_MIN pass them
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit is deprecated; bioimage.io consumers still load TorchScript
        expected = wrapped(torch.from_numpy(x)).numpy().astype(np.float32)
        scripted = torch.jit.trace(wrapped, torch.from_numpy(x), check_trace=False)

    arch = work / "masktwins3d_net.py"
    arch.write_text(architecture_source(cfg["name"]), encoding="utf-8")
    kwargs = {"model": cfg["name"], "in_channels": int(cfg["in_channels"]), "out_channels": int(cfg["out_channels"]),
              "widths": [int(w) for w in cfg["widths"]], "norm": cfg.get("norm"), "head": head}
    rebuilt = load_architecture(arch)(**kwargs).eval()
    rebuilt.load_state_dict(wrapped.state_dict())
    with torch.no_grad():
        for what, net in (("the TorchScript weights", scripted), ("the architecture file", rebuilt)):
            got = net(torch.from_numpy(x)).numpy()
            if not np.allclose(got, expected, rtol=1e-4, atol=1e-5):
                raise RuntimeError(f"export: {what} give outputs up to {np.abs(got - expected).max():.3g} away from the network's")
    torch.save(wrapped.state_dict(), work / "weights.pt")
    scripted.save(str(work / "weights_torchscript.pt"))
    np.save(work / "test_input.npy", test_input)
    np.save(work / "test_output.npy", expected)

    spatial = "yx" if dims == 2 else "zyx"
    vs = dict(zip("zyx", volume.voxel_size))
    in_axes = [bio.BatchAxis(), bio.ChannelAxis(channel_names=[bio.Identifier("em")])] + [
        bio.SpaceInputAxis(id=bio.AxisId(a), size=bio.ParameterizedSize(min=SIZE_MIN, step=SIZE_STEP), scale=float(vs[a]), unit="nanometer")
        for a in spatial
    ]
    out_axes = [bio.BatchAxis(), bio.ChannelAxis(channel_names=[bio.Identifier(c) for c in channels])] + [
        bio.SpaceOutputAxis(id=bio.AxisId(a), size=bio.SizeReference(tensor_id=bio.TensorId("raw"), axis_id=bio.AxisId(a)),
                            scale=float(vs[a]), unit="nanometer")
        for a in spatial
    ]
    inputs = [bio.InputTensorDescr(
        id=bio.TensorId("raw"),
        description=f"EM image, {dtype}, {'one section' if dims == 2 else 'a 3D block'}; voxel size {_nm(volume.voxel_size)} nm (Z, Y, X)",
        axes=in_axes,
        test_tensor=bio.FileDescr(source=work / "test_input.npy"),
        data=bio.IntervalOrRatioDataDescr(type="float32"),  # what the network takes, after the preprocessing
        preprocessing=[
            bio.EnsureDtypeDescr(kwargs=bio.EnsureDtypeKwargs(dtype="float32")),
            bio.ScaleLinearDescr(kwargs=bio.ScaleLinearKwargs(gain=float(gain), offset=0.0)),
            bio.FixedZeroMeanUnitVarianceDescr(kwargs=bio.FixedZeroMeanUnitVarianceKwargs(mean=float(norm.mean), std=float(norm.std))),
        ],
    )]
    outputs = [bio.OutputTensorDescr(
        id=bio.TensorId("prob"),
        description=("softmax class probabilities" if head == "softmax" else "sigmoid probabilities per channel") + f": {', '.join(channels)}",
        axes=out_axes,
        test_tensor=bio.FileDescr(source=work / "test_output.npy"),
        data=bio.IntervalOrRatioDataDescr(type="float32", range=(0.0, 1.0)),
    )]
    architecture = bio.ArchitectureFromFileDescr(source=arch, callable=bio.Identifier(CALLABLE), kwargs=kwargs)
    torch_version = bio.Version(torch.__version__.split("+")[0])
    weight_descr = bio.WeightsDescr(
        pytorch_state_dict=bio.PytorchStateDictWeightsDescr(source=work / "weights.pt", architecture=architecture, pytorch_version=torch_version),
        torchscript=bio.TorchscriptWeightsDescr(source=work / "weights_torchscript.pt", pytorch_version=torch_version, parent="pytorch_state_dict"),
    )
    training = _training_summary(state, run, cfg, method, checkpoint, weights)
    readme = work / "README.md"
    readme.write_text(_readme(name, track, method, cfg, run, training, volume, norm, dtype, gain, dims, channels), encoding="utf-8")
    source_cite = _source_citation(run)
    cite = [bio.CiteEntry(text=PAPER[0], doi=bio.Doi(PAPER[1])),
            bio.CiteEntry(text=CITATIONS[cfg["name"]][0], doi=bio.Doi(CITATIONS[cfg["name"]][1]))]
    if source_cite:
        cite.append(source_cite)
    description = (f"{'2D U-Net' if dims == 2 else '3D residual U-Net'} for {track} in EM, adapted with {method} "
                   f"(masktwins3d {__version__}); trained on {training['source']}, adapted to {training['target']}; "
                   f"input normalised as in training ({dtype} to [0, 1], z-score with the target volume's statistics).")
    with ValidationContext(perform_io_checks=False):
        return _model_descr(bio, name, description, authors, cite, license, readme, track, head, dims, inputs, outputs,
                            weight_descr, cfg, training, volume, norm)


def _model_descr(bio, name, description, authors, cite, license, readme, track, head, dims, inputs, outputs,
                 weight_descr, cfg, training, volume, norm):
    return bio.ModelDescr(
        name=name,
        description=description[:1024],
        authors=[bio.Author(name=a) for a in authors],
        cite=cite,
        license=bio.LicenseId(license),
        documentation=bio.FileDescr(source=readme),
        tags=["electron-microscopy", "connectomics", track, "semantic-segmentation" if head == "softmax" else "detection",
              "domain-adaptation", "masktwins", f"{dims}d", "pytorch"],
        inputs=inputs,
        outputs=outputs,
        weights=weight_descr,
        config=bio.Config(
            bioimageio=bio.BioimageioConfig(
                reproducibility_tolerance=[bio.ReproducibilityTolerance(**TOLERANCE)],
                architecture_type=cfg["name"],
                modality="electron microscopy",
                target_structure=["mitochondria"] if track == "mitochondria" else ["synapses"],
                task="semantic segmentation" if head == "softmax" else "synapse detection (pre/post probability maps)",
            ),
            masktwins3d={"version": __version__, "training": training, "voxel_size_zyx_nm": [float(v) for v in volume.voxel_size],
                         "normalization": {"mean": float(norm.mean), "std": float(norm.std), "from": volume.path}},
        ),
    )


def _training_summary(state, run, cfg, method, checkpoint, weights) -> dict:
    data = run.get("data") or {}

    def where(key):
        vol = data.get(key) or {}
        return vol.get("dataset") or vol.get("raw") or "not recorded"

    optim = run.get("optim") or {}
    return {
        "method": method,
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


def _source_citation(run: dict):
    """A CiteEntry for the source data's dataset descriptor (``data.source.dataset``), if it has a DOI."""
    import re

    from bioimageio.spec.model import v0_5 as bio

    dataset = ((run.get("data") or {}).get("source") or {}).get("dataset")
    if not dataset:
        return None
    try:
        from ..io.datasets import load_dataset

        text = load_dataset(str(dataset).split(":")[0], None).citation
    except (UserError, OSError, KeyError):
        return None
    doi = re.search(r"doi:\s*(10\.\S+)", text or "")
    return bio.CiteEntry(text=f"source data: {text}", doi=bio.Doi(doi.group(1).rstrip(".,;"))) if doi else None


def _nm(values) -> str:
    return " x ".join(f"{float(v):g}" for v in values)


def _readme(name, track, method, cfg, run, training, volume, norm, dtype, gain, dims, channels) -> str:
    return f"""# {name}

A {'2D U-Net (one EM section at a time)' if dims == 2 else '3D residual U-Net (isotropic blocks)'} for
{track} in electron microscopy, trained with masktwins3d {__version__}.

## Training
- method: `{method}` ({'complementary-mask consistency, MaskTwins, Wang et al. ICML 2025' if method == 'masktwins' else 'see masktwins3d METHOD.md'})
- labelled source data: `{training['source']}`
- unlabelled target data (adapted to): `{training['target']}`
- iterations: {training['iterations']}, crop {training['crop']}, batch {training['batch_size']}, learning rate {training['lr']}
- network: {cfg['name']}, widths {list(cfg['widths'])}, {cfg.get('head')} head, outputs: {', '.join(channels)}
- voxel size the model learned at: {training['training_voxel_size_zyx_nm']} nm (Z, Y, X)
- weights: {training['weights']}

## Input and preprocessing
Input `raw`: {dtype}, axes batch, channel{', y, x' if dims == 2 else ', z, y, x'}; spatial sizes are multiples of 16, at least 32.
Voxel size of the exported-for volume: {_nm(volume.voxel_size)} nm (Z, Y, X).
Preprocessing (as masktwins3d trains and predicts): to float32, times {gain:.6g} (to [0, 1]),
then z-score with mean {norm.mean:.6g} and std {norm.std:.6g}, the statistics of `{volume.path}`.
For another volume, replace these two numbers by its own (masktwins3d computes them from up to 16
evenly spaced sections).

## Output
`prob`: {'softmax class probabilities' if cfg.get('head') == 'softmax' else 'sigmoid probabilities, one channel each'} ({', '.join(channels)}), same spatial size as the input.
masktwins3d predicts large volumes with blended sliding windows (`masktwins3d predict`); mitochondria
masks are `p >= 0.5`, synapse points come from `masktwins3d postprocess synapse`.

## Validation
The package's test input is a centred crop of `{volume.path}` and its expected output was computed
by the trained network; TorchScript weights, the state-dict weights with `masktwins3d_net.py` and
the preprocessing reproduce it (`bioimageio test model.zip`). Accuracy on held-out data is not part
of the package: score predictions with `masktwins3d evaluate` (DA-ISC mitochondria metrics, WASPSYN
synapse F1).

## Citations
- {PAPER[0]}, doi:{PAPER[1]}
- {CITATIONS[cfg['name']][0]}, doi:{CITATIONS[cfg['name']][1]}
"""


def _package(descr, out: Path, work: Path, overwrite: bool) -> None:
    """Zip ``descr`` (validated offline) to a hidden sibling of ``out``, then rename it into place."""
    from bioimageio.spec import ValidationContext, save_bioimageio_package

    fd, tmp = tempfile.mkstemp(prefix=f".{out.stem}.partial-", suffix=".zip", dir=out.parent)
    os.close(fd)
    os.unlink(tmp)
    try:
        with ValidationContext(perform_io_checks=False):
            save_bioimageio_package(descr, output_path=Path(tmp))
        if out.exists() and not overwrite:
            raise UserError(f"{out} exists; pass --overwrite to replace it or choose another --out")
        aside = set_aside(out) if out.exists() else None
        try:
            os.replace(tmp, out)
        except BaseException:
            put_back(out, aside)
            raise
        discard(aside)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
