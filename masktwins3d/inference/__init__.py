"""Prediction: sliding-window numerics (:mod:`.window`), one region in memory (:mod:`.region`),
the settings of a prediction, checked once (:mod:`.settings`), out-of-core blockwise volumes
(:mod:`.blockwise`) and their entry points (:mod:`.predict`, :mod:`.checkpoint`).

>>> from masktwins3d.inference import predict_volume, sliding_window
"""

from .blockwise import CheckpointModel, predict_blockwise
from .predict import Activation, predict_array, predict_volume
from .region import WindowSettings, check_window_settings, predict_region
from .settings import PredictSettings
from .window import BlendMode, importance_map, sliding_window, window_starts

__all__ = [
    "Activation", "BlendMode", "CheckpointModel", "PredictSettings", "WindowSettings", "check_window_settings", "importance_map",
    "predict_array", "predict_blockwise", "predict_region", "predict_volume", "sliding_window", "window_starts",
]
