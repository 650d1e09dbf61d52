"""The typed run configuration: the one place where defaults live.

A YAML file plus ``key=value`` overrides are merged onto these dataclasses with OmegaConf;
an unknown key or a value of the wrong type is a :class:`~masktwins3d.errors.UserError`.
Method-dependent switches default to ``None`` and are filled in from the method's preset
(:data:`masktwins3d.adapt.methods.PRESETS`), so each default is stated once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, List, Optional

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException
import yaml

from . import modes
from .errors import UserError
from .precision import parse_amp


@dataclass
class ModelConfig:
    """Args: name: registry name; widths: per-stage channels; out_channels: classes (softmax) or
    channels (sigmoid); head: ``softmax`` or ``sigmoid``; adain: AdaIN in shallow layers (training
    only; null: the method's, which for adapting methods is the model's own default: on for
    resunet3d, off for unet2d); norm: normalisation layers (null: the model's; resunet3d:
    group | batch | instance)."""

    name: str = "unet2d"
    in_channels: int = 1
    out_channels: int = 2
    widths: List[int] = field(default_factory=lambda: [64, 128, 256, 512, 512])
    head: str = "softmax"
    adain: Optional[bool] = None
    norm: Optional[str] = None


@dataclass
class VolumeConfig:
    """Args: raw: image spec (``x.zarr/raw``, ``f.h5:/raw``, ``stack.tif``, a folder);
    label: label spec (0/1, 0/255 or bool), or null; points: synapse points in the WASPSYN
    layout (``pre``/``post`` HDF5 or a CSV folder) in the image's voxel coordinates, or null;
    dataset: ``NAME:SPLIT`` of a dataset descriptor (``volumes/NAME.yaml``, e.g. ``vnc3:stack1``)
    whose files lie under ``data.root``: fills raw, label (the split's ``label_name`` labels) and
    points that are not given; label_name: which labels of the split (default mito);
    voxel_size: nm, ZYX, overriding the file's and the descriptor's (null: theirs; a volume
    whose voxel size is recorded nowhere reads as 1 nm, which means "not known");
    valid: mask spec (same shape as raw) of where crops may be drawn (nonzero: valid), or null."""

    raw: Optional[str] = None
    label: Optional[str] = None
    points: Optional[str] = None
    dataset: Optional[str] = None
    label_name: str = "mito"
    voxel_size: Optional[List[float]] = None
    valid: Optional[str] = None


@dataclass
class AugmentConfig:
    """Random training transforms beyond ``data.augment``'s flips (each applied with its
    probability; 0: never, and then no random number is drawn for it). Geometric ones move
    image and labels together; intensity and EM defects touch the image only.

    Args: dihedral: flips, 90-degree rotations and Y/X transposes; elastic_p / elastic_spacing /
    elastic_magnitude: in-plane elastic deformation (MONAI Rand2DElastic): control-grid spacing
    and displacement of its points, voxels; zoom_p / zoom_range: in-plane
    zoom keeping the crop size; intensity_p: contrast (gamma), scale and shift of intensities;
    missing_section_p: one z-section set to the mean (3D crops only); misalign_p /
    misalign_max: sections from a random z on shifted in-plane by up to misalign_max voxels
    (3D crops only); motion_blur_p: linear motion blur of one section; cutblur_p: a random box
    down-sampled 2-4x and up-sampled back."""

    dihedral: bool = True
    elastic_p: float = 0.0
    elastic_spacing: float = 32.0
    elastic_magnitude: float = 2.0
    zoom_p: float = 0.0
    zoom_range: List[float] = field(default_factory=lambda: [0.8, 1.25])
    intensity_p: float = 0.0
    missing_section_p: float = 0.0
    misalign_p: float = 0.0
    misalign_max: int = 8
    motion_blur_p: float = 0.0
    cutblur_p: float = 0.0


@dataclass
class DataConfig:
    """Args: crop: training crop in voxels, (Y, X) for 2D models, (Z, Y, X) for 3D models;
    batch_size: crops per domain and step, per process (under torchrun the
    global batch is batch_size x WORLD_SIZE); augment: random flips, 90-degree rotations and
    transposes; cube: edge in voxels of the cube drawn around each synapse point (3: 3x3x3);
    prefetch: draw the next batch in a background thread while the step runs (same batches and
    exact resumes either way; false: draw inline); min_foreground / reject_p / max_tries:
    foreground-aware rejection of labelled crops (source, or target for the oracle): a crop
    with a smaller fraction of foreground voxels is drawn again with probability reject_p, at
    most max_tries draws per crop (min_foreground 0: off, the default); root: the folder that
    holds the files of ``source.dataset`` / ``target.dataset`` (null: $MASKTWINS3D_DATA);
    resample: ``auto`` rescales target crops in-plane to the source's voxel size when both voxel
    sizes are known and differ by more than 5 % (prediction then resamples the same way), ``never``
    never does; min_valid: fraction of a crop that must lie inside the volume's ``valid`` mask
    (crops are drawn again, at most max_tries times); augmentations: the random transforms
    beyond flips (``augment`` switches all of them off); match_histogram: map the labelled
    source's intensities onto the target volume's histogram (quantile mapping, then the target's
    z-score) before they reach the network, so a source model learns the target's contrast
    without target labels (needs data.target, also for noadapt; prediction on the target is
    unchanged: it keeps its own intensities; oracle: nothing to map; default false);
    source: the labelled volume, or (in YAML or an override) a list of labelled volumes of the
    same kind: the first stays ``data.source`` (its voxel size is the model's), the others
    become ``extra_sources``; crops are drawn from each in proportion to its voxels, each with
    its own normalisation (2D models only); allow_missing: accept zarr images with chunks that
    were never written (they read as the fill value; default false: refused);
    train_voxel_size: [Z, Y, X] nm the model learns at (2D models only; null: the first source's
    voxel size): the sections of every volume whose voxel size is known, source and target, are
    zoomed in-plane to its Y and X while crops are drawn, so a coarser size trains on a wider
    field of view without a separate down-sampling step; the checkpoint records it with the
    source's Z, and prediction resamples an input of known voxel size to it and back. A labelled
    volume of unknown voxel size stops the run; a target of unknown voxel size is used as it is,
    with a note."""

    source: VolumeConfig = field(default_factory=VolumeConfig)
    extra_sources: List[VolumeConfig] = field(default_factory=list)
    target: VolumeConfig = field(default_factory=VolumeConfig)
    crop: List[int] = field(default_factory=lambda: [512, 512])
    batch_size: int = 2
    augment: bool = True
    cube: int = 3
    prefetch: bool = True
    min_foreground: float = 0.0
    reject_p: float = 0.95
    max_tries: int = 50
    root: Optional[str] = None
    resample: str = "auto"
    min_valid: float = 1.0
    augmentations: AugmentConfig = field(default_factory=lambda: AugmentConfig())
    match_histogram: bool = False
    allow_missing: bool = False
    train_voxel_size: Optional[List[float]] = None


@dataclass
class MaskConfig:
    """Args: kind: complementary | independent | single | none (null: the method's);
    patch: cell edge b in voxels (crop must be a multiple); ratio: masked fraction r (null: the
    method's: 0.5, MIC 0.7); views: K for complementary masks; fill: mean | zero."""

    kind: Optional[str] = None
    patch: int = 32
    ratio: Optional[float] = None
    views: int = 2
    fill: str = "mean"


@dataclass
class LossConfig:
    """Args: cl / cm: use L_cl / L_cm (null: the method's); view_weight: lambda between the two
    views in L_cl; lambda_cm: weight of L_cm; cm_space: logits | probs (null: logits for the
    softmax head, as the official code; probs for the sigmoid head, whose background logits are
    large and would dominate an MSE on logits); weighting: quality (DACS: one scalar per batch)
    | per_voxel (unconfident voxels teach nothing) | class_quality (each voxel weighted by the
    confident fraction of its pseudo-class); threshold: pseudo-label confidence delta (one per
    sigmoid channel allowed; a sigmoid voxel teaches only where p >= delta or p <= 1 - delta);
    threshold_rule: fixed (delta for every class) | class_balanced (CBST: per class the smaller
    of delta and the confidence that the class's most confident cb_portion of voxels reach)
    | prior (sigmoid head: per channel the larger of delta and the confidence that the batch's
    most confident voxels reach, as many as the running foreground fraction of the source
    labels; voxels between 0.5 and it teach nothing, so a teacher whose probabilities are
    inflated cannot flood the student);
    cb_portion: that fraction, in (0, 1]; negative_threshold: sigmoid head: a voxel is a confident
    negative where p <= this (null: 1 - delta, symmetric; 1.0 with threshold_rule=prior: every
    voxel under the cap is a negative, as every voxel away from a labelled point is in the source
    labels); views_batched: run the masked views as one
    concatenated batch (same result for instance and group norm, different batch statistics for
    batch norm); pos_weight: weight of positive voxels in the sigmoid head's BCE of L_sup, one
    value or one per channel (1: plain BCE, the paper's); cl_pos_weight: the same for L_cl
    (null: pos_weight); target_start: iteration from which the target losses (L_cl, L_cm) are
    added; before it the student trains on the source only (0: from the start, the paper's);
    collapse_ratio: warn when the running fraction of target voxels pseudo-labelled foreground
    falls below this multiple of the source labels' foreground fraction (0: never);
    flood_ratio: warn when it rises above this multiple (0: never);
    debias_pos_weight: sigmoid head with pos_weight w != 1: subtract log(w) from the teacher's
    logits before its pseudo-labels are thresholded. BCE with pos_weight w is minimised by
    logit = log(w) + the true log-odds, so a teacher trained with w = 30 reads "p >= 0.75" where
    the true posterior is only about 0.09; debiased, delta is a confidence about the true labels
    again and L_cl (with the same pos_weight as L_sup) treats pseudo-labels as L_sup treats labels;
    debias_fallback: with debias_pos_weight and threshold_rule=prior, per channel: while the
    running fraction of target voxels the debiased teacher labels positive is below this multiple
    of the source labels' running foreground fraction, that channel's pseudo-labels come from the
    teacher without debiasing (a label-free switch: a teacher that, debiased, no longer finds the
    class on the target would teach only background; null: always debiased);
    negative_band: with threshold_rule=prior: per channel, a voxel outside the teacher's most
    confident negative_band x (source foreground fraction) of the batch is a confident negative
    too, so at most that many voxels are left untaught between the capped positives and the
    negatives (the source labels call every voxel away from a synapse background; null: only
    p <= negative_threshold; 10 collapsed a weak source model on the synapse demo's calibration
    seeds, BENCHMARKS.md); sup_weight: weight of L_sup in the adapting methods (mic, rmask,
    masktwins; 1 as in the paper; noadapt and the oracle always learn their labels at 1; 0.1
    lost on every reported seed of the mito demo, BENCHMARKS.md); cm_guard: scale lambda_cm at
    every step by the fraction of target voxels the pseudo-labels mark foreground over the source
    labels' running foreground fraction, capped at 1 (:func:`~masktwins3d.adapt.losses.cm_weight`):
    L_cm on probabilities is smallest when both views predict nothing, so with weight it can
    drain the foreground, and then stops pressing as the pseudo-labels lose it (false: lambda_cm
    as set; on the synapse demo's calibration seeds it acted after the foreground had drained
    and was not adopted, BENCHMARKS.md); lambda_cm_debiased: with debias_pos_weight, the weight
    of L_cm on the channels whose pseudo-labels come from the debiased teacher (debias_fallback
    has not switched them back: the teacher's target probabilities hold up without the
    pos_weight bias), lambda_cm (guarded by cm_guard if set) on the others (null: lambda_cm on
    every channel)."""

    cl: Optional[bool] = None
    cm: Optional[bool] = None
    view_weight: float = 0.5
    lambda_cm: float = 0.01
    cm_space: Optional[str] = None
    weighting: str = "quality"
    threshold: List[float] = field(default_factory=lambda: [0.7])
    threshold_rule: str = "fixed"
    cb_portion: float = 0.5
    negative_threshold: Optional[float] = None
    views_batched: bool = False
    pos_weight: List[float] = field(default_factory=lambda: [1.0])
    cl_pos_weight: Optional[List[float]] = None
    target_start: int = 0
    collapse_ratio: float = 0.25
    flood_ratio: float = 10.0
    debias_pos_weight: bool = False
    debias_fallback: Optional[float] = None
    negative_band: Optional[float] = None
    sup_weight: float = 1.0
    cm_guard: bool = False
    lambda_cm_debiased: Optional[float] = None


@dataclass
class TeacherConfig:
    """Args: ema: keep an EMA of the weights (for the adapting methods also the teacher that
    makes the pseudo-labels; false: the detached student makes them, and there are no EMA
    weights to predict with); alpha_max: EMA cap; mode: ours | official; restart: with
    loss.target_start > 0, re-copy the teacher from the student at target_start and average
    from there (false: it keeps averaging the source-only iterates)."""

    ema: Optional[bool] = None
    alpha_max: float = 0.999
    mode: str = "ours"
    restart: bool = True


@dataclass
class OptimConfig:
    """Args: name: adam | adamw; lr; betas; weight_decay; schedule: poly | warmup | constant;
    power: poly exponent; warmup: linear warm-up iterations; iterations: total steps."""

    name: str = "adam"
    lr: float = 1e-4
    betas: List[float] = field(default_factory=lambda: [0.9, 0.999])
    weight_decay: float = 0.0
    schedule: str = "poly"
    power: float = 0.9
    warmup: int = 0
    iterations: int = 200_000


@dataclass
class TrainConfig:
    """Args: out_dir: run folder; seed; device: auto | cpu | cuda (under torchrun each rank
    uses cuda:LOCAL_RANK); threads: torch CPU threads per process (0: torch's default; torchrun
    sets OMP_NUM_THREADS=1 unless you set it); checkpoint_every / log_every: iterations;
    amp: auto (default: bf16 autocast on a GPU with bf16 and on a CPU with native bf16 units,
    AMX / AVX512-BF16; fp32 elsewhere) | true (bf16 autocast anyway) | false (fp32); the run log
    and meta.json say which was used and why (see masktwins3d.precision); channels_last: on a GPU, keep the model's weights and the
    batches in channels-last memory format (``channels_last`` 2D, ``channels_last_3d`` 3D),
    which cuDNN's tensor-core convolutions prefer (null, the default: on for 2D models, off for
    3D ones, whose group/instance norms and trilinear upsampling copy back to the default
    layout; measure with benchmarks/bench_train_step.py --channels-last; ignored on CPU);
    deterministic: torch.use_deterministic_algorithms (warn-only) and no cuDNN autotuning, for
    bit-exact reruns and resumes (GPU runs are slower; false: cuDNN picks the fastest
    convolutions for the fixed crop); progress: show a progress bar (rank 0); init: checkpoint.pt
    of an earlier run (e.g. noadapt) whose weights start the student and the teacher (warm
    start; a fresh optimiser and schedule; the model config must match); init_weights: which
    of its weights: ema (its EMA, the default) | student; snapshot_every: also keep the
    weights every this many iterations in ``snapshots/step_NNNNNN.pt`` (for learning curves;
    0: none)."""

    out_dir: str = "runs/train"
    seed: int = 0
    device: str = "auto"
    threads: int = 0
    checkpoint_every: int = 1000
    log_every: int = 50
    amp: str = "auto"
    channels_last: Optional[bool] = None
    deterministic: bool = False
    progress: bool = True
    init: Optional[str] = None
    init_weights: str = "ema"
    snapshot_every: int = 0


@dataclass
class RunConfig:
    """A complete training run. ``method``: noadapt | oracle | mic | rmask | masktwins."""

    method: str = "masktwins"
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    mask: MaskConfig = field(default_factory=MaskConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


def _parse_override(item: str) -> tuple[str, Any]:
    if "=" not in item:
        raise UserError(f"override {item!r} is not key=value; write e.g. optim.lr=1e-4")
    key, value = item.split("=", 1)
    if value == "":
        return key.strip(), None
    try:
        return key.strip(), yaml.safe_load(value)
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise UserError(f"override {item!r}: the value is not valid YAML ({problem}); write e.g. optim.iterations=300 or "
                        "model.widths=[16,32,64,128,128]") from None


def _split_sources(data: Any, where: str) -> Any:
    """``data.source`` given as a list: the first volume stays ``source``, the rest become
    ``extra_sources`` (returns a new mapping; anything else is returned as it is)."""
    if not isinstance(data, dict) or not isinstance(data.get("source"), list):
        return data
    sources = data["source"]
    if not sources or not all(isinstance(v, dict) for v in sources):
        raise UserError(f"data.source in {where} is a list but not of volumes; give one mapping per labelled volume, "
                        "e.g. [{raw: a.h5:/raw, label: a.h5:/mito}, {raw: b.h5:/raw, label: b.h5:/mito}]")
    if data.get("extra_sources"):
        raise UserError(f"{where} gives data.source as a list and data.extra_sources; list every labelled volume under data.source")
    return {**data, "source": sources[0], "extra_sources": list(sources[1:])}


def _structured_error(exc: OmegaConfBaseException, where: str) -> UserError:
    key = getattr(exc, "full_key", None) or getattr(exc, "key", None)
    msg = str(exc).splitlines()[0]
    if "Key" in type(exc).__name__ or "not in struct" in msg:
        return UserError(f"unknown config key {key!r} in {where}; check the spelling against configs/*.yaml or `masktwins3d train --help`")
    return UserError(f"bad value for config key {key!r} in {where} ({msg}); fix it in the file or the override")


def load_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> RunConfig:
    """Merge a YAML file and ``key=value`` overrides onto :class:`RunConfig` and validate.

    Args:
        path: YAML file (or None for the defaults).
        overrides: dotted ``key=value`` strings, values parsed as YAML (``optim.lr=1e-3``).
    """
    cfg = OmegaConf.structured(RunConfig)
    if path is not None:
        path = Path(path)
        if path.is_dir():
            raise UserError(f"config file {path} is a folder; pass a YAML file in it, e.g. {path / 'mito_demo.yaml'}")
        if not path.is_file():
            raise UserError(f"config file {path} does not exist; pass an existing YAML file, e.g. configs/mito_demo.yaml")
        try:
            loaded = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise UserError(f"config file {path} is not valid YAML ({str(exc).splitlines()[0]}); fix its syntax") from None
        if not isinstance(loaded, dict):
            raise UserError(f"config file {path} must hold a mapping of keys; see configs/mito_demo.yaml")
        loaded = {**loaded, "data": _split_sources(loaded["data"], str(path))} if "data" in loaded else loaded
        try:
            cfg = OmegaConf.merge(cfg, loaded)
        except OmegaConfBaseException as exc:
            raise _structured_error(exc, str(path)) from None
        except (TypeError, ValueError) as exc:
            raise UserError(f"config file {path}: a value has the wrong shape ({exc}); compare it with configs/mito_demo.yaml") from None
    for item in overrides:
        key, value = _parse_override(item)
        try:
            if key == "data.source" and isinstance(value, list):
                split = _split_sources({"source": value}, f"override {item!r}")
                cfg = OmegaConf.merge(cfg, {"data": {"source": OmegaConf.merge(OmegaConf.structured(VolumeConfig), split["source"]),
                                                     "extra_sources": split["extra_sources"]}})
                continue
            cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist([f"{key}={_yaml_dump(value)}"]))
        except OmegaConfBaseException as exc:
            raise _structured_error(exc, f"override {item!r}") from None
        except (TypeError, ValueError) as exc:  # OmegaConf's own: e.g. a mapping given for a list
            raise UserError(f"bad value for config key {key!r} in override {item!r} ({exc}); give a value of the key's type, "
                            "see configs/*.yaml") from None
        except yaml.YAMLError as exc:  # a value that reads as YAML once but not when OmegaConf re-reads it (e.g. "...")
            raise UserError(f"override {item!r}: the value is not valid YAML ({str(exc).splitlines()[0]}); write e.g. "
                            "data.augmentations.zoom_range=[0.8,1.25]") from None
    try:
        run: RunConfig = OmegaConf.to_object(cfg)
    except OmegaConfBaseException as exc:
        raise _structured_error(exc, "the merged config") from None
    return resolve(run)


def _yaml_dump(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, (list, dict)):
        return yaml.safe_dump(value, default_flow_style=True).strip()
    return str(value)


def resolve(run: RunConfig) -> RunConfig:
    """Fill method-dependent switches from the method's preset and check value ranges."""
    from .adapt.methods import apply_preset  # local: methods import torch

    run = apply_preset(run)
    choices = {
        "loss.cm_space": (run.loss.cm_space, modes.CMSpace),
        "loss.weighting": (run.loss.weighting, modes.Weighting),
        "loss.threshold_rule": (run.loss.threshold_rule, modes.ThresholdRule),
        "train.init_weights": (run.train.init_weights, modes.Weights),
        "mask.fill": (run.mask.fill, modes.MaskFill),
        "mask.kind": (run.mask.kind, modes.MaskKind),
        "teacher.mode": (run.teacher.mode, modes.TeacherMode),
        "optim.name": (run.optim.name, modes.OptimName),
        "optim.schedule": (run.optim.schedule, modes.Schedule),
        "model.head": (run.model.head, modes.Head),
        "train.device": (run.train.device, modes.Device),
        "data.resample": (run.data.resample, modes.Resample),
    }
    for key, (value, enum) in choices.items():
        if value not in modes.values(enum):
            raise UserError(f"{key}={value!r} is not one of {list(modes.values(enum))}; fix the config or pass {key}=<one of them>")
    if run.data.batch_size < 1 or run.optim.iterations < 1:
        raise UserError("data.batch_size and optim.iterations must be at least 1; fix the config")
    run.train.amp = {"auto": "auto", "on": "true", "off": "false"}[parse_amp(run.train.amp, "train.amp")]
    if run.data.train_voxel_size is not None:
        if len(run.data.crop) != 2:
            raise UserError(f"data.train_voxel_size={list(run.data.train_voxel_size)} zooms sections of 2D models but data.crop="
                            f"{list(run.data.crop)} is 3D; set data.train_voxel_size=null (the 3D track trains at its volumes' voxel size)")
        if run.data.resample == "never":
            raise UserError(f"data.train_voxel_size={list(run.data.train_voxel_size)} resamples every volume but data.resample=never; "
                            "set data.resample=auto or data.train_voxel_size=null")
    if not 0.0 < run.data.min_valid <= 1.0:
        raise UserError(f"data.min_valid={run.data.min_valid} must be a fraction in (0, 1], e.g. 1.0 (crops wholly inside the valid mask)")
    if run.loss.threshold_rule == "prior" and run.model.head != "sigmoid":
        raise UserError(f"loss.threshold_rule=prior is for sigmoid heads but model.head={run.model.head}; "
                        "use loss.threshold_rule=class_balanced for a softmax head")
    if run.loss.negative_threshold is not None and run.model.head != "sigmoid":
        raise UserError(f"loss.negative_threshold={run.loss.negative_threshold} is for sigmoid heads but model.head={run.model.head}; "
                        "set loss.negative_threshold=null")
    if run.loss.debias_fallback is not None:
        if not (run.loss.debias_pos_weight and run.loss.threshold_rule == "prior"):
            raise UserError(f"loss.debias_fallback={run.loss.debias_fallback} switches between the debiased and the plain teacher "
                            "under threshold_rule=prior; set loss.debias_pos_weight=true and loss.threshold_rule=prior, or loss.debias_fallback=null")
        if not (_finite(run.loss.debias_fallback) and 0.0 < run.loss.debias_fallback <= 1.0):
            raise UserError(f"loss.debias_fallback={run.loss.debias_fallback} must be a fraction in (0, 1], e.g. 0.25")
    if run.loss.cm_guard and run.model.head != "sigmoid":
        raise UserError(f"loss.cm_guard=true scales L_cm by the sigmoid pseudo-labels' foreground but model.head={run.model.head}; "
                        "set loss.cm_guard=false")
    if run.loss.lambda_cm_debiased is not None and not (run.model.head == "sigmoid" and run.loss.debias_pos_weight):
        raise UserError(f"loss.lambda_cm_debiased={run.loss.lambda_cm_debiased} weights L_cm on the channels of the debiased "
                        "sigmoid teacher; set model.head=sigmoid and loss.debias_pos_weight=true, or loss.lambda_cm_debiased=null")
    if run.loss.negative_band is not None and run.loss.threshold_rule != "prior":
        raise UserError(f"loss.negative_band={run.loss.negative_band} widens the negatives of threshold_rule=prior; "
                        "set loss.threshold_rule=prior (sigmoid head), or loss.negative_band=null")
    if not 0.0 < run.loss.cb_portion <= 1.0:
        raise UserError(f"loss.cb_portion={run.loss.cb_portion} must be a fraction in (0, 1], e.g. 0.5")
    if not all(0.5 <= t < 1.0 for t in run.loss.threshold) or not run.loss.threshold:
        raise UserError(f"loss.threshold={list(run.loss.threshold)} must hold confidences in [0.5, 1), e.g. [0.7]")
    if run.loss.lambda_cm < 0 or not run.loss.collapse_ratio >= 0:
        raise UserError(f"loss.lambda_cm={run.loss.lambda_cm} and loss.collapse_ratio={run.loss.collapse_ratio} must be >= 0; the paper's lambda_cm is 0.01 (mito) or 0.1 (synapses)")
    if run.loss.target_start < 0 or run.train.snapshot_every < 0:
        raise UserError("loss.target_start and train.snapshot_every must be >= 0; fix the config")
    if not 0.0 <= run.loss.view_weight <= 1.0:
        raise UserError(f"loss.view_weight={run.loss.view_weight} must be in [0, 1]; the paper uses 0.5")
    check_ranges(run)
    return run


def _finite(x: float) -> bool:
    return math.isfinite(float(x))


# key -> (test on the value, what the value must be, an example fix); every test is False for NaN
RANGES: dict[str, tuple[Callable[[Any], bool], str, str]] = {
    "optim.lr": (lambda v: _finite(v) and v > 0, "a finite learning rate > 0", "optim.lr=1e-4"),
    "optim.betas": (lambda v: len(v) == 2 and all(_finite(b) and 0 <= b < 1 for b in v), "two values in [0, 1)", "optim.betas=[0.9,0.999]"),
    "optim.weight_decay": (lambda v: _finite(v) and v >= 0, "a finite value >= 0", "optim.weight_decay=0"),
    "optim.power": (lambda v: _finite(v) and v > 0, "a finite exponent > 0", "optim.power=0.9"),
    "optim.warmup": (lambda v: v >= 0, "a number of iterations >= 0", "optim.warmup=0"),
    "teacher.alpha_max": (lambda v: _finite(v) and 0 <= v <= 1, "an EMA factor in [0, 1]", "teacher.alpha_max=0.999"),
    "loss.pos_weight": (lambda v: len(v) >= 1 and all(_finite(w) and w > 0 for w in v), "one or more finite weights > 0", "loss.pos_weight=[1.0]"),
    "loss.cl_pos_weight": (lambda v: v is None or (len(v) >= 1 and all(_finite(w) and w > 0 for w in v)),
                           "null or finite weights > 0", "loss.cl_pos_weight=null"),
    "loss.lambda_cm": (lambda v: _finite(v) and v >= 0, "a finite weight >= 0", "loss.lambda_cm=0.01"),
    "loss.lambda_cm_debiased": (lambda v: v is None or (_finite(v) and v >= 0), "null or a finite weight >= 0",
                                "loss.lambda_cm_debiased=null"),
    "loss.negative_threshold": (lambda v: v is None or (_finite(v) and 0 < v <= 1), "null or a probability in (0, 1]",
                                "loss.negative_threshold=null"),
    "loss.sup_weight": (lambda v: _finite(v) and v >= 0, "a finite weight >= 0", "loss.sup_weight=1"),
    "loss.negative_band": (lambda v: v is None or (_finite(v) and v >= 1), "null or a finite multiple >= 1 of the source fraction",
                           "loss.negative_band=10"),
    "loss.flood_ratio": (lambda v: _finite(v) and v >= 0, "a finite multiple >= 0 (0: no warning)", "loss.flood_ratio=10"),
    "mask.patch": (lambda v: v >= 1, "a cell edge >= 1 voxel", "mask.patch=32"),
    "mask.ratio": (lambda v: v is None or (_finite(v) and 0 < v < 1), "null or a masked fraction in (0, 1)", "mask.ratio=0.5"),
    "mask.views": (lambda v: v >= 2, "at least 2 views", "mask.views=2"),
    "data.crop": (lambda v: len(v) in (2, 3) and all(c >= 1 for c in v), "2 (Y, X) or 3 (Z, Y, X) sizes >= 1", "data.crop=[512,512]"),
    "data.cube": (lambda v: v >= 1, "an edge >= 1 voxel", "data.cube=3"),
    "data.train_voxel_size": (lambda v: v is None or (len(v) == 3 and all(_finite(x) and x > 0 for x in v)),
                              "null or three finite sizes > 0 in nm (Z, Y, X)", "data.train_voxel_size=[50,9.2,9.2]"),
    "data.max_tries": (lambda v: v >= 1, "at least 1", "data.max_tries=50"),
    "data.min_foreground": (lambda v: _finite(v) and 0 <= v < 1, "a fraction in [0, 1)", "data.min_foreground=0"),
    "data.reject_p": (lambda v: _finite(v) and 0 <= v <= 1, "a probability in [0, 1]", "data.reject_p=0.95"),
    "model.in_channels": (lambda v: v >= 1, "at least 1", "model.in_channels=1"),
    "model.out_channels": (lambda v: v >= 1, "at least 1", "model.out_channels=2"),
    "model.widths": (lambda v: len(v) == 5 and all(w >= 1 for w in v), "five stage widths >= 1 (one per level)", "model.widths=[16,32,64,128,128]"),
    "train.threads": (lambda v: v >= 0, "a thread count >= 0 (0: torch's default)", "train.threads=0"),
    "train.checkpoint_every": (lambda v: v >= 1, "a number of iterations >= 1", "train.checkpoint_every=1000"),
    "train.log_every": (lambda v: v >= 1, "a number of iterations >= 1", "train.log_every=50"),
    "data.augmentations.zoom_range": (lambda v: len(v) == 2 and all(_finite(z) and z > 0 for z in v) and v[0] <= v[1],
                                      "[low, high] with 0 < low <= high", "data.augmentations.zoom_range=[0.8,1.25]"),
}
_PROBABILITIES = ("elastic_p", "zoom_p", "intensity_p", "missing_section_p", "misalign_p", "motion_blur_p", "cutblur_p")


def _get(run: RunConfig, key: str) -> Any:
    value: Any = run
    for part in key.split("."):
        value = getattr(value, part)
    return value


def check_ranges(run: RunConfig) -> None:
    """Refuse out-of-range values (NaN and infinities included) with one line naming the key,
    what it must be and a value that works; :data:`RANGES` lists the checks."""
    checks = dict(RANGES)
    for name in _PROBABILITIES:
        checks[f"data.augmentations.{name}"] = (lambda v: _finite(v) and 0 <= v <= 1, "a probability in [0, 1]",
                                                f"data.augmentations.{name}=0")
    for key, (ok, what, example) in checks.items():
        value = _get(run, key)
        try:
            good = bool(ok(value))
        except TypeError:
            good = False
        if not good:
            shown = list(value) if isinstance(value, (list, tuple)) else value
            raise UserError(f"{key}={shown!r} is out of range: it must be {what}; fix the config or pass e.g. {example}")


def to_yaml(run: RunConfig) -> str:
    """The resolved config as YAML (written into every run folder)."""
    return OmegaConf.to_yaml(OmegaConf.structured(run))
