"""Prediction: sliding-window numerics (:mod:`.window`) and section-by-section volume prediction (:mod:`.predict`).

>>> from masktwins3d.inference import predict_volume, sliding_window
"""

from .predict import Activation, predict_array, predict_volume
from .window import BlendMode, importance_map, sliding_window, window_starts

__all__ = [
    "Activation", "BlendMode", "importance_map", "predict_array", "predict_volume", "sliding_window", "window_starts"
]
