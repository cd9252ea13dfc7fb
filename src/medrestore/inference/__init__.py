"""Inference: tiled (sliding-window) application of a model and the :class:`Predictor`."""

from medrestore.inference.predictor import Predictor
from medrestore.inference.tiling import count_windows, reflect_pad_to, sliding_window_inference

__all__ = ["Predictor", "count_windows", "reflect_pad_to", "sliding_window_inference"]
