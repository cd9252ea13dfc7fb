"""Training: typed configuration, the trainer with exact resume, checkpoints and DDP."""

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
