"""Training: typed configuration, the trainer with exact resume, checkpoints and DDP.

The names below are loaded on first use (PEP 562): a command that needs one submodule (e.g. the
batch runner's :func:`~medrestore.training.distributed.context_from_environment`) does not import
the trainer, the experiment builders and every dataset they know.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from medrestore.training.checkpoint import CHECKPOINT_FORMAT, load_checkpoint, save_checkpoint
    from medrestore.training.config import (
        DataConfig,
        DegradationConfig,
        ExperimentConfig,
        InferenceConfig,
        ModelConfig,
        NormalisationConfig,
        OptimConfig,
        TrainConfig,
        config_from_mapping,
        dump_config,
        load_config,
    )
    from medrestore.training.distributed import DistributedContext, context_from_environment
    from medrestore.training.experiment import build_model, build_normalisation, build_sources, build_trainer
    from medrestore.training.trainer import ImageInference, StepInfo, Trainer, TrainingResult, whole_image_inference

_SUBMODULE = {
    **dict.fromkeys(("CHECKPOINT_FORMAT", "load_checkpoint", "save_checkpoint"), "checkpoint"),
    **dict.fromkeys(
        ("DataConfig", "DegradationConfig", "ExperimentConfig", "InferenceConfig", "ModelConfig", "NormalisationConfig",
         "OptimConfig", "TrainConfig", "config_from_mapping", "dump_config", "load_config"),
        "config",
    ),
    **dict.fromkeys(("DistributedContext", "context_from_environment"), "distributed"),
    **dict.fromkeys(("build_model", "build_normalisation", "build_sources", "build_trainer"), "experiment"),
    **dict.fromkeys(("ImageInference", "StepInfo", "Trainer", "TrainingResult", "whole_image_inference"), "trainer"),
}  # fmt: skip


def __getattr__(name: str) -> Any:
    if name in _SUBMODULE:
        return getattr(importlib.import_module(f"medrestore.training.{_SUBMODULE[name]}"), name)
    raise AttributeError(f"module 'medrestore.training' has no attribute {name!r}")


__all__ = [
    "CHECKPOINT_FORMAT",
    "DataConfig",
    "DegradationConfig",
    "DistributedContext",
    "ExperimentConfig",
    "ImageInference",
    "InferenceConfig",
    "ModelConfig",
    "NormalisationConfig",
    "OptimConfig",
    "StepInfo",
    "TrainConfig",
    "Trainer",
    "TrainingResult",
    "build_model",
    "build_normalisation",
    "build_sources",
    "build_trainer",
    "config_from_mapping",
    "context_from_environment",
    "dump_config",
    "load_checkpoint",
    "load_config",
    "save_checkpoint",
    "whole_image_inference",
]
