"""Assemble a training run from a config: volumes, samplers, model, method, optimiser, trainer.

Under ``torchrun`` every rank assembles the same run (:mod:`masktwins3d.adapt.distributed`):
its own samplers and mask generator, the student broadcast from rank 0 and wrapped in DDP, the
EMA teacher copied from it; rank 0 alone prepares and writes the run folder.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from . import __version__
from .adapt import distributed
from .adapt.distributed import DistEnv
from .adapt.guard import CollapseGuard
from .adapt.methods import build_method
from .adapt.schedule import build_optimizer, build_scheduler
from .adapt.trainer import CHECKPOINT, Trainer
from .atomic import atomic_write_text, discard, restore_on_error, set_aside
from .config import RunConfig, to_yaml
from .data.histogram import histogram_matcher
from .data.labels import check_binary_volume
from .data.normalize import volume_normalizer
from .data.prefetch import Prefetcher
from .data.sampling import MixedCrops, PointCrops, Rejection, SectionCrops
from .errors import UserError
from .io import open_volume
from .io.volume import check_voxel_size
from .io.zarr_io import check_dense
from .models import build_model, model_dims
from .precision import Precision, resolve_precision


def git_commit() -> str | None:
    """The project's git commit, or None outside a git checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=5
        )
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("train.device=cuda but no CUDA device is visible; use train.device=cpu or auto")
    return torch.device(name)


def build_augmenter(cfg, dims: int):
    """The :class:`~masktwins3d.data.augment.Augmenter` of ``data.augmentations`` for a ``dims``-D model."""
    from .data.augment import Augmenter, AugmentSpec

    values = asdict(cfg)
    values["zoom_range"] = tuple(values["zoom_range"])
    if len(values["zoom_range"]) != 2:
        raise UserError(f"data.augmentations.zoom_range={list(values['zoom_range'])} must be [min, max], e.g. [0.8, 1.25]")
    return Augmenter(AugmentSpec(**values), dims=dims)


def data_root(root: str | None) -> str | None:
    """``data.root``, else ``$MASKTWINS3D_DATA``, else None."""
    return root or os.environ.get("MASKTWINS3D_DATA") or None


def _dataset_split(vcfg, key: str, root: str | None):
    """The descriptor split ``data.<key>.dataset`` (``NAME:SPLIT``) names, under the data root."""
    from .io.datasets import load_dataset

    name, sep, split = vcfg.dataset.partition(":")
    if not sep or not name or not split:
        raise UserError(f"data.{key}.dataset={vcfg.dataset!r} must be NAME:SPLIT, e.g. vnc3:stack1 (`masktwins3d datasets` lists them)")
    root = data_root(root)
    if root is None:
        raise UserError(f"data.{key}.dataset={vcfg.dataset} needs the folder of its files: set data.root=DIR or MASKTWINS3D_DATA")
    return load_dataset(name, root).split(split)


def _open_one(spec: str | None, from_dataset, what: str, voxel_size):
    if not spec and not from_dataset.exists():
        raise UserError(f"{from_dataset.path} ({what}) does not exist; check data.root or the dataset descriptor")
    vol = (open_volume(spec) if spec else from_dataset.open()).require_3d(what)
    if voxel_size is not None:
        vol.voxel_size = check_voxel_size(voxel_size, f"{what} voxel_size")
    return vol


def _open_pair(vcfg, key: str, need_label: bool, root: str | None = None, allow_missing: bool = False):
    """(raw, label-or-None) of ``data.<key>``: from its specs, or from its dataset descriptor."""
    split = _dataset_split(vcfg, key, root) if vcfg.dataset else None
    if not vcfg.raw and (split is None or split.raw is None):
        raise UserError(f"data.{key}.raw is not set; give the image volume, e.g. data.{key}.raw=volumes/demo/{key}_train.zarr/raw, or data.{key}.dataset=NAME:SPLIT")
    raw = _open_one(vcfg.raw, split.raw if split else None, f"data.{key}.raw", vcfg.voxel_size)
    check_dense(raw, f"data.{key}.raw", allow_missing, "data.allow_missing=true")
    label = None
    if need_label:
        from_ds = split.labels.get(vcfg.label_name) if split else None
        if not vcfg.label and from_ds is None:
            hint = f" (dataset {vcfg.dataset} has labels: {', '.join(split.labels) or 'none'}; set data.{key}.label_name)" if split else ""
            raise UserError(f"data.{key}.label is not set but this method trains on {key} labels{hint}; set data.{key}.label")
        label = _open_one(vcfg.label, from_ds, f"data.{key}.label", vcfg.voxel_size)
        check_binary_volume(label)
    return raw, label


def _open_valid(vcfg, key: str, raw):
    """The ``data.<key>.valid`` mask (nonzero: crops may be drawn there), checked against ``raw``."""
    if not vcfg.valid:
        return None
    valid = open_volume(vcfg.valid).require_3d(f"data.{key}.valid")
    if tuple(valid.shape) != tuple(raw.shape):
        raise UserError(f"data.{key}.valid={vcfg.valid} has shape {tuple(valid.shape)} but the image has {tuple(raw.shape)}; give a mask of the image's shape")
    return valid


def model_voxel_size(run: RunConfig, s_raw) -> tuple[float, float, float]:
    """The voxel size (ZYX nm) the model learns at: ``data.train_voxel_size`` in-plane with the
    labelled volume's Z, or the labelled volume's own (possibly unknown) voxel size."""
    if run.data.train_voxel_size is None:
        return tuple(float(v) for v in s_raw.voxel_size)
    return (float(s_raw.voxel_size[0]), float(run.data.train_voxel_size[1]), float(run.data.train_voxel_size[2]))


def labelled_zoom(run: RunConfig, raw, key: str) -> tuple[float, float] | None:
    """In-plane zoom of the (first) labelled volume to ``data.train_voxel_size`` (None: not set, or
    equal within 5 %); a labelled volume of unknown voxel size cannot be zoomed: one line."""
    import sys

    from .data.resample import voxel_size_known, zoom_factors

    if run.data.train_voxel_size is None:
        return None
    if not voxel_size_known(raw.voxel_size):
        raise UserError(f"data.train_voxel_size={list(run.data.train_voxel_size)} zooms data.{key} to it, but data.{key}'s voxel "
                        f"size is not recorded; set data.{key}.voxel_size=[Z,Y,X] in nm, or data.train_voxel_size=null")
    to = model_voxel_size(run, raw)
    f = zoom_factors(raw.voxel_size, to)
    if f is not None:
        print(f"note: data.{key} sections {raw.voxel_size[1]:g} x {raw.voxel_size[2]:g} nm are zoomed by {f[0]:.3g} x {f[1]:.3g} "
              f"to data.train_voxel_size's {to[1]:g} x {to[2]:g} nm", file=sys.stderr)
    return f


def target_zoom(run: RunConfig, s_raw, t_raw, dims: int) -> tuple[float, float] | None:
    """In-plane zoom of the target's sections to the model's voxel size (:func:`model_voxel_size`)
    under ``data.resample`` (None: none); says on stderr what it does, and when it cannot because a
    voxel size is unknown."""
    import sys

    from .data.resample import voxel_size_known, zoom_factors

    if run.data.resample == "never" or dims != 2 or run.method in ("noadapt", "oracle"):
        return None
    to = model_voxel_size(run, s_raw)
    unknown = [k for k, v in (("source", to), ("target", t_raw.voxel_size)) if not voxel_size_known(v)]
    if unknown:
        print(f"note: the {' and '.join(unknown)} voxel size is not recorded; target crops are not resampled "
              f"(set data.{unknown[0]}.voxel_size=[Z,Y,X] in nm to resample)", file=sys.stderr)
        return None
    whose = "data.train_voxel_size's" if run.data.train_voxel_size is not None else "the source's"
    f = zoom_factors(t_raw.voxel_size, to)
    if f is not None:
        print(f"note: target sections {t_raw.voxel_size[1]:g} x {t_raw.voxel_size[2]:g} nm are zoomed by {f[0]:.3g} x {f[1]:.3g} "
              f"to {whose} {to[1]:g} x {to[2]:g} nm (data.resample=never turns this off)", file=sys.stderr)
    return f


def source_zoom(run: RunConfig, s_raw, raw, key: str) -> tuple[float, float] | None:
    """In-plane zoom of a further labelled volume (``data.<key>``) to the model's voxel size (the
    first source's, or ``data.train_voxel_size``) under ``data.resample`` (None: none or unknown,
    with a note on stderr)."""
    import sys

    from .data.resample import voxel_size_known, zoom_factors

    if run.data.resample == "never":
        return None
    if run.data.train_voxel_size is not None:
        return labelled_zoom(run, raw, key)
    if not (voxel_size_known(s_raw.voxel_size) and voxel_size_known(raw.voxel_size)):
        if voxel_size_known(s_raw.voxel_size) != voxel_size_known(raw.voxel_size):
            print(f"note: the voxel size of data.{key} or of the first data.source is not recorded; its crops are not resampled "
                  f"(set data.{key}.voxel_size=[Z,Y,X] in nm to resample)", file=sys.stderr)
        return None
    return zoom_factors(raw.voxel_size, s_raw.voxel_size)


def scale_note(s_raw, t_raw, dims: int) -> dict | None:
    """Label-free check of the stated in-plane voxel sizes (:mod:`masktwins3d.data.scale_check`):
    a warning on stderr when the source's and target's image correlation lengths, measured with
    their stated voxel sizes, disagree by more than the tolerance. Returns the outcome for
    meta.json (None for 3D runs or when a voxel size is unknown)."""
    import sys

    from .data.resample import voxel_size_known
    from .data.scale_check import check_scale

    if dims != 2 or not (voxel_size_known(s_raw.voxel_size) and voxel_size_known(t_raw.voxel_size)):
        return None
    res = check_scale(s_raw, t_raw, s_raw.voxel_size, t_raw.voxel_size, max_sections=4, max_side=512)
    if res.warning:
        print(f"warning: {res.warning}", file=sys.stderr)
    return res.as_dict()


def _open_points(vcfg, key: str, raw, root: str | None = None):
    """The WASPSYN points of ``data.<key>.points`` (or of its dataset split) as (pre zyx, post zyx),
    checked to lie inside ``raw``."""
    from .io.points import check_inside, read_points

    spec = vcfg.points
    if not spec and vcfg.dataset:
        split = _dataset_split(vcfg, key, root)
        spec = split.points[0] if split.points else None
    if not spec:
        raise UserError(f"data.{key}.points is not set but this method trains on {key} synapse points; set data.{key}.points=FILE.h5")
    pts = read_points(spec)
    check_inside(pts, tuple(raw.shape), where=f"data.{key}.points={spec}")
    return [pts.pre[:, :3], pts.post[:, 1:4]]


class DomainBatches:
    """Callable producing the training batch dict from independent source and target samplers.

    Args:
        labelled / target: samplers with ``sample(n) -> (images, labels)``; target may be None.
        batch_size: crops per domain (per process).
        device: where the batch goes; on a GPU through pinned memory, without blocking.
        float_labels: labels as float (sigmoid head) instead of int64 (softmax head).
        memory_format: memory format of the images (``torch.channels_last`` and friends).
    """

    def __init__(self, labelled, target, batch_size: int, device: torch.device, float_labels: bool = False,
                 memory_format: torch.memory_format = torch.contiguous_format):
        self.labelled, self.target, self.batch_size, self.device = labelled, target, batch_size, device
        self.float_labels, self.memory_format = float_labels, memory_format

    def _host(self, array) -> torch.Tensor:
        t = torch.from_numpy(array)
        return t.pin_memory() if self.device.type == "cuda" else t

    def draw(self) -> dict:
        """The next batch as CPU tensors (pinned for a GPU): the samplers' work, thread-safe to run ahead."""
        img, lab = self.labelled.sample(self.batch_size)
        batch = {
            "source_image": self._host(img),
            "source_label": self._host(lab.astype(np.float32) if self.float_labels else lab.astype(np.int64)),
        }
        if self.target is not None:
            timg, _ = self.target.sample(self.batch_size)
            batch["target_image"] = self._host(timg)
        return batch

    def to_device(self, batch: dict) -> dict:
        """``batch`` on the device (asynchronous copies from pinned memory), images in ``memory_format``."""
        out = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
        for key in ("source_image", "target_image"):
            if key in out:
                out[key] = out[key].contiguous(memory_format=self.memory_format)
        return out

    def __call__(self) -> dict:
        return self.to_device(self.draw())


def memory_format(channels_last: bool | None, dims: int, device: torch.device) -> torch.memory_format:
    """The training memory format: channels-last on a GPU when ``train.channels_last`` (null: 2D models only)."""
    use = (dims == 2) if channels_last is None else channels_last
    if device.type != "cuda" or not use:
        return torch.contiguous_format
    return torch.channels_last if dims == 2 else torch.channels_last_3d


@contextmanager
def numerics(deterministic: bool) -> Iterator[None]:
    """``train.deterministic``: deterministic algorithms (warn-only) and no cuDNN autotuning;
    otherwise cuDNN autotuning (the crop is fixed). Restores the previous settings on exit."""
    before = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        torch.backends.cudnn.benchmark,
        torch.backends.cudnn.deterministic,
    )
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # deterministic cuBLAS
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = False, True
    else:
        torch.backends.cudnn.benchmark = True
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = before[2], before[3]


def check_out_dir(out_dir: Path, overwrite: bool, resume: bool) -> None:
    """Refuse to reuse a non-empty run folder unless ``--overwrite`` or ``--resume`` (reads only)."""
    if resume:
        if not (out_dir / CHECKPOINT).is_file():
            raise UserError(f"--resume but {out_dir / CHECKPOINT} does not exist; drop --resume to start a new run")
        return
    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
        raise UserError(f"run folder {out_dir} exists; pass --overwrite to replace it, --resume to continue it, or set train.out_dir")


def prepare_out_dir(out_dir: Path, overwrite: bool, resume: bool) -> Path | None:
    """:func:`check_out_dir`, then, when ``overwrite`` replaces a non-empty folder (not on
    resume), move it aside (:func:`~masktwins3d.atomic.set_aside`) and return where it went:
    :func:`train` deletes it only once the new run has finished and puts it back if the new run
    fails, so an overwrite never loses a run before its replacement exists."""
    check_out_dir(out_dir, overwrite, resume)
    if not resume and out_dir.exists() and any(out_dir.iterdir()):
        aside = set_aside(out_dir)
        print(f"note: the earlier run in {out_dir} is kept in {aside} until this run finishes", flush=True)
        return aside
    return None


@dataclass
class TrainingData:
    """The opened volumes of a run (every input checked), before any sampler is built.

    Args:
        dims: the model's spatial axes (2 or 3).
        labelled_key: how messages name the labelled volume (``source``, or ``target`` for the oracle).
        source: the labelled image; ``label`` its mask (2D) or ``points`` its point channels (3D).
        extra_sources: ``(config, raw, label)`` of ``data.source``'s further volumes.
        target: the unlabelled target image (None for methods without target losses).
        reference: the volume whose histogram the source is matched to (None: no matching).
        source_valid, target_valid: their valid-region masks (or None).
        source_scale: in-plane zoom of the labelled crops to ``data.train_voxel_size`` (or None).
        target_scale: in-plane zoom of target crops to the model's voxel size (or None).
        scale: the label-free scale check's note (or None).
    """

    dims: int
    labelled_key: str
    source: Any
    label: Any = None
    points: Any = None
    extra_sources: list = field(default_factory=list)
    target: Any = None
    reference: Any = None
    source_valid: Any = None
    target_valid: Any = None
    source_scale: Any = None
    target_scale: Any = None
    scale: Any = None


def check_crop(run: RunConfig) -> int:
    """The model's spatial axes, after checking that ``data.crop`` fits it (one line otherwise)."""
    dims = model_dims(run.model)
    if len(run.data.crop) != dims:
        raise UserError(f"data.crop={list(run.data.crop)} has {len(run.data.crop)} sizes but model {run.model.name} is {dims}D; give {dims} sizes")
    if any(c % 16 for c in run.data.crop):
        raise UserError(f"data.crop={list(run.data.crop)} must be multiples of 16 (the U-Nets down-sample four times); e.g. {[max(16, c // 16 * 16) for c in run.data.crop]}")
    if dims == 3 and run.model.head != "sigmoid":
        raise UserError(f"model.head={run.model.head!r}: the 3D synapse track trains sigmoid channels; set model.head=sigmoid")
    return dims


def open_training_data(run: RunConfig, resume: bool) -> TrainingData:
    """Open and check every volume the run reads (one line naming the key and the fix otherwise)."""
    dims = check_crop(run)
    oracle = run.method == "oracle"
    source_cfg = run.data.target if oracle else run.data.source
    key = "target" if oracle else "source"
    common = dict(root=run.data.root, allow_missing=run.data.allow_missing)
    data = TrainingData(dims, key, None)
    if dims == 3:
        data.source, _ = _open_pair(source_cfg, key, need_label=False, **common)
        data.points = _open_points(source_cfg, key, data.source, root=run.data.root)
        if len(data.points) != run.model.out_channels:
            raise UserError(f"model.out_channels={run.model.out_channels} but points give {len(data.points)} channels (pre, post); set model.out_channels=2")
    else:
        data.source, data.label = _open_pair(source_cfg, key, need_label=True, **common)
    if run.data.extra_sources and not oracle:
        if dims == 3:
            raise UserError(f"data.source lists {1 + len(run.data.extra_sources)} volumes but the 3D synapse track trains on one; "
                            "give a single data.source")
        for i, vcfg in enumerate(run.data.extra_sources, start=1):
            data.extra_sources.append((vcfg, *_open_pair(vcfg, f"source[{i}]", need_label=True, **common)))
    if run.method not in ("noadapt", "oracle"):
        data.target, _ = _open_pair(run.data.target, "target", need_label=False, **common)
    if run.data.match_histogram and not oracle:  # oracle: the labelled volume is the target
        data.reference = data.target  # also for noadapt, which opens the target for its statistics only
        if data.reference is None:
            if not (run.data.target.raw or run.data.target.dataset):
                raise UserError("data.match_histogram=true maps the source onto the target's histogram but data.target.raw is not set; "
                                "give data.target.raw (or data.target.dataset), or set data.match_histogram=false")
            data.reference, _ = _open_pair(run.data.target, "target", need_label=False, **common)
    data.source_valid = _open_valid(source_cfg, key, data.source)
    data.source_scale = labelled_zoom(run, data.source, key)
    if data.target is not None:
        data.target_valid = _open_valid(run.data.target, "target", data.target)
        data.target_scale = target_zoom(run, data.source, data.target, dims)
        data.scale = scale_note(data.source, data.target, dims) if not resume else None
    return data


def build_samplers(run: RunConfig, data: TrainingData, s_rng: np.random.Generator, t_rng: np.random.Generator):
    """``(labelled, target, fill)``: the crop samplers of the labelled and target volumes (target
    None without one) and the masked-voxel fill value in the target's normalised units."""
    rejection = Rejection(run.data.min_foreground, run.data.reject_p, run.data.max_tries)
    augmenter = build_augmenter(run.data.augmentations, data.dims)
    crop, augment, min_valid = run.data.crop, run.data.augment, run.data.min_valid

    def normalizer(raw):
        return histogram_matcher(raw, data.reference) if data.reference is not None else volume_normalizer(raw)

    if data.dims == 3:
        labelled = PointCrops(data.source, data.points, crop, normalizer(data.source), s_rng, augment, run.data.cube, rejection=rejection,
                              augmenter=augmenter, valid=data.source_valid, min_valid=min_valid)
    else:
        labelled = SectionCrops(data.source, data.label, crop, normalizer(data.source), s_rng, augment, rejection=rejection,
                                scale=data.source_scale, valid=data.source_valid, min_valid=min_valid, augmenter=augmenter)
        if data.extra_sources:
            samplers, weights = [labelled], [float(np.prod(data.source.shape))]
            for i, (vcfg, raw_i, label_i) in enumerate(data.extra_sources, start=1):
                samplers.append(SectionCrops(raw_i, label_i, crop, normalizer(raw_i), s_rng, augment, rejection=rejection,
                                             scale=source_zoom(run, data.source, raw_i, f"source[{i}]"),
                                             valid=_open_valid(vcfg, f"source[{i}]", raw_i), min_valid=min_valid,
                                             augmenter=augmenter))
                weights.append(float(np.prod(raw_i.shape)))
            labelled = MixedCrops(samplers, weights, s_rng)
    if data.target is None:
        return labelled, None, 0.0
    t_norm = volume_normalizer(data.target)
    if data.dims == 3:
        target = PointCrops(data.target, None, crop, t_norm, t_rng, augment, augmenter=augmenter, valid=data.target_valid, min_valid=min_valid)
    else:
        target = SectionCrops(data.target, None, crop, t_norm, t_rng, augment, scale=data.target_scale,
                              valid=data.target_valid, min_valid=min_valid, augmenter=augmenter)
    return labelled, target, t_norm.fill_value(run.mask.fill)


def warm_start(run: RunConfig, model: torch.nn.Module, method, resume: bool, voxel_size=None):
    """Load ``train.init``'s weights into the student (and re-copy the teacher) unless resuming;
    the init's provenance for ``meta.json`` (or None). ``voxel_size``: the voxel size this run's
    model learns at, checked against the one the init checkpoint learned at."""
    if not run.train.init or resume:  # on resume the weights come from the run's own checkpoint
        return None
    from .adapt.warmstart import init_weights

    state_dict, init_info = init_weights(run.train.init, asdict(run.model), run.train.init_weights, voxel_size)
    model.load_state_dict(state_dict)
    if getattr(method, "teacher", None) is not None:
        method.teacher.reset(model)
    return init_info


def sampler_state_fns(s_rng: np.random.Generator, t_rng: np.random.Generator):
    """``(get, set)`` of the two crop generators' states (the prefetcher checkpoints them)."""
    def sampler_state() -> dict:
        return {"source": json.dumps(s_rng.bit_generator.state), "target": json.dumps(t_rng.bit_generator.state)}

    def set_sampler_state(state: dict) -> None:
        s_rng.bit_generator.state = json.loads(state["source"])
        t_rng.bit_generator.state = json.loads(state["target"])

    return sampler_state, set_sampler_state


def rng_state_fns(mask_gen: torch.Generator, fetch: Prefetcher):
    """``(get, set)`` of everything random in a step: torch's, the masks' and the samplers'
    generators (checkpointed for a bit-exact resume)."""
    def rng_state() -> dict:
        return {"torch": torch.get_rng_state(), "mask": mask_gen.get_state(), **fetch.state()}

    def set_rng_state(state: dict) -> None:
        torch.set_rng_state(state["torch"])
        mask_gen.set_state(state["mask"])
        fetch.set_state({"source": state["source"], "target": state["target"]})

    return rng_state, set_rng_state


def build_trainer(run: RunConfig, overwrite: bool = False, resume: bool = False, env: DistEnv | None = None) -> Trainer:
    """Check every input, then build the trainer (nothing long has run yet when this returns).

    Args:
        run: the resolved config.
        overwrite: replace an existing run folder.
        resume: continue from ``train.out_dir/checkpoint.pt``.
        env: this process's rank (from :func:`masktwins3d.adapt.distributed.session`; default
            one process on ``train.device``).
    """
    out_dir = Path(run.train.out_dir)
    data = open_training_data(run, resume)
    if run.train.threads > 0:
        torch.set_num_threads(run.train.threads)
    torch.manual_seed(run.train.seed)
    model = build_model(run.model)  # after seeding, so the initial weights follow the seed
    env = env or DistEnv(device=pick_device(run.train.device))
    fmt = memory_format(run.train.channels_last, data.dims, env.device)
    model.to(env.device, memory_format=fmt)
    precision = resolve_precision(run.train.amp, env.device)
    distributed.broadcast_module(model, env)  # the teacher below copies rank 0's student
    seeds = distributed.rank_seeds(run.train.seed, env)
    s_rng, t_rng = np.random.default_rng(seeds[0]), np.random.default_rng(seeds[1])
    mask_gen = torch.Generator().manual_seed(int(seeds[2].generate_state(1)[0]))
    labelled, target, fill = build_samplers(run, data, s_rng, t_rng)
    method = build_method(run, model, fill, mask_gen)
    # data.resample=never: voxel sizes are the user's business, the demo's oracle adapts its source model at the target's
    init_info = warm_start(run, model, method, resume, None if run.data.resample == "never" else model_voxel_size(run, data.source))
    method.set_net(distributed.wrap_ddp(model, env))
    if method.needs_target and run.mask.kind != "none":
        from .adapt.masks import check_grid

        check_grid(run.data.crop, run.mask.patch)  # mask geometry errors surface now, not after the first step
    optimizer = build_optimizer(model.parameters(), run.optim)
    scheduler = build_scheduler(optimizer, run.optim)
    check_out_dir(out_dir, overwrite, resume)  # on every rank, before any rank changes the folder
    distributed.barrier(env)
    batches = DomainBatches(labelled, target, run.data.batch_size, env.device, float_labels=run.model.head == "sigmoid", memory_format=fmt)
    fetch = Prefetcher(batches.draw, *sampler_state_fns(s_rng, t_rng), batches.to_device, enabled=run.data.prefetch)
    rng_state, set_rng_state = rng_state_fns(mask_gen, fetch)
    trainer = Trainer(
        method=method, optimizer=optimizer, scheduler=scheduler, next_batch=fetch, out_dir=out_dir,
        iterations=run.optim.iterations, checkpoint_every=run.train.checkpoint_every, log_every=run.train.log_every,
        rng_state=rng_state, set_rng_state=set_rng_state,
        extra={
            "model_config": asdict(run.model),
            "voxel_size": list(model_voxel_size(run, data.source)),  # what the model learned at (prediction resamples to it)
            "config": to_yaml(run), "version": __version__, "commit": git_commit(), "init": init_info,
        },
        progress=run.train.progress, precision=precision, env=env, snapshot_every=run.train.snapshot_every,
        guard=CollapseGuard(run.loss.collapse_ratio, flood=run.loss.flood_ratio) if method.needs_target else None,
    )
    replaced = None
    if resume:
        trainer.resume(out_dir / CHECKPOINT)
    elif env.is_main:
        replaced = prepare_out_dir(out_dir, overwrite, resume)  # every input checked, the trainer built
        with restore_on_error(out_dir, replaced):
            _write_run_files(out_dir, run, env, init_info, data.scale, precision)
    if env.is_main:  # after every check: a user error stays the only line
        print(f"precision: {precision.name} ({precision.reason})", file=sys.stderr, flush=True)
    trainer.replaced = replaced
    return trainer


def _write_run_files(out_dir: Path, run: RunConfig, env: DistEnv, init_info, scale, precision: Precision) -> None:
    """The new run folder with its ``config.yaml`` and ``meta.json``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / "config.yaml", to_yaml(run))
    meta = {
        "version": __version__,
        "commit": git_commit(),
        "torch": torch.__version__,
        "world_size": env.world_size,
        "global_batch": run.data.batch_size * env.world_size,
        **precision.as_dict(),
        "init": init_info,
        "scale_check": scale,
    }
    atomic_write_text(out_dir / "meta.json", json.dumps(meta, indent=2) + "\n")


def train(run: RunConfig, overwrite: bool = False, resume: bool = False) -> Path:
    """Train as ``run`` describes and return the path of the final checkpoint.

    Started by ``torchrun --nproc_per_node N`` (``WORLD_SIZE > 1``), every process trains one
    DistributedDataParallel replica (gloo on CPU, nccl on ``cuda:LOCAL_RANK``) and rank 0
    writes the run folder; otherwise one process trains alone.
    """
    with numerics(run.train.deterministic), distributed.session(pick_device(run.train.device)) as env:
        trainer = build_trainer(run, overwrite=overwrite, resume=resume, env=env)
        with restore_on_error(trainer.out_dir, trainer.replaced):  # the earlier run comes back; the failed one goes
            checkpoint = trainer.run()
        discard(trainer.replaced)
        return checkpoint
