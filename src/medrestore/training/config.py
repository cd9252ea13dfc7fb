"""Typed, frozen configuration of a paired image-to-image training run, read from YAML.

A configuration file has five sections (see ``configs/example-denoise-synthetic.yaml``)::

    data:      where the image pairs come from, patching, augmentation, normalisation
    model:     registered architecture name + its options
    optim:     Adam and an optional learning-rate schedule
    train:     epochs, batch size, loss, seed, device, output folder, checkpoints
    inference: tiled inference used for validation and stored with the weights

:func:`load_config` checks every key and type and raises :class:`ConfigError` naming the file
and the key path; :func:`dump_config` writes the YAML that :func:`load_config` reads back to an
equal configuration. Relative data paths are resolved against the folder of the configuration
file; a relative ``train.output_dir`` is kept relative to the working directory.
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from medrestore.core.errors import ConfigError
from medrestore.data.normalisation import NORMALISATION_KINDS
from medrestore.data.mri_recon import MRIReconDataConfig
from medrestore.data.mri import MRIDenoiseDataConfig
from medrestore.data.nm import NMDataConfig
from medrestore.data.oct import OCTDataConfig
from medrestore.training.typed_config import build_dataclass, to_plain

LAYOUTS = ("paired-folders", "synthetic", "oct", "nm", "mri-recon", "mri-denoise")
SCHEDULES = ("none", "step", "cosine")
BLENDS = ("gaussian", "constant")


def _empty_mapping() -> Mapping[str, Any]:
    return types.MappingProxyType({})


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def _check_size(name: str, size: tuple[int, ...] | None, allow_none: bool = False) -> None:
    if size is None and allow_none:
        return
    _check(size is not None and len(size) in (2, 3) and min(size) >= 1, f"{name}: expected 2 or 3 positive ints, got {size}")


@dataclasses.dataclass(frozen=True)
class DegradationConfig:
    """A physics degradation applied on the fly (``medrestore.physics.degradations``)."""

    kind: str
    parameters: Mapping[str, Any] = dataclasses.field(default_factory=_empty_mapping)


@dataclasses.dataclass(frozen=True)
class NormalisationConfig:
    """Intensity normalisation (:mod:`medrestore.data.normalisation`); ``scale``/``offset`` for ``range``."""

    kind: str = "zscore-image"
    scale: float = 1.0
    offset: float = 0.0

    def __post_init__(self) -> None:
        _check(self.kind in NORMALISATION_KINDS, f"kind: {self.kind!r} is not one of {', '.join(NORMALISATION_KINDS)}")
        _check(self.scale > 0, f"scale: must be > 0, got {self.scale}")


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Training (and validation) image pairs and how patches are drawn from them.

    ``paired-folders``: ``noisy_dir`` + ``clean_dir`` (files matched by name, filtered by
    ``pattern``) or ``pairs`` (explicit ``[input, target]`` paths). ``synthetic``: clean images
    from ``clean_dir`` or ``files``, inputs made by ``degradation`` with a new draw per sample.
    Validation: ``validation_noisy_dir`` + ``validation_clean_dir``, ``validation_pairs``,
    ``validation_files`` (synthetic), or ``validation_fraction`` of the training files (split
    by file, never by patch). ``oct``: frame groups of OCT subjects, paired as the ``oct``
    section says (:class:`~medrestore.data.oct.OCTDataConfig`, which also names the validation
    subjects). ``nm``: activity maps and a gamma-camera simulation drawing new coarse/fine
    count pairs every epoch (:class:`~medrestore.data.nm.NMDataConfig`, which also names the
    validation maps). ``mri-recon``: fully sampled slices undersampled anew every epoch, whole
    slices (no patches; :class:`~medrestore.data.mri_recon.MRIReconDataConfig`, which also names
    the validation slices; ``patch_size`` only sets the dimensionality). ``patch_stride``
    switches from ``patches_per_image`` random patches to a deterministic grid; with ``crop_size`` too, the grid is laid inside ``crops_per_image``
    random crops of each image, drawn once for the run (the OCT seed's recipe).
    ``mri-denoise``: one clean volume with Rician noise drawn per sample and a held-out slab (:class:`~medrestore.data.mri.MRIDenoiseDataConfig`).
    """

    layout: str = "paired-folders"
    noisy_dir: str | None = None
    clean_dir: str | None = None
    pairs: tuple[tuple[str, str], ...] = ()
    files: tuple[str, ...] = ()
    pattern: str = "*"
    degradation: DegradationConfig | None = None
    validation_noisy_dir: str | None = None
    validation_clean_dir: str | None = None
    validation_pairs: tuple[tuple[str, str], ...] = ()
    validation_files: tuple[str, ...] = ()
    validation_fraction: float = 0.0
    patch_size: tuple[int, ...] = (64, 64)
    patches_per_image: int = 8
    patch_stride: tuple[int, ...] | None = None
    crop_size: tuple[int, ...] | None = None
    crops_per_image: int = 1
    augment: bool = False
    normalisation: NormalisationConfig = NormalisationConfig()
    oct: OCTDataConfig | None = None
    nm: NMDataConfig | None = None
    mri: MRIReconDataConfig | None = None
    mri_denoise: MRIDenoiseDataConfig | None = None

    def __post_init__(self) -> None:
        _check(self.layout in LAYOUTS, f"layout: {self.layout!r} is not one of {', '.join(LAYOUTS)}")
        _check((self.layout == "oct") == (self.oct is not None), "oct: the 'oct' layout needs the oct section (and only it)")
        _check((self.layout == "nm") == (self.nm is not None), "nm: the 'nm' layout needs the nm section (and only it)")
        _check((self.layout == "mri-recon") == (self.mri is not None), "mri: the 'mri-recon' layout needs the mri section (and only it)")
        _check(
            (self.layout == "mri-denoise") == (self.mri_denoise is not None),
            "mri_denoise: the 'mri-denoise' layout needs the mri_denoise section (and only it)",
        )
        if self.layout == "oct":
            self._check_oct()
        elif self.layout in ("nm", "mri-recon", "mri-denoise"):
            self._check_nm()
        elif self.layout == "paired-folders":
            folders = self.noisy_dir is not None and self.clean_dir is not None
            _check(folders != bool(self.pairs), "layout: 'paired-folders' needs either noisy_dir and clean_dir, or pairs")
            _check(not self.files and self.degradation is None, "layout: files/degradation belong to the 'synthetic' layout")
        else:
            _check(self.degradation is not None, "degradation: the 'synthetic' layout needs a degradation")
            _check((self.clean_dir is not None) != bool(self.files), "layout: 'synthetic' needs either clean_dir or files")
            _check(self.noisy_dir is None and not self.pairs, "layout: noisy_dir/pairs belong to the 'paired-folders' layout")
        sources = [
            self.validation_noisy_dir is not None or self.validation_clean_dir is not None,
            bool(self.validation_pairs),
            bool(self.validation_files),
            self.validation_fraction > 0,
        ]
        _check(sum(sources) <= 1, "validation_fraction: give one validation source (folders, pairs, files or fraction)")
        noisy, clean = self.validation_noisy_dir is not None, self.validation_clean_dir is not None
        _check(not noisy or clean, "validation_noisy_dir: needs validation_clean_dir (matched by name)")
        if self.layout == "paired-folders":
            _check(noisy == clean, "validation_clean_dir: a paired layout validates on pairs; add validation_noisy_dir")
            _check(not self.validation_files, "validation_files: clean files to degrade need the 'synthetic' layout")
        _check(0.0 <= self.validation_fraction < 1.0, f"validation_fraction: must be in [0, 1), got {self.validation_fraction}")
        _check_size("patch_size", self.patch_size)
        _check_size("patch_stride", self.patch_stride, allow_none=True)
        if self.patch_stride is not None:
            _check(len(self.patch_stride) == len(self.patch_size), "patch_stride: needs one value per patch_size axis")
        _check(self.patches_per_image >= 1, f"patches_per_image: must be >= 1, got {self.patches_per_image}")
        _check_size("crop_size", self.crop_size, allow_none=True)
        if self.crop_size is not None:
            _check(self.patch_stride is not None, "crop_size: crops hold a grid of patches; set patch_stride")
            _check(len(self.crop_size) == len(self.patch_size), "crop_size: needs one value per patch_size axis")
        _check(self.crops_per_image >= 1, f"crops_per_image: must be >= 1, got {self.crops_per_image}")

    def _check_oct(self) -> None:
        inputs = (self.noisy_dir, self.clean_dir, self.validation_noisy_dir, self.validation_clean_dir, self.degradation)
        lists = (self.pairs, self.files, self.validation_pairs, self.validation_files)
        _check(
            all(value is None for value in inputs) and not any(lists) and self.validation_fraction == 0,
            "layout: the 'oct' layout reads its subjects from the oct section; remove the folder, pair and file keys",
        )
        _check(len(self.patch_size) == 2, "patch_size: OCT B-scans are 2-D; give 2 ints")

    def _check_nm(self) -> None:
        inputs = (self.noisy_dir, self.clean_dir, self.validation_noisy_dir, self.validation_clean_dir, self.degradation)
        lists = (self.pairs, self.files, self.validation_pairs, self.validation_files)
        _check(
            all(value is None for value in inputs) and not any(lists) and self.validation_fraction == 0,
            f"layout: the '{self.layout}' layout draws its samples from its own section; remove the folder, pair and file keys",
        )
        _check(self.layout == "mri-denoise" or len(self.patch_size) == 2, f"patch_size: the '{self.layout}' layout is 2-D; give 2 ints")

    @property
    def spatial_ndim(self) -> int:
        return len(self.patch_size)


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """A registered model (``medrestore.models.create_model(name, options)``).

    Attributes:
        name: registered architecture.
        options: its constructor options.
        init: start from these weights instead of a random initialisation (fine-tuning): a
            training checkpoint (``last.pt``/``best.pt``) or a state-dict file such as a zoo
            model's weights; a relative path is taken from the configuration file's folder.
    """

    name: str
    options: Mapping[str, Any] = dataclasses.field(default_factory=_empty_mapping)
    init: str | None = None


@dataclasses.dataclass(frozen=True)
class OptimConfig:
    """Adam (Kingma & Ba 2015) and a per-epoch schedule: ``step`` multiplies the rate by ``gamma``
    every ``step_size`` epochs; ``cosine`` anneals it to ``min_lr`` over ``train.epochs``."""

    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    schedule: str = "none"
    step_size: int = 10
    gamma: float = 0.1
    min_lr: float = 0.0

    def __post_init__(self) -> None:
        _check(self.lr > 0, f"lr: must be > 0, got {self.lr}")
        _check(all(0.0 <= b < 1.0 for b in self.betas), f"betas: must be in [0, 1), got {self.betas}")
        _check(self.weight_decay >= 0, f"weight_decay: must be >= 0, got {self.weight_decay}")
        _check(self.schedule in SCHEDULES, f"schedule: {self.schedule!r} is not one of {', '.join(SCHEDULES)}")
        _check(self.step_size >= 1, f"step_size: must be >= 1, got {self.step_size}")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """The loop. ``batch_size`` is per process; ``checkpoint_every_steps: 0`` saves only per epoch;
    ``data_range`` (validation PSNR/SSIM) defaults to ``max − min`` of each target; ``grad_clip``
    rescales the gradients to at most that global L2 norm before every step (``None``: never),
    which keeps deep networks without normalisation from diverging after a rare large gradient."""

    epochs: int = 10
    batch_size: int = 16
    loss: str = "mse"
    seed: int = 0
    device: str = "auto"
    output_dir: str = "results/train"
    validate_every: int = 1
    checkpoint_every_steps: int = 0
    max_steps: int | None = None
    progress_bar: bool = True
    num_workers: int = 0
    data_range: float | None = None
    grad_clip: float | None = None

    def __post_init__(self) -> None:
        _check(self.grad_clip is None or self.grad_clip > 0, f"grad_clip: must be > 0, got {self.grad_clip}")
        _check(self.epochs >= 1, f"epochs: must be >= 1, got {self.epochs}")
        _check(self.batch_size >= 1, f"batch_size: must be >= 1, got {self.batch_size}")
        _check(self.seed >= 0, f"seed: must be >= 0, got {self.seed}")
        _check(self.validate_every >= 1, f"validate_every: must be >= 1, got {self.validate_every}")
        _check(self.checkpoint_every_steps >= 0, f"checkpoint_every_steps: must be >= 0, got {self.checkpoint_every_steps}")
        _check(self.max_steps is None or self.max_steps >= 1, f"max_steps: must be >= 1, got {self.max_steps}")
        _check(self.num_workers >= 0, f"num_workers: must be >= 0, got {self.num_workers}")
        _check(self.data_range is None or self.data_range > 0, f"data_range: must be > 0, got {self.data_range}")


@dataclasses.dataclass(frozen=True)
class InferenceConfig:
    """Tiled inference (:func:`medrestore.inference.sliding_window_inference`); no window = whole image."""

    window: tuple[int, ...] | None = None
    overlap: float = 0.25
    blend: str = "gaussian"
    batch_size: int = 4

    def __post_init__(self) -> None:
        _check_size("window", self.window, allow_none=True)
        _check(0.0 <= self.overlap < 1.0, f"overlap: must be in [0, 1), got {self.overlap}")
        _check(self.blend in BLENDS, f"blend: {self.blend!r} is not one of {', '.join(BLENDS)}")
        _check(self.batch_size >= 1, f"batch_size: must be >= 1, got {self.batch_size}")


ADVERSARIAL_LOSSES = ("lsgan", "bce")


@dataclasses.dataclass(frozen=True)
class AdversarialConfig:
    """Adversarial training (``training.adversarial``): the model is the generator, trained on
    ``train.loss + weight · adversarial loss`` against a PatchGAN discriminator.

    Attributes:
        weight: ``λ`` of the adversarial term of the generator loss.
        loss: ``lsgan`` (least squares, Mao et al. 2017) or ``bce`` (Goodfellow et al. 2014).
        discriminator: options of :class:`~medrestore.models.patch_discriminator.PatchDiscriminatorConfig`
            (``spatial_ndim`` and ``in_channels`` default to the data's).
        lr: Adam rate of the discriminator.
        betas: Adam betas of the discriminator (pix2pix: 0.5, 0.999).
        warmup_steps: steps on ``train.loss`` alone before the adversarial term starts.
    """

    weight: float = 0.01
    loss: str = "lsgan"
    discriminator: Mapping[str, Any] = dataclasses.field(default_factory=_empty_mapping)
    lr: float = 1e-4
    betas: tuple[float, float] = (0.5, 0.999)
    warmup_steps: int = 0

    def __post_init__(self) -> None:
        _check(self.weight >= 0, f"weight: must be >= 0, got {self.weight}")
        _check(self.loss in ADVERSARIAL_LOSSES, f"loss: {self.loss!r} is not one of {', '.join(ADVERSARIAL_LOSSES)}")
        _check(self.lr > 0, f"lr: must be > 0, got {self.lr}")
        _check(all(0.0 <= b < 1.0 for b in self.betas), f"betas: must be in [0, 1), got {self.betas}")
        _check(self.warmup_steps >= 0, f"warmup_steps: must be >= 0, got {self.warmup_steps}")


@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
    """A whole training run (``adversarial`` set: a GAN run, see :mod:`medrestore.training.adversarial`)."""

    data: DataConfig
    model: ModelConfig
    optim: OptimConfig = OptimConfig()
    train: TrainConfig = TrainConfig()
    inference: InferenceConfig = InferenceConfig()
    adversarial: AdversarialConfig | None = None

    def __post_init__(self) -> None:
        window = self.inference.window
        _check(
            window is None or len(window) == self.data.spatial_ndim,
            f"inference.window: {window} does not match the {self.data.spatial_ndim}-D patch_size",
        )


_DATA_PATH_FIELDS = ("noisy_dir", "clean_dir", "validation_noisy_dir", "validation_clean_dir")
_DATA_PATH_LISTS = ("files", "validation_files")
_DATA_PAIR_LISTS = ("pairs", "validation_pairs")


def _resolve(path: str, base: Path) -> str:
    candidate = Path(path).expanduser()
    return str(candidate if candidate.is_absolute() else (base / candidate).resolve())


def resolve_data_paths(data: DataConfig, base: Path) -> DataConfig:
    """Copy of ``data`` with every relative path made absolute against ``base``."""
    changes: dict[str, Any] = {}
    for name in _DATA_PATH_FIELDS:
        value = getattr(data, name)
        if value is not None:
            changes[name] = _resolve(value, base)
    for name in _DATA_PATH_LISTS:
        changes[name] = tuple(_resolve(p, base) for p in getattr(data, name))
    for name in _DATA_PAIR_LISTS:
        changes[name] = tuple((_resolve(a, base), _resolve(b, base)) for a, b in getattr(data, name))
    if data.oct is not None:
        changes["oct"] = data.oct.resolved(base)
    if data.nm is not None:
        changes["nm"] = data.nm.resolved(base)
    if data.mri is not None:
        changes["mri"] = data.mri.resolved(base)
    if data.mri_denoise is not None:
        changes["mri_denoise"] = data.mri_denoise.resolved(base)
    return dataclasses.replace(data, **changes)


def config_from_mapping(mapping: Any, source: str = "<config>", base_dir: str | Path | None = None) -> ExperimentConfig:
    """Build an :class:`ExperimentConfig` from parsed YAML; errors are prefixed with ``source``."""
    try:
        config = build_dataclass(ExperimentConfig, mapping, "")
    except ConfigError as error:
        raise ConfigError(f"{source}: {error}") from None
    if base_dir is not None:
        config = dataclasses.replace(config, data=resolve_data_paths(config.data, Path(base_dir)))
        if config.model.init is not None and not Path(config.model.init).expanduser().is_absolute():
            init = str((Path(base_dir) / Path(config.model.init).expanduser()).resolve())
            config = dataclasses.replace(config, model=dataclasses.replace(config.model, init=init))
    return config


def load_config(path: str | Path) -> ExperimentConfig:
    """Read a YAML configuration file; relative data paths are taken from the file's folder."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"{path}: cannot read the configuration ({error.strerror or error})") from None
    try:
        mapping = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: invalid YAML: {error}") from None
    return config_from_mapping(mapping, str(path), path.resolve().parent)


class _Dumper(yaml.SafeDumper):
    """Block style for mappings, flow style (``[32, 32]``) for lists of scalars."""


def _represent_list(dumper: yaml.SafeDumper, data: list[Any]) -> yaml.Node:
    flow = all(not isinstance(item, list | dict) for item in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


_Dumper.add_representer(list, _represent_list)


def dump_config(config: ExperimentConfig) -> str:
    """YAML text of ``config`` (every field written) that :func:`load_config` reads back equal."""
    return yaml.dump(to_plain(config), Dumper=_Dumper, sort_keys=False, default_flow_style=False)
