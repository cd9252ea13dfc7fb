"""Inference: tiled (sliding-window) application of a model, the :class:`Predictor`, self- and model ensembles."""

from medrestore.inference.ensemble import (
    DIHEDRAL,
    HALF_TURN,
    IDENTITY,
    QUARTER_TURNS,
    AveragedPredictor,
    View,
    self_ensemble,
)
from medrestore.inference.predictor import Predictor, names_model_file
from medrestore.inference.tiling import count_windows, reflect_pad_to, sliding_window_inference

__all__ = [
    "DIHEDRAL", "HALF_TURN", "IDENTITY", "QUARTER_TURNS", "AveragedPredictor", "Predictor", "View", "count_windows",
    "names_model_file", "reflect_pad_to", "self_ensemble", "sliding_window_inference",
]  # fmt: skip
