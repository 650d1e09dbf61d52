"""Every named choice of the config and the CLI, once: the modules that act on a choice, the
config schema (:func:`masktwins3d.config.resolve`) and the CLI's ``choices=`` all take the
values from these enums, so adding a mode is one line here and one branch where it acts.

This module imports nothing heavy (no torch), so the config and the CLI's parser can use it.

>>> values(Weighting)
('quality', 'per_voxel', 'class_quality')
>>> Head("sigmoid") is Head.SIGMOID
True
"""

from __future__ import annotations

from enum import Enum


def values(enum: type[Enum]) -> tuple[str, ...]:
    """The values of ``enum`` in definition order (the first is the default where one is shown)."""
    return tuple(member.value for member in enum)


# ---- model and training ---------------------------------------------------------------------------


class Head(str, Enum):
    """Network head: ``softmax`` (classes, mitochondria) or ``sigmoid`` (channels, synapses)."""

    SOFTMAX = "softmax"
    SIGMOID = "sigmoid"


class Weighting(str, Enum):
    """How the pseudo-labelled target voxels are weighted in L_cl."""

    QUALITY = "quality"  # DACS: one scalar per batch, fraction of confident voxels
    PER_VOXEL = "per_voxel"  # ignore voxels below the threshold
    CLASS_QUALITY = "class_quality"  # each voxel weighted by the confident fraction of its pseudo-class


class ThresholdRule(str, Enum):
    """Which confidence makes a voxel a pseudo-label."""

    FIXED = "fixed"  # one confidence threshold delta for every class
    CLASS_BALANCED = "class_balanced"  # CBST: per class min(delta, quantile of its confidences)
    PRIOR = "prior"  # sigmoid: per channel max(delta, confidence of the top source-fraction of voxels)


class CMSpace(str, Enum):
    """Where L_cm compares the two views."""

    LOGITS = "logits"  # official code: mse_loss(logits1, logits2)
    PROBS = "probs"  # as the paper writes it


class MaskKind(str, Enum):
    """Which target masks a method draws."""

    COMPLEMENTARY = "complementary"  # MaskTwins: views D and 1 - D (or K views that sum to 1)
    INDEPENDENT = "independent"  # RMask ablation: two independent masks with ratios r and 1 - r
    SINGLE = "single"  # MIC: one random mask, one masked view
    NONE = "none"  # no masking: the student sees the whole target crop


class MaskFill(str, Enum):
    """What a masked cell is filled with."""

    MEAN = "mean"
    ZERO = "zero"


class TeacherMode(str, Enum):
    """How the EMA teacher is kept."""

    OURS = "ours"  # average parameters, copy buffers (norm statistics), run in eval mode
    OFFICIAL = "official"  # average parameters only, teacher left in train mode (official code)


class OptimName(str, Enum):
    ADAM = "adam"
    ADAMW = "adamw"


class Schedule(str, Enum):
    POLY = "poly"
    WARMUP = "warmup"
    CONSTANT = "constant"


class Device(str, Enum):
    AUTO = "auto"
    CPU = "cpu"
    CUDA = "cuda"


class Weights(str, Enum):
    """Which weights of a checkpoint: the last student or its EMA."""

    STUDENT = "student"
    EMA = "ema"


class Resample(str, Enum):
    """Whether a volume of another voxel size is resampled to the model's."""

    AUTO = "auto"
    NEVER = "never"


class Amp(str, Enum):
    """bf16 autocast as the CLI names it (``train.amp`` also takes true / false)."""

    AUTO = "auto"
    ON = "on"
    OFF = "off"


# ---- prediction -----------------------------------------------------------------------------------


class BlendMode(str, Enum):
    """How overlapping windows are weighted: ``constant`` (equally), ``gaussian`` (centre first) or
    ``bump`` (a smooth bump that falls to the floor at the window's edge)."""

    GAUSSIAN = "gaussian"
    CONSTANT = "constant"
    BUMP = "bump"


class OutDtype(str, Enum):
    """Dtype of a written probability volume."""

    FLOAT32 = "float32"
    FLOAT16 = "float16"
    UINT8 = "uint8"


# ---- evaluation -----------------------------------------------------------------------------------


class EvalMode(str, Enum):
    """Where the scores are computed: per z-section then averaged, or over the flattened volume."""

    SECTIONS = "2d"
    VOLUME = "3d"


class EmptyRule(str, Enum):
    """What 2d mode does with sections whose ground truth is empty."""

    SKIP = "skip"
    INCLUDE = "include"


class MatchMode(str, Enum):
    """How points are matched within a radius."""

    WASPSYN = "waspsyn"
    """Official: Hungarian on raw distances, then drop pairs beyond the radius."""
    STRICT = "strict"
    """Maximum number of within-radius matches (pairs beyond the radius cost a large constant)."""
