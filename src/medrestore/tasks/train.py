"""Train a paired image-to-image model from a YAML configuration.

:func:`train_from_config` is what ``medrestore train`` runs: read and check the configuration,
apply command-line overrides, join the distributed job when launched by ``torchrun``, build the
data, model and loss, train (or resume), and return the run folder, which then holds
``config.yaml``, ``log.csv``, ``history.json``, ``last.pt`` and ``best.pt``.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from pathlib import Path

import yaml

from medrestore.core.device import select_device
from medrestore.inference import sliding_window_inference
from medrestore.training import (
    ExperimentConfig,
    ImageInference,
    StepInfo,
    TrainingResult,
    build_trainer,
    context_from_environment,
    load_config,
    whole_image_inference,
)
from medrestore.training.config import InferenceConfig
from medrestore.training.distributed import initialise, shutdown
from medrestore.training.harmonize import is_harmonization_config, load_harmonization_config, train_harmonizer

__all__ = ["tiled_inference", "train", "train_from_config", "with_overrides"]


def tiled_inference(settings: InferenceConfig) -> ImageInference:
    """Validation inference for the trainer: tiled when ``settings.window`` is set, else whole-image."""
    if settings.window is None:
        return whole_image_inference
    return functools.partial(
        sliding_window_inference,
        window=settings.window,
        overlap=settings.overlap,
        blend=settings.blend,
        batch_size=settings.batch_size,
    )


def with_overrides(config: ExperimentConfig, output_dir: str | Path | None, device: str | None) -> ExperimentConfig:
    """``config`` with ``train.output_dir`` / ``train.device`` replaced where given."""
    changes: dict[str, str] = {}
    if output_dir is not None:
        changes["output_dir"] = str(output_dir)
    if device is not None:
        changes["device"] = device
    return dataclasses.replace(config, train=dataclasses.replace(config.train, **changes)) if changes else config


def train(
    config: ExperimentConfig, resume: bool = False, callbacks: Sequence[Callable[[StepInfo], None]] = ()
) -> TrainingResult:
    """Run (or resume) the training ``config`` describes, under ``torchrun`` or in one process."""
    context = context_from_environment()
    device = initialise(context, select_device(config.train.device))
    try:
        trainer = build_trainer(config, device, tiled_inference(config.inference), callbacks, context)
        return trainer.fit(resume=resume)
    finally:
        shutdown(context)


def is_harmonization_file(config_path: str | Path) -> bool:
    """Whether the YAML file at ``config_path`` describes a harmonisation run (unreadable files: no)."""
    try:
        return is_harmonization_config(yaml.safe_load(Path(config_path).read_text(encoding="utf-8")))
    except (OSError, yaml.YAMLError):
        return False


def train_from_config(
    config_path: str | Path,
    resume: bool = False,
    output_dir: str | Path | None = None,
    device: str | None = None,
) -> Path:
    """Train from a YAML file; returns the run folder (``train.output_dir`` or ``output_dir``).

    A configuration with a top-level ``method`` is a scanner-harmonisation run
    (:mod:`medrestore.training.harmonize`: CycleGAN, coupled dictionaries, histogram matching).
    """
    if is_harmonization_file(config_path):
        harmonization = load_harmonization_config(config_path)
        if output_dir is not None:
            train_section = dataclasses.replace(harmonization.train, output_dir=str(output_dir))
            harmonization = dataclasses.replace(harmonization, train=train_section)
        return train_harmonizer(harmonization, resume=resume)
    config = with_overrides(load_config(config_path), output_dir, device)
    result = train(config, resume=resume)
    return result.run_dir
