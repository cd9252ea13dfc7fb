"""From an :class:`~medrestore.training.config.ExperimentConfig` to the pieces of a run.

:func:`build_sources` reads the training and validation image pairs, :func:`build_normalisation`
fits or builds the normalisation, :func:`build_model` seeds and builds the network, and
:func:`build_trainer` puts them together into a :class:`~medrestore.training.trainer.Trainer`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from medrestore.core.errors import ConfigError, InputError
from medrestore.core.files import load_torch_file
from medrestore.core.random import make_generator, seed_everything
from medrestore.data.normalisation import (
    FixedRange,
    MinMaxImage,
    NoNormalisation,
    Normalisation,
    ZScoreImage,
    fit_zscore_dataset,
)
from medrestore.data.paired import (
    ImagePairSource,
    PairedImages,
    PairedPatchDataset,
    PatchSampling,
    SyntheticPairs,
    list_image_files,
    match_paired_folders,
    sample_seed,
    split_by_file,
    validation_images,
)
from medrestore.data.mri_recon import mri_recon_sources
from medrestore.data.mri import mri_denoise_sources
from medrestore.data.nm import nm_sources
from medrestore.data.oct import oct_sources
from medrestore.losses import build_loss
from medrestore.models import create_model
from medrestore.physics.degradations import build_degradation, parameter_types
from medrestore.training.config import DataConfig, ExperimentConfig, NormalisationConfig
from medrestore.training.adversarial import AdversarialTrainer, build_discriminator
from medrestore.training.distributed import DistributedContext
from medrestore.training.trainer import ImageInference, StepInfo, Trainer, whole_image_inference


@dataclasses.dataclass(frozen=True, eq=False)
class Sources:
    """Training and (possibly absent) validation image pairs."""

    training: ImagePairSource
    validation: ImagePairSource | None


def _degradation(data: DataConfig) -> Callable[[torch.Tensor, torch.Generator], torch.Tensor]:
    assert data.degradation is not None
    parameters: dict[str, Any] = dict(data.degradation.parameters)
    if "spatial_ndim" in parameter_types(data.degradation.kind) and "spatial_ndim" not in parameters:
        parameters["spatial_ndim"] = data.spatial_ndim
    try:
        return build_degradation(data.degradation.kind, parameters)
    except ConfigError as error:
        raise ConfigError(f"data.degradation: {error}") from None


def _training_items(data: DataConfig) -> tuple[Any, ...]:
    """Path pairs (paired layout) or clean files (synthetic layout) for training."""
    if data.layout == "paired-folders":
        if data.pairs:
            return data.pairs
        assert data.noisy_dir is not None and data.clean_dir is not None
        return match_paired_folders(data.noisy_dir, data.clean_dir, data.pattern)
    if data.files:
        return data.files
    assert data.clean_dir is not None
    return list_image_files(data.clean_dir, data.pattern)


def _validation_items(data: DataConfig) -> tuple[Any, ...]:
    """Validation path pairs, or clean files to degrade (synthetic layout only)."""
    if data.validation_pairs:
        return data.validation_pairs
    if data.validation_files:
        return data.validation_files
    if data.validation_noisy_dir is not None and data.validation_clean_dir is not None:
        return match_paired_folders(data.validation_noisy_dir, data.validation_clean_dir, data.pattern)
    if data.validation_clean_dir is not None:
        return list_image_files(data.validation_clean_dir, data.pattern)
    return ()


def _make_source(data: DataConfig, items: Sequence[Any]) -> ImagePairSource:
    """Real pairs for ``(input, target)`` items; clean files degraded on the fly otherwise."""
    if isinstance(items[0], tuple):
        return PairedImages(items, data.spatial_ndim)
    if data.degradation is None:
        raise ConfigError("data.validation_files: clean files without pairs need the synthetic layout's degradation")
    return SyntheticPairs(items, _degradation(data), data.spatial_ndim)


def build_sources(data: DataConfig, seed: int) -> Sources:
    """Read training and validation pairs; ``validation_fraction`` splits whole files with ``seed``.

    A synthetic layout may validate on real pairs (``validation_pairs`` or both validation
    folders) as well as on degraded clean files. The ``oct`` layout reads its subjects and
    validation subjects from ``data.oct`` (:func:`medrestore.data.oct.oct_sources`), the ``nm``
    layout its activity maps from ``data.nm`` (:func:`medrestore.data.nm.nm_sources`).
    """
    if data.oct is not None:
        training_pairs, validation_pairs = oct_sources(data.oct)
        return Sources(training_pairs, validation_pairs)
    if data.nm is not None:
        training_maps, validation_maps = nm_sources(data.nm, seed)
        return Sources(training_maps, validation_maps)
    if data.mri_denoise is not None:
        training_images, validation_images_ = mri_denoise_sources(data.mri_denoise, data.spatial_ndim)
        return Sources(training_images, validation_images_)
    training = _training_items(data)
    validation = _validation_items(data)
    if data.validation_fraction > 0:
        training, validation = split_by_file(training, data.validation_fraction, seed)
    return Sources(_make_source(data, training), _make_source(data, validation) if validation else None)


def build_normalisation(config: NormalisationConfig, training: ImagePairSource, seed: int) -> Normalisation:
    """The configured normalisation; ``zscore-dataset`` is fitted on the training inputs (epoch-0 draws)."""
    if config.kind == "zscore-image":
        return ZScoreImage()
    if config.kind == "minmax-image":
        return MinMaxImage()
    if config.kind == "range":
        return FixedRange(scale=config.scale, offset=config.offset)
    if config.kind == "none":
        return NoNormalisation()
    inputs = (training.pair(i, make_generator(sample_seed(seed, 0, i)))[0] for i in range(len(training)))
    return fit_zscore_dataset(inputs)


def initial_weights(path: str | Path) -> Mapping[str, torch.Tensor]:
    """The state dict in ``path``: a training checkpoint's model weights, or a plain state-dict file."""
    payload = load_torch_file(Path(path))
    if isinstance(payload, Mapping) and isinstance(payload.get("model"), Mapping) and "state_dict" in payload["model"]:
        return payload["model"]["state_dict"]
    if isinstance(payload, Mapping) and payload and all(isinstance(value, torch.Tensor) for value in payload.values()):
        return payload
    raise InputError(Path(path), "model.init: neither a training checkpoint nor a state-dict file")


def build_model(config: ExperimentConfig) -> nn.Module:
    """Seed every global generator with ``train.seed``, then build the network (reproducible init).

    With ``model.init`` the network starts from those weights (they must fit the architecture).
    """
    seed_everything(config.train.seed)
    model = create_model(config.model.name, config.model.options)
    if config.model.init is not None:
        try:
            model.load_state_dict(initial_weights(config.model.init))
        except RuntimeError as error:
            raise InputError(Path(config.model.init), f"model.init: the weights do not fit {config.model.name!r}: {error}") from None
    spatial_ndim = getattr(model, "spatial_ndim", config.data.spatial_ndim)
    if spatial_ndim != config.data.spatial_ndim:
        raise ConfigError(
            f"model.options.spatial_ndim: the model is {spatial_ndim}-D but data.patch_size is {config.data.spatial_ndim}-D"
        )
    return model


def build_trainer(
    config: ExperimentConfig,
    device: torch.device,
    inference: ImageInference = whole_image_inference,
    callbacks: Sequence[Callable[[StepInfo], None]] = (),
    context: DistributedContext = DistributedContext(),
    run_dir: str | Path | None = None,
) -> Trainer:
    """Everything a run needs, ready for :meth:`Trainer.fit` (``run_dir`` defaults to ``train.output_dir``).

    The ``mri-recon`` layout brings its own dataset (whole undersampled slices, already scaled:
    no normalisation) and validation slices (:func:`medrestore.data.mri_recon.mri_recon_sources`).
    """
    seed = config.train.seed
    run_path = Path(run_dir if run_dir is not None else config.train.output_dir)
    if config.data.mri is not None:
        if getattr(config, "adversarial", None) is not None:
            raise ConfigError("adversarial: the 'mri-recon' layout trains with train.loss only")
        mri_dataset, mri_validation = mri_recon_sources(config.data.mri, seed)
        model = build_model(config)
        return Trainer(
            config, model, mri_dataset, mri_validation, NoNormalisation(), build_loss(config.train.loss), run_path, device,
            inference=inference, callbacks=callbacks, context=context,
        )  # fmt: skip
    sources = build_sources(config.data, seed)
    normalisation = build_normalisation(config.data.normalisation, sources.training, seed)
    data = config.data
    sampling = PatchSampling(
        data.patch_size, data.patches_per_image, data.patch_stride, data.augment, data.crop_size, data.crops_per_image
    )
    dataset = PairedPatchDataset(sources.training, normalisation, sampling, seed)
    validation = [] if sources.validation is None else validation_images(sources.validation, normalisation, seed)
    model = build_model(config)
    loss = build_loss(config.train.loss)
    arguments = (config, model, dataset, validation, normalisation, loss)
    folder = Path(run_dir if run_dir is not None else config.train.output_dir)
    if config.adversarial is None:
        return Trainer(*arguments, folder, device, inference=inference, callbacks=callbacks, context=context)
    channels = int(getattr(model, "out_channels", 1))
    discriminator = build_discriminator(config.adversarial, config.data.spatial_ndim, channels)
    return AdversarialTrainer(
        *arguments,
        folder,
        device,
        inference=inference,
        callbacks=callbacks,
        context=context,
        discriminator=discriminator,
        adversarial=config.adversarial,
    )
