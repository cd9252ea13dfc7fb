"""Training of scanner harmonisers from a typed YAML configuration (``medrestore train``).

A configuration whose top level has ``method:`` is a harmonisation run (see
``configs/harmonize-cyclegan-sim.yaml``)::

    method: cyclegan            # or coupled-dictionary, histogram-matching
    data:    scanner_a_dir, scanner_b_dir (paired methods: matched by file name),
             validation_a_dir, validation_b_dir (optional paired slices), scale
    options: the method's options (CycleGANConfig, CoupledDictionaryConfig, HistogramMatchingConfig)
    optim:   lr, betas (CycleGAN)
    train:   epochs, batch_size, cycle_weight, identity_weight, adversarial_weight, structure_weight,
             structure_smoothing, seed, output_dir, max_steps, threads

The CycleGAN loop (:class:`CycleGANTrainer`) alternates one generator and one discriminator
Adam step per batch, checkpoints atomically after every epoch (:func:`save_checkpoint`, with
both optimisers, the progress and the RNG state), keeps ``best.pt`` (highest mean validation
SSIM of the two directions) and resumes exactly from ``last.pt``; ``harmonizer.pt`` holds the
best epoch's generators. Fitted
classical harmonisers are saved as ``harmonizer.pt``: ``{"method", "options", "state"}``.
Every run writes ``config.yaml``, ``history.json`` and (CycleGAN) ``log.csv``.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import yaml

from medrestore.core.errors import ConfigError, InputError
from medrestore.core.files import atomic_path, atomic_write_text, load_torch_file
from medrestore.core.progress import progress
from medrestore.core.random import rng_state, seed_everything, set_rng_state
from medrestore.core.registry import config_to_options
from medrestore.data.harmonize import UnpairedSlices, read_folder_slices, read_paired_folders
from medrestore.metrics.ssim import ssim
from medrestore.models.cyclegan import CycleGAN, CycleLossWeights, discriminator_loss, generator_losses
from medrestore.models.ensemble import UNetEnsemble
from medrestore.models.harmonizers import HARMONIZERS, Harmonizer, NetworkHarmonizer
from medrestore.training.checkpoint import (
    CHECKPOINT_FORMAT,
    decode_rng_state,
    encode_rng_state,
    load_checkpoint,
    save_checkpoint,
)
from medrestore.training.typed_config import build_dataclass, to_plain

HARMONIZATION_METHODS = tuple(HARMONIZERS.names())
HARMONIZER_FORMAT = "medrestore-harmonizer-1"


@dataclasses.dataclass(frozen=True)
class HarmonizationData:
    """Scanner folders (relative paths are resolved against the configuration file's folder)."""

    scanner_a_dir: str
    scanner_b_dir: str
    validation_a_dir: str | None = None
    validation_b_dir: str | None = None
    scale: float = 1.0

    def __post_init__(self) -> None:
        if self.scale <= 0:
            raise ConfigError(f"scale: must be > 0, got {self.scale}")
        if (self.validation_a_dir is None) != (self.validation_b_dir is None):
            raise ConfigError("validation_a_dir: give both validation folders (paired slices) or neither")


@dataclasses.dataclass(frozen=True)
class HarmonizationOptim:
    """Adam for generators and discriminators (CycleGAN's ``β₁ = 0.5``)."""

    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)


@dataclasses.dataclass(frozen=True)
class HarmonizationTrain:
    """Loop settings; ``threads`` caps torch's CPU threads (0 = leave as is)."""

    epochs: int = 10
    batch_size: int = 4
    cycle_weight: float = 10.0
    identity_weight: float = 5.0
    adversarial_weight: float = 1.0
    structure_weight: float = 0.0
    structure_smoothing: float = 1.0
    seed: int = 0
    output_dir: str = "results/harmonize"
    max_steps: int | None = None
    threads: int = 0

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.threads < 0:
            raise ConfigError("epochs and batch_size must be >= 1, threads >= 0")


@dataclasses.dataclass(frozen=True)
class HarmonizationConfig:
    """A whole harmonisation run."""

    method: str
    data: HarmonizationData
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    optim: HarmonizationOptim = HarmonizationOptim()
    train: HarmonizationTrain = HarmonizationTrain()

    def __post_init__(self) -> None:
        if self.method not in HARMONIZATION_METHODS:
            raise ConfigError(f"method: {self.method!r} is not one of {', '.join(HARMONIZATION_METHODS)}")
        method_config(self.method, self.options)


def method_config(method: str, options: Mapping[str, Any] | None) -> Any:
    """The typed config of registered harmoniser ``method`` from ``options`` (unknown keys refused, naming them)."""
    return HARMONIZERS.get(method).make_config(options)


def is_harmonization_config(mapping: Any) -> bool:
    """Whether parsed YAML describes a harmonisation run (it has a top-level ``method``)."""
    return isinstance(mapping, Mapping) and "method" in mapping


def harmonization_config_from_mapping(mapping: Any, source: str, base_dir: Path | None) -> HarmonizationConfig:
    """Typed config from parsed YAML; data folders resolved against ``base_dir``."""
    try:
        config = build_dataclass(HarmonizationConfig, mapping, "")
    except ConfigError as error:
        raise ConfigError(f"{source}: {error}") from None
    if base_dir is None:
        return config
    data = config.data
    resolved = {
        name: str((base_dir / value).resolve()) if value is not None and not Path(value).is_absolute() else value
        for name, value in dataclasses.asdict(data).items()
        if name.endswith("_dir")
    }
    return dataclasses.replace(config, data=dataclasses.replace(data, **resolved))


def load_harmonization_config(path: str | Path) -> HarmonizationConfig:
    """Read a harmonisation YAML file."""
    path = Path(path)
    try:
        mapping = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise ConfigError(f"{path}: cannot read the configuration ({error})") from None
    return harmonization_config_from_mapping(mapping, str(path), path.resolve().parent)


def build_harmonizer(method: str, options: Mapping[str, Any] | None = None) -> Harmonizer:
    """An unfitted harmoniser of registered ``method`` (:data:`~medrestore.models.harmonizers.HARMONIZERS`)."""
    return HARMONIZERS.get(method).create(options)


def save_harmonizer(harmonizer: Harmonizer, method: str, path: str | Path, extra: Mapping[str, Any] | None = None) -> Path:
    """Write ``{"format", "method", "options", "state", "extra"}`` atomically (``torch.save``)."""
    options = harmonizer.config if isinstance(harmonizer.config, dict) else config_to_options(harmonizer.config)
    payload = {
        "format": HARMONIZER_FORMAT,
        "method": method,
        "options": to_plain(options),
        "state": harmonizer.state_dict(),
        "extra": dict(extra or {}),
    }
    with atomic_path(path, suffix=".tmp") as temporary:
        torch.save(payload, temporary)
    return Path(path)


def load_harmonizer(path: str | Path) -> Harmonizer:
    """Rebuild a harmoniser saved by :func:`save_harmonizer` (or a CycleGAN ``last.pt``/``best.pt``)."""
    payload = load_torch_file(Path(path))
    if isinstance(payload, dict) and payload.get("format") == CHECKPOINT_FORMAT:
        return cyclegan_harmonizer(payload)
    if not isinstance(payload, dict) or payload.get("format") != HARMONIZER_FORMAT:
        raise InputError(path, f"not a harmoniser file (expected format {HARMONIZER_FORMAT!r})")
    method = str(payload["method"])
    if method == "cyclegan":
        model = CycleGAN(method_config("cyclegan", payload["options"].get("model", {})))
        harmonizer = NetworkHarmonizer(
            "cyclegan", {"a2b": model.a2b, "b2a": model.b2a}, payload["options"].get("scale", 1.0), config_to_options(model.config)
        )
    else:
        harmonizer = build_harmonizer(method, payload["options"])
    harmonizer.load_state_dict(payload["state"])
    return harmonizer


def cyclegan_harmonizer(checkpoint: Mapping[str, Any]) -> NetworkHarmonizer:
    """The two generators of a CycleGAN training checkpoint as a harmoniser."""
    model = CycleGAN(method_config("cyclegan", checkpoint["model"]["options"]))
    model.load_state_dict(checkpoint["model"]["state_dict"])
    scale = float(checkpoint["normalisation"]["scale"])
    return NetworkHarmonizer("cyclegan", {"a2b": model.a2b, "b2a": model.b2a}, scale, config_to_options(model.config))


def cyclegan_ensemble(checkpoints: Sequence[Mapping[str, Any]]) -> NetworkHarmonizer:
    """The generators of several CycleGAN checkpoints (same options, different seeds) averaged per direction.

    Each direction's network is a :class:`~medrestore.models.ensemble.UNetEnsemble` of the
    runs' generators for that direction; the scale is the runs' common one.
    """
    if not checkpoints:
        raise ConfigError("a CycleGAN ensemble needs at least one checkpoint")
    members = [cyclegan_harmonizer(checkpoint) for checkpoint in checkpoints]
    scales = {member.scale for member in members}
    if len(scales) != 1:
        raise ConfigError(f"the CycleGAN runs were trained on different intensity scales: {sorted(scales)}")
    networks = {
        direction: UNetEnsemble.from_members([member.networks[direction] for member in members])  # type: ignore[misc]
        for direction in ("a2b", "b2a")
    }
    return NetworkHarmonizer("cyclegan", networks, scales.pop(), {"members": len(members), **members[0].config["model"]})


def fit_classical(config: HarmonizationConfig) -> Path:
    """Fit histogram matching or coupled dictionaries on the configured folders; returns the run folder."""
    run_dir = Path(config.train.output_dir)
    if config.method == "coupled-dictionary":
        _, slices_a, slices_b = read_paired_folders(config.data.scanner_a_dir, config.data.scanner_b_dir)
    else:
        slices_a = read_folder_slices(config.data.scanner_a_dir)[1]
        slices_b = read_folder_slices(config.data.scanner_b_dir)[1]
    harmonizer = build_harmonizer(config.method, config.options)
    start = time.perf_counter()
    info = harmonizer.fit(slices_a, slices_b, seed=config.train.seed)
    info = {**info, "seconds": time.perf_counter() - start, "slices_a": len(slices_a), "slices_b": len(slices_b)}
    if config.data.validation_a_dir is not None:
        info.update(validate(harmonizer, config.data))
    atomic_write_text(run_dir / "config.yaml", yaml.safe_dump(to_plain(config), sort_keys=False))
    save_harmonizer(harmonizer, config.method, run_dir / "harmonizer.pt", {"fit": info})
    atomic_write_text(run_dir / "history.json", json.dumps(info, indent=2) + "\n")
    return run_dir


def validate(harmonizer: Harmonizer, data: HarmonizationData) -> dict[str, float]:
    """Mean SSIM of ``a2b(a)`` to ``b`` and ``b2a(b)`` to ``a`` over the validation pairs (data range = b's max)."""
    assert data.validation_a_dir is not None and data.validation_b_dir is not None
    _, val_a, val_b = read_paired_folders(data.validation_a_dir, data.validation_b_dir)
    data_range = float(torch.maximum(val_a.max(), val_b.max()))
    return {
        "val_ssim_a2b": ssim(harmonizer.harmonize(val_a, "a2b").double(), val_b.double(), data_range),
        "val_ssim_b2a": ssim(harmonizer.harmonize(val_b, "b2a").double(), val_a.double(), data_range),
    }


LOG_COLUMNS = ("epoch", "generator_loss", "discriminator_loss", "adversarial", "cycle", "identity", "structure", "val_ssim_a2b", "val_ssim_b2a", "seconds")


class CycleGANTrainer:
    """Unpaired CycleGAN training with exact resume (see the module docstring)."""

    def __init__(self, config: HarmonizationConfig) -> None:
        self.config = config
        self.run_dir = Path(config.train.output_dir)
        self.model = CycleGAN(method_config("cyclegan", config.options))
        scale = config.data.scale
        self.slices_a = read_folder_slices(config.data.scanner_a_dir)[1] / scale
        self.slices_b = read_folder_slices(config.data.scanner_b_dir)[1] / scale
        optim = config.optim
        self.optimizer_g = torch.optim.Adam(self.model.generators(), lr=optim.lr, betas=optim.betas)
        self.optimizer_d = torch.optim.Adam(self.model.discriminators(), lr=optim.lr, betas=optim.betas)
        train = config.train
        self.weights = CycleLossWeights(
            train.cycle_weight, train.identity_weight, train.adversarial_weight, train.structure_weight, train.structure_smoothing
        )
        self.epoch = 0
        self.global_step = 0
        self.best_score = -math.inf
        self.best_epoch = -1
        self.history: list[dict[str, float | None]] = []

    def harmonizer(self) -> NetworkHarmonizer:
        networks = {"a2b": self.model.a2b, "b2a": self.model.b2a}
        return NetworkHarmonizer("cyclegan", networks, self.config.data.scale, config_to_options(self.model.config))

    def checkpoint_payload(self) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT,
            "model": {"name": "cyclegan", "options": config_to_options(self.model.config), "state_dict": self.model.state_dict()},
            "normalisation": {"kind": "range", "scale": self.config.data.scale, "offset": 0.0},
            "inference": {},
            "optimizer": {"generator": self.optimizer_g.state_dict(), "discriminator": self.optimizer_d.state_dict()},
            "progress": {
                "epoch": self.epoch,
                "global_step": self.global_step,
                "best_score": self.best_score,
                "best_epoch": self.best_epoch,
            },
            "history": self.history,
            "rng_state": encode_rng_state(rng_state()),
            "config": yaml.safe_dump(to_plain(self.config), sort_keys=False),
            "seed": self.config.train.seed,
        }

    def restore(self, checkpoint: Mapping[str, Any]) -> None:
        self.model.load_state_dict(checkpoint["model"]["state_dict"])
        self.optimizer_g.load_state_dict(checkpoint["optimizer"]["generator"])
        self.optimizer_d.load_state_dict(checkpoint["optimizer"]["discriminator"])
        self.epoch = int(checkpoint["progress"]["epoch"])
        self.global_step = int(checkpoint["progress"]["global_step"])
        self.best_score = float(checkpoint["progress"]["best_score"])
        self.best_epoch = int(checkpoint["progress"]["best_epoch"])
        self.history = list(checkpoint["history"])
        set_rng_state(decode_rng_state(checkpoint["rng_state"]))

    def _epoch(self, dataset: UnpairedSlices) -> dict[str, float]:
        dataset.epoch = self.epoch
        order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(self.config.train.seed + self.epoch))
        sums: dict[str, float] = {}
        batches = 0
        size = self.config.train.batch_size
        for start in range(0, len(order), size):
            if self.config.train.max_steps is not None and self.global_step >= self.config.train.max_steps:
                break
            items = [dataset[int(i)] for i in order[start : start + size]]
            real_a, real_b = torch.stack([a for a, _ in items]), torch.stack([b for _, b in items])
            self.model.train()
            loss_g, parts, fake_a, fake_b = generator_losses(self.model, real_a, real_b, self.weights)
            self.optimizer_g.zero_grad(set_to_none=True)
            loss_g.backward()
            self.optimizer_g.step()
            loss_d = discriminator_loss(self.model, real_a, real_b, fake_a, fake_b)
            self.optimizer_d.zero_grad(set_to_none=True)
            loss_d.backward()
            self.optimizer_d.step()
            for key, value in {**parts, "generator_loss": float(loss_g.detach()), "discriminator_loss": float(loss_d.detach())}.items():
                sums[key] = sums.get(key, 0.0) + value
            batches += 1
            self.global_step += 1
        return {key: value / max(batches, 1) for key, value in sums.items()}

    def fit(self, resume: bool = False) -> Path:
        """Train (or resume from ``last.pt``) for ``train.epochs``; returns the run folder."""
        train = self.config.train
        if train.threads:
            torch.set_num_threads(train.threads)
        if resume:
            self.restore(load_checkpoint(self.run_dir / "last.pt"))
        else:
            seed_everything(train.seed)
            self.model = CycleGAN(self.model.config)
            self.optimizer_g = torch.optim.Adam(self.model.generators(), lr=self.config.optim.lr, betas=self.config.optim.betas)
            self.optimizer_d = torch.optim.Adam(self.model.discriminators(), lr=self.config.optim.lr, betas=self.config.optim.betas)
        atomic_write_text(self.run_dir / "config.yaml", yaml.safe_dump(to_plain(self.config), sort_keys=False))
        dataset = UnpairedSlices(self.slices_a, self.slices_b, train.seed)
        with progress("cyclegan epochs", train.epochs - self.epoch) as step:
            while self.epoch < train.epochs:
                if train.max_steps is not None and self.global_step >= train.max_steps:
                    break
                self._train_epoch(dataset)
                step()
        best = self.run_dir / "best.pt"
        final = cyclegan_harmonizer(load_checkpoint(best)) if best.is_file() else self.harmonizer()
        save_harmonizer(final, "cyclegan", self.run_dir / "harmonizer.pt", {"best_epoch": self.best_epoch})
        return self.run_dir

    def _train_epoch(self, dataset: UnpairedSlices) -> None:
        """One epoch, its validation, checkpoints (``last.pt``, and ``best.pt`` when it improved) and logs."""
        start = time.perf_counter()
        row: dict[str, float | None] = {"epoch": float(self.epoch), **self._epoch(dataset)}
        if self.config.data.validation_a_dir is not None:
            row.update(validate(self.harmonizer(), self.config.data))
        row["seconds"] = time.perf_counter() - start
        self.history.append(row)
        score = self._score(row)
        improved = score > self.best_score
        if improved:
            self.best_score, self.best_epoch = score, self.epoch
        self.epoch += 1
        payload = self.checkpoint_payload()
        save_checkpoint(self.run_dir / "last.pt", payload)
        if improved:
            save_checkpoint(self.run_dir / "best.pt", payload)
        self._write_logs()

    def _score(self, row: Mapping[str, float | None]) -> float:
        """Validation score: mean of the two directions' SSIM (without validation: the epoch index, so the last wins)."""
        values = [row.get("val_ssim_a2b"), row.get("val_ssim_b2a")]
        if any(value is None for value in values):
            return float(self.epoch)
        return float(sum(values)) / 2  # type: ignore[arg-type]

    def _write_logs(self) -> None:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=LOG_COLUMNS, lineterminator="\n", extrasaction="ignore")
        writer.writeheader()
        for row in self.history:
            writer.writerow({key: row.get(key, "") for key in LOG_COLUMNS})
        atomic_write_text(self.run_dir / "log.csv", buffer.getvalue())
        summary = {"best_epoch": self.best_epoch, "best_val_ssim": self.best_score, "epochs": self.history}
        atomic_write_text(self.run_dir / "history.json", json.dumps(summary, indent=2) + "\n")


def train_harmonizer(config: HarmonizationConfig, resume: bool = False) -> Path:
    """Run the configured harmonisation training or fit; returns the run folder."""
    if config.method == "cyclegan":
        return CycleGANTrainer(config).fit(resume=resume)
    if resume:
        raise ConfigError(f"{config.method} is fitted in one pass; there is nothing to resume")
    return fit_classical(config)
