"""Export a training checkpoint as a bioimage.io model package (``model.zip``, current spec).

>>> export_bioimageio("runs/x/checkpoint.pt", "model.zip")

The package holds, for both heads (2D softmax mitochondria, 3D sigmoid synapses):

- TorchScript weights and PyTorch state-dict weights with a self-contained architecture file,
  both ending in the head's activation, so consumers get probabilities (:mod:`.weights`);
- the input normalisation of training and prediction (:mod:`masktwins3d.data.normalize`) as
  preprocessing: ``ensure_dtype`` float32, ``scale_linear`` by the dtype range (uint8: 1/255),
  ``fixed_zero_mean_unit_variance`` with the statistics of the volume the model is exported for
  (by default the run's target volume, the one it was adapted to);
- axes (batch, channel, (z,) y, x) with the voxel size in nanometres, sizes 32 + 16 n;
- a test input cropped from that volume and the expected output (computed by the eager network,
  checked against the TorchScript weights and the architecture file before anything is written);
- a README with the training data, method and settings, citations as text with DOIs
  (:mod:`.provenance`).

Nothing is fetched from the network: validation runs with ``perform_io_checks`` off. The zip is
written beside ``out`` and renamed into place when complete.
"""

from __future__ import annotations

import getpass
import os
import re
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import __version__
from ..atomic import move_into_place
from ..errors import UserError
from .architecture import CALLABLE
from .provenance import citations, nm, readme, run_config, training_summary
from .weights import ARCHITECTURE_FILE, STATE_DICT_FILE, TORCHSCRIPT_FILE, write_weights

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
    from ..inference.loading import model_from_checkpoint

    out = Path(out)
    if out.suffix.lower() != ".zip":
        raise UserError(f"--out {out} must end in .zip (a bioimage.io package is one zip file), e.g. model.zip")
    if (out.exists() or out.is_symlink()) and not overwrite:
        raise UserError(f"{out} exists; pass --overwrite to replace it or choose another --out")
    if out.is_dir():
        raise UserError(f"{out} is a folder; give a .zip file path for --out")
    require_working_spec()
    state = load_checkpoint(checkpoint)
    model = model_from_checkpoint(checkpoint, weights)
    cfg = dict(state["model_config"])
    run = run_config(state)
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
    name = name or f"masktwins3d {track} {run.get('method', 'unknown')} {cfg['name']}"
    authors = authors or [getpass.getuser() or "masktwins3d user"]

    plan = Plan(model=model, model_config=cfg, state=state, run=run, volume=volume, norm=norm, crop=crop, dims=dims,
                track=track, name=name, authors=list(authors), license=license, checkpoint=str(checkpoint), weights=weights)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{out.name}.build-", dir=out.parent) as tmp:
        _package(_describe(Path(tmp), plan), out, overwrite)
    return Exported(out, out.stat().st_size, name, volume.path)


@dataclass(frozen=True)
class Plan:
    """Everything a package is made from (checked by :func:`export_bioimageio`).

    Args:
        model: the network, eval mode. model_config: the checkpoint's model config.
        state: the checkpoint. run: its resolved config. volume: the volume of the test crop and
        normalisation. norm: its normaliser. crop: the test crop (Z, Y, X). dims: 2 or 3.
        track: "mitochondria" or "synapse". name / authors / license: package metadata.
        checkpoint: its path. weights: "student" or "ema".
    """

    model: Any
    model_config: dict
    state: dict
    run: dict
    volume: Any
    norm: Any
    crop: np.ndarray
    dims: int
    track: str
    name: str
    authors: list
    license: str
    checkpoint: str
    weights: str


def test_package(path: str | Path, devices: tuple[str, ...] = ("cpu",)) -> list[str]:
    """Run bioimageio.core's ``test_model`` (what ``bioimageio test`` runs) on a package, offline.

    Returns:
        one line per failed check (empty: every check passed).
    """
    os.environ.setdefault("BIOIMAGEIO_PERFORM_IO_CHECKS", "false")
    require_working_spec()
    from bioimageio.core import test_model
    from bioimageio.spec import ValidationContext

    with ValidationContext(perform_io_checks=False), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit.load is deprecated; the TorchScript weights are still tested
        summary = test_model(Path(path), devices=list(devices))
    failed = [f"{d.name}: {d.errors[0].msg.splitlines()[0] if d.errors else 'failed'}" for d in summary.details if d.status == "failed"]
    if summary.status != "passed" and not failed:
        failed = [f"bioimageio test: {summary.status}"]
    return failed


def require_working_spec() -> None:
    """Refuse, in one line, a missing bioimageio.core or a bioimageio.spec that cannot serialise
    under the installed pydantic.

    bioimageio.core 0.11.0 (the newest) pins bioimageio.spec 0.5.12.0, whose wrap serializers call
    ``handler(value, info)``; pydantic 2.12 and later read that second argument as an index key
    (``'index_key' is expected to be an integer or a string``), so no description can be saved or
    tested. constraints.txt pins pydantic 2.10.6 (npe2, for napari, excludes 2.11).
    """
    from importlib.metadata import PackageNotFoundError, version

    try:
        version("bioimageio.core")
        spec, pydantic = version("bioimageio.spec"), version("pydantic")
    except PackageNotFoundError:
        raise UserError("export bioimageio needs bioimageio.core: pip install -c constraints.txt 'masktwins3d[bioimageio]'") from None
    if _release(spec) < (0, 5, 14) and _release(pydantic) >= (2, 12):
        raise UserError(f"bioimageio.spec {spec} cannot write packages under pydantic {pydantic}; "
                        "install the project's pins: pip install -c constraints.txt pydantic pydantic-core (2.10.6, 2.27.2)")


def _release(text: str) -> tuple[int, ...]:
    """The leading numbers of a version string: "2.10.6" -> (2, 10, 6), "0.5.12.0" -> (0, 5, 12, 0)."""
    return tuple(int(n) for n in re.match(r"\d+(?:\.\d+)*", text).group().split("."))


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


def _channel_names(cfg: dict) -> list[str]:
    k, head = int(cfg["out_channels"]), cfg.get("head", "softmax")
    if head == "sigmoid":
        return ["pre", "post"] if k == 2 else [f"c{i}" for i in range(k)]
    return ["background", "mitochondria"] if k == 2 else [f"class{i}" for i in range(k)]


def _describe(work: Path, plan: Plan):
    """Write the package's files into ``work`` and return its (offline-validated) ModelDescr."""
    from bioimageio.spec import ValidationContext
    from bioimageio.spec.model import v0_5 as bio

    cfg, volume, norm, dims = plan.model_config, plan.volume, plan.norm, plan.dims
    head = cfg.get("head", "softmax")
    channels = _channel_names(cfg)
    dtype = volume.dtype.name
    gain = DTYPE_GAIN[dtype]
    test_input = (plan.crop[0] if dims == 2 else plan.crop)[None, None]  # batch, channel
    x = (test_input.astype(np.float32) * np.float32(gain) - np.float32(norm.mean)) / np.float32(norm.std)
    written = write_weights(work, plan.model, cfg, x)
    np.save(work / "test_input.npy", test_input)
    np.save(work / "test_output.npy", written.expected)

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
        description=f"EM image, {dtype}, {'one section' if dims == 2 else 'a 3D block'}; voxel size {nm(volume.voxel_size)} nm (Z, Y, X)",
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
    architecture = bio.ArchitectureFromFileDescr(source=work / ARCHITECTURE_FILE, callable=bio.Identifier(CALLABLE), kwargs=written.kwargs)
    torch_version = bio.Version(torch.__version__.split("+")[0])
    weights = bio.WeightsDescr(
        pytorch_state_dict=bio.PytorchStateDictWeightsDescr(source=work / STATE_DICT_FILE, architecture=architecture, pytorch_version=torch_version),
        torchscript=bio.TorchscriptWeightsDescr(source=work / TORCHSCRIPT_FILE, pytorch_version=torch_version, parent="pytorch_state_dict"),
    )
    training = training_summary(plan.state, plan.run, plan.checkpoint, plan.weights)
    cites = citations(plan.run, cfg["name"])
    (work / "README.md").write_text(readme(plan.name, plan.track, dims, channels, training, volume, norm, gain, cites), encoding="utf-8")
    description = (f"{'2D U-Net' if dims == 2 else '3D residual U-Net'} for {plan.track} in EM, adapted with {training['method']} "
                   f"(masktwins3d {__version__}); trained on {training['source']}, adapted to {training['target']}; "
                   f"input normalised as in training ({dtype} to [0, 1], z-score with the target volume's statistics).")
    from pydantic import ValidationError

    try:
        with ValidationContext(perform_io_checks=False):
            return _model_descr(bio, plan, work / "README.md", description, cites, inputs, outputs, weights, training)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "the description"
        raise UserError(f"bioimage.io rejects {where}: {first.get('msg')}; check --name (letters, digits, spaces, _+-()), "
                        "--author and --license (an SPDX id such as CC-BY-4.0)") from None


def _model_descr(bio, plan: Plan, readme_path: Path, description: str, cites, inputs, outputs, weights, training: dict):
    """The ModelDescr itself (pydantic validates it; call inside an offline ValidationContext)."""
    cfg, volume, norm = plan.model_config, plan.volume, plan.norm
    head = cfg.get("head", "softmax")
    return bio.ModelDescr(
        name=plan.name,
        description=description[:1024],
        authors=[bio.Author(name=a) for a in plan.authors],
        cite=[bio.CiteEntry(text=text, doi=bio.Doi(doi)) for text, doi in cites],
        license=bio.LicenseId(plan.license),
        documentation=bio.FileDescr(source=readme_path),
        tags=["electron-microscopy", "connectomics", plan.track, "semantic-segmentation" if head == "softmax" else "detection",
              "domain-adaptation", "masktwins", f"{plan.dims}d", "pytorch"],
        inputs=inputs,
        outputs=outputs,
        weights=weights,
        config=bio.Config(
            bioimageio=bio.BioimageioConfig(
                reproducibility_tolerance=[bio.ReproducibilityTolerance(**TOLERANCE)],
                architecture_type=cfg["name"],
                modality="electron microscopy",
                target_structure=["mitochondria"] if plan.track == "mitochondria" else ["synapses"],
                task="semantic segmentation" if head == "softmax" else "synapse detection (pre/post probability maps)",
            ),
            masktwins3d={"version": __version__, "training": training, "voxel_size_zyx_nm": [float(v) for v in volume.voxel_size],
                         "normalization": {"mean": float(norm.mean), "std": float(norm.std), "from": volume.path}},
        ),
    )


def _package(descr, out: Path, overwrite: bool) -> None:
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
        move_into_place(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
