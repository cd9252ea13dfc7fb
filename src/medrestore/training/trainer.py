"""The training loop for paired image-to-image models, with exact resume.

One epoch runs the batches of :class:`~medrestore.data.sampler.EpochBatchSampler` (a pure
function of ``(seed, epoch)``) through Adam on the configured loss. After every step the
progress (epoch, next batch, global step, running loss) is updated *before* anything else
happens, so a checkpoint written at any step boundary — every ``checkpoint_every_steps``,
on ``max_steps``, on Ctrl-C / ``KeyboardInterrupt``, at the end of each epoch — resumes to
the same weights, bit for bit, as an uninterrupted run.

Every ``validate_every`` epochs the model is run on whole validation images (through the
``inference`` callable, e.g. tiled inference) and scored with PSNR and SSIM (data range =
``train.data_range`` or ``max − min`` of each target) after de-normalisation. Rank 0 writes:

* ``log.csv`` — epoch, step, train_loss, val_psnr, val_ssim, lr, seconds (one row per epoch);
* ``history.json`` — the same rows plus the best epoch;
* ``last.pt`` — the latest checkpoint; ``best.pt`` — the one with the best validation PSNR.

Ctrl-C is caught at the next step boundary: ``last.pt`` is written and
:class:`KeyboardInterrupt` re-raised (with ``torchrun``, all ranks stop at the same step). A
second Ctrl-C stops at once; ``last.pt`` is still written, but if it landed inside an optimiser
step the resumed run is no longer bit-exact.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

import torch
import torch.utils.data
import yaml
from torch import nn
from tqdm import tqdm

from medrestore.core.errors import ConfigError, InputError, MedrestoreError
from medrestore.core.files import atomic_write_text
from medrestore.core.random import rng_state, set_rng_state
from medrestore.data.normalisation import Normalisation
from medrestore.data.paired import PairedPatchDataset, ValidationImage
from medrestore.data.sampler import EpochBatchSampler, batches_per_epoch
from medrestore.metrics import psnr, ssim
from medrestore.training.checkpoint import CHECKPOINT_FORMAT, decode_rng_state, encode_rng_state, load_checkpoint, save_checkpoint
from medrestore.training.config import ExperimentConfig, OptimConfig, config_from_mapping, dump_config
from medrestore.training.distributed import DistributedContext, all_reduce_mean, any_rank, wrap_model
from medrestore.training.typed_config import to_plain

ImageInference = Callable[[Callable[[torch.Tensor], torch.Tensor], torch.Tensor], torch.Tensor]
"""``inference(function, x (1, C, *spatial)) -> y``: how a whole image is pushed through the model."""

NetworkInputs = torch.Tensor | Sequence[torch.Tensor]
"""A batch's network input: one tensor, or several (e.g. image, k-space, mask, coil maps for
networks with data consistency) passed as positional arguments: ``model(*inputs)``."""

LOG_COLUMNS = ("epoch", "step", "train_loss", "val_psnr", "val_ssim", "lr", "seconds")
RESUMABLE_CHANGES = (
    "train.epochs", "train.max_steps", "train.output_dir", "train.device", "train.progress_bar",
    "train.num_workers", "train.validate_every", "train.checkpoint_every_steps",
)  # fmt: skip


def _to_device(inputs: NetworkInputs, device: torch.device) -> NetworkInputs:
    if isinstance(inputs, torch.Tensor):
        return inputs.to(device, non_blocking=True)
    return [tensor.to(device, non_blocking=True) for tensor in inputs]


def run_network(network: Callable[..., torch.Tensor], inputs: NetworkInputs) -> torch.Tensor:
    """``network(inputs)`` for a tensor, ``network(*inputs)`` for a sequence of tensors."""
    return network(inputs) if isinstance(inputs, torch.Tensor) else network(*inputs)


def whole_image_inference(function: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """The default :data:`ImageInference`: the whole image in one call."""
    return function(x)


@dataclasses.dataclass(frozen=True)
class StepInfo:
    """Passed to callbacks after every optimisation step (``step_in_epoch`` counts finished batches)."""

    epoch: int
    step_in_epoch: int
    global_step: int
    loss: float


@dataclasses.dataclass
class TrainingProgress:
    """Where the run is; saved in every checkpoint (``step_in_epoch`` = next batch to run)."""

    epoch: int = 0
    step_in_epoch: int = 0
    global_step: int = 0
    epoch_loss_sum: float = 0.0
    epoch_loss_count: int = 0
    epoch_seconds: float = 0.0
    best_val_psnr: float | None = None
    best_epoch: int | None = None


@dataclasses.dataclass(frozen=True)
class TrainingResult:
    """What :meth:`Trainer.fit` leaves behind."""

    run_dir: Path
    last_checkpoint: Path
    best_checkpoint: Path | None
    history: tuple[dict[str, Any], ...]
    global_step: int
    finished: bool


def build_optimizer(model: nn.Module, optim: OptimConfig) -> torch.optim.Adam:
    """Adam with the configured rate, betas and (L2) weight decay."""
    return torch.optim.Adam(model.parameters(), lr=optim.lr, betas=optim.betas, weight_decay=optim.weight_decay)


def build_scheduler(
    optimizer: torch.optim.Optimizer, optim: OptimConfig, epochs: int
) -> torch.optim.lr_scheduler.LRScheduler | None:
    """Per-epoch schedule: ``StepLR(step_size, gamma)``, ``CosineAnnealingLR(epochs, min_lr)`` or none."""
    if optim.schedule == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=optim.step_size, gamma=optim.gamma)
    if optim.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs, eta_min=optim.min_lr)
    return None


def _flatten(mapping: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(mapping, dict):
        return {prefix: mapping}
    flat: dict[str, Any] = {}
    for key, value in mapping.items():
        flat.update(_flatten(value, f"{prefix}{key}." if isinstance(value, dict) else f"{prefix}{key}"))
    return flat


def check_resumable(stored_yaml: str, config: ExperimentConfig, path: Path) -> None:
    """Refuse to resume with a configuration that changes more than the length/location of the run.

    The stored configuration is read back with today's defaults, so an option added since the
    checkpoint was written counts as changed only when the current configuration sets it away
    from its default.
    """
    mapping = yaml.safe_load(stored_yaml)
    try:
        stored = _flatten(to_plain(config_from_mapping(mapping, str(path))))
    except ConfigError:  # a key that no longer exists: compare as written
        stored = _flatten(mapping)
    current = _flatten(to_plain(config))
    changed = sorted(k for k in set(stored) | set(current) if stored.get(k) != current.get(k) and k not in RESUMABLE_CHANGES)
    if changed:
        raise ConfigError(f"{path}: cannot resume: the configuration differs from the checkpoint in {', '.join(changed)}")


class _InterruptFlag:
    """SIGINT → set a flag checked at step boundaries; a second SIGINT interrupts immediately."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> _InterruptFlag:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


class Trainer:
    """Train ``model`` on ``dataset`` as ``config`` says, writing into ``run_dir`` (rank 0 only).

    Args:
        config: the experiment (optimiser, schedule, loop settings, inference settings).
        model: the network (unwrapped; moved to ``device`` here).
        dataset: training patches (or whole samples), indexed by ``(epoch, index)``, each ``(inputs, target)``
            with ``inputs`` one tensor or a sequence of tensors (see :data:`NetworkInputs`).
        validation: whole validation images (may be empty: no validation, no ``best.pt``).
        normalisation: recorded in checkpoints; de-normalises validation outputs.
        loss: ``loss(prediction, target)`` on ``(N, C, *spatial)`` tensors.
        run_dir: output folder.
        device: where the model runs.
        inference: how validation images go through the model (default: whole image).
        callbacks: called with a :class:`StepInfo` after every step (may raise KeyboardInterrupt).
        context: distributed rank/world size (default: single process).
    """

    def __init__(
        self,
        config: ExperimentConfig,
        model: nn.Module,
        dataset: PairedPatchDataset | torch.utils.data.Dataset[Any],
        validation: Sequence[ValidationImage],
        normalisation: Normalisation,
        loss: nn.Module,
        run_dir: str | Path,
        device: torch.device,
        inference: ImageInference = whole_image_inference,
        callbacks: Sequence[Callable[[StepInfo], None]] = (),
        context: DistributedContext = DistributedContext(),
    ) -> None:
        self.config = config
        self.model = model.to(device)
        self.network = wrap_model(self.model, context, device)
        self.dataset = dataset
        self.validation = list(validation)
        self.normalisation = normalisation
        self.loss = loss.to(device)
        self.run_dir = Path(run_dir)
        self.device = device
        self.inference = inference
        self.callbacks = tuple(callbacks)
        self.context = context
        self.optimizer = build_optimizer(self.model, config.optim)
        self.scheduler = build_scheduler(self.optimizer, config.optim, config.train.epochs)
        self.progress = TrainingProgress()
        self.history: list[dict[str, Any]] = []
        self.steps_per_epoch = batches_per_epoch(len(dataset), config.train.batch_size, context.world_size)

    # -- paths ------------------------------------------------------------------------------
    @property
    def last_path(self) -> Path:
        return self.run_dir / "last.pt"

    @property
    def best_path(self) -> Path:
        return self.run_dir / "best.pt"

    # -- public -----------------------------------------------------------------------------
    def fit(self, resume: bool = False) -> TrainingResult:
        """Train to ``train.epochs`` (or ``train.max_steps``); resume from ``last.pt`` if asked."""
        if resume:
            self.restore(load_checkpoint(self.last_path, map_location=self.device))
        elif self.last_path.exists():
            raise ConfigError(
                f"{self.run_dir}: already holds a run (last.pt); resume it (medrestore train --resume) or choose another output folder"
            )
        if self.context.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.run_dir / "config.yaml", dump_config(self.config))
        self.network.train()
        finished = True
        with _InterruptFlag() as interrupt:
            try:
                while self.progress.epoch < self.config.train.epochs:
                    if not self._run_epoch(interrupt):
                        finished = False
                        break
                    self._end_epoch()
            except KeyboardInterrupt:
                self._save(self.last_path)
                raise
        best = self.best_path if self.best_path.exists() else None
        return TrainingResult(self.run_dir, self.last_path, best, tuple(self.history), self.progress.global_step, finished)

    def restore(self, checkpoint: dict[str, Any]) -> None:
        """Load weights, optimiser, scheduler, progress, history and RNG states from a checkpoint."""
        check_resumable(checkpoint["config"], self.config, self.last_path)
        self.model.load_state_dict(checkpoint["model"]["state_dict"])
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        if self.scheduler is not None and checkpoint.get("scheduler") is not None:
            self.scheduler.load_state_dict(checkpoint["scheduler"])
        self.progress = TrainingProgress(**checkpoint["progress"])
        self.history = [dict(row) for row in checkpoint.get("history", [])]
        set_rng_state(decode_rng_state(checkpoint["rng_state"]))

    def checkpoint_payload(self) -> dict[str, Any]:
        """Everything :meth:`restore` and ``Predictor.from_checkpoint`` need (see training.checkpoint)."""
        inference = self.config.inference
        return {
            "format": CHECKPOINT_FORMAT,
            "model": {
                "name": self.config.model.name,
                "options": to_plain(self.config.model.options),
                "state_dict": self.model.state_dict(),
            },
            "normalisation": self.normalisation.record(),
            "inference": {
                "window": None if inference.window is None else list(inference.window),
                "overlap": inference.overlap,
                "blend": inference.blend,
                "batch_size": inference.batch_size,
            },
            "optimizer": self.optimizer.state_dict(),
            "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
            "progress": dataclasses.asdict(self.progress),
            "history": [dict(row) for row in self.history],
            "rng_state": encode_rng_state(rng_state()),
            "config": dump_config(self.config),
            "seed": self.config.train.seed,
        }

    # -- the loop ---------------------------------------------------------------------------
    def _loader(self) -> torch.utils.data.DataLoader:
        sampler = EpochBatchSampler(
            len(self.dataset),
            self.config.train.batch_size,
            self.config.train.seed,
            self.progress.epoch,
            shuffle=True,
            rank=self.context.rank,
            world_size=self.context.world_size,
            start_batch=self.progress.step_in_epoch,
        )
        return torch.utils.data.DataLoader(
            self.dataset,
            batch_sampler=sampler,
            num_workers=self.config.train.num_workers,
            pin_memory=self.device.type == "cuda",
        )

    def _progress_bar(self) -> tqdm:
        show = self.config.train.progress_bar and self.context.is_main and sys.stderr.isatty()
        return tqdm(
            total=self.steps_per_epoch,
            initial=self.progress.step_in_epoch,
            desc=f"epoch {self.progress.epoch + 1}/{self.config.train.epochs}",
            disable=not show,
            leave=False,
            dynamic_ncols=True,
        )

    def _step(self, inputs: NetworkInputs, targets: torch.Tensor) -> float:
        inputs = _to_device(inputs, self.device)
        targets = targets.to(self.device, non_blocking=True)
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.loss(run_network(self.network, inputs), targets)
        if not bool(torch.isfinite(loss)):
            raise MedrestoreError(
                f"the loss became {float(loss)} at epoch {self.progress.epoch + 1}, step {self.progress.step_in_epoch + 1}; "
                "lower optim.lr or check the data normalisation"
            )
        loss.backward()
        if self.config.train.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(self.network.parameters(), self.config.train.grad_clip)
        self.optimizer.step()
        return float(loss.detach())

    def _run_epoch(self, interrupt: _InterruptFlag) -> bool:
        """Run the rest of the current epoch; False if stopped early (``max_steps``)."""
        started = time.perf_counter() - self.progress.epoch_seconds
        max_steps = self.config.train.max_steps
        every = self.config.train.checkpoint_every_steps
        with self._progress_bar() as bar:
            for inputs, targets in self._loader():
                if max_steps is not None and self.progress.global_step >= max_steps:
                    break
                value = self._step(inputs, targets)
                progress = self.progress
                progress.step_in_epoch += 1
                progress.global_step += 1
                progress.epoch_loss_sum += value
                progress.epoch_loss_count += 1
                progress.epoch_seconds = time.perf_counter() - started
                bar.update(1)
                bar.set_postfix(loss=f"{value:.4g}")
                if every and progress.global_step % every == 0:
                    self._save(self.last_path)
                info = StepInfo(progress.epoch, progress.step_in_epoch, progress.global_step, value)
                for callback in self.callbacks:
                    callback(info)
                if any_rank(interrupt.requested, self.context, self.device):
                    raise KeyboardInterrupt
        if max_steps is not None and self.progress.global_step >= max_steps and self.progress.step_in_epoch < self.steps_per_epoch:
            self._save(self.last_path)
            return False
        return True

    def _end_epoch(self) -> None:
        progress = self.progress
        epoch = progress.epoch
        mean_loss = progress.epoch_loss_sum / max(progress.epoch_loss_count, 1)
        mean_loss = all_reduce_mean(mean_loss, self.context, self.device)
        learning_rate = float(self.optimizer.param_groups[0]["lr"])
        if self.scheduler is not None:
            self.scheduler.step()
        val_psnr = val_ssim = None
        if self.validation and (epoch + 1) % self.config.train.validate_every == 0 and self.context.is_main:
            val_psnr, val_ssim = self.validate()
        improved = val_psnr is not None and (progress.best_val_psnr is None or val_psnr > progress.best_val_psnr)
        if improved:
            progress.best_val_psnr, progress.best_epoch = val_psnr, epoch + 1
        row = {
            "epoch": epoch + 1,
            "step": progress.global_step,
            "train_loss": mean_loss,
            "val_psnr": val_psnr,
            "val_ssim": val_ssim,
            "lr": learning_rate,
            "seconds": round(progress.epoch_seconds, 3),
        }
        self.history.append(row)
        self.progress = dataclasses.replace(
            progress, epoch=epoch + 1, step_in_epoch=0, epoch_loss_sum=0.0, epoch_loss_count=0, epoch_seconds=0.0
        )
        self._write_logs()
        self._save(self.last_path)
        if improved:
            self._save(self.best_path)

    # -- validation -------------------------------------------------------------------------
    def predict(self, image: ValidationImage) -> torch.Tensor:
        """De-normalised model output for one validation image, ``(C, *spatial)`` on the CPU.

        Several input tensors (a physics-aware network's image, k-space, mask, coil maps) run
        whole, in one call; a single tensor goes through ``inference`` (e.g. tiled).
        """

        def function(batch: torch.Tensor) -> torch.Tensor:
            return self.model(batch.to(self.device))

        with torch.no_grad():
            if isinstance(image.input, torch.Tensor):
                output = self.inference(function, image.input.unsqueeze(0))
            else:
                output = self.model(*(tensor.unsqueeze(0).to(self.device) for tensor in image.input))
        return self.normalisation.denormalise(output[0].detach().cpu().to(torch.float32), image.parameters)

    def validate(self) -> tuple[float, float | None]:
        """Mean PSNR and SSIM over the validation images (model in eval mode meanwhile).

        SSIM is skipped (``None``) for images with an axis shorter than its 11-voxel window.
        """
        self.model.eval()
        psnr_values, ssim_values = [], []
        try:
            for image in self.validation:
                prediction = self.predict(image)
                target = image.target
                common = tuple(min(a, b) for a, b in zip(prediction.shape, target.shape, strict=True))
                crop = tuple(slice(0, n) for n in common)
                prediction, target = prediction[crop], target[crop]
                data_range = self.config.train.data_range or float(target.max() - target.min()) or 1.0
                psnr_values.append(psnr(prediction, target, data_range))
                try:
                    ssim_values.append(ssim(prediction, target, data_range, spatial_ndim=target.ndim - 1))
                except InputError:
                    pass
        finally:
            self.network.train()
        mean_ssim = sum(ssim_values) / len(ssim_values) if ssim_values else None
        return sum(psnr_values) / len(psnr_values), mean_ssim

    # -- output -----------------------------------------------------------------------------
    def _save(self, path: Path) -> None:
        if self.context.is_main:
            save_checkpoint(path, self.checkpoint_payload())

    def _write_logs(self) -> None:
        if not self.context.is_main:
            return
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=LOG_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for row in self.history:
            writer.writerow({key: "" if row[key] is None else row[key] for key in LOG_COLUMNS})
        atomic_write_text(self.run_dir / "log.csv", buffer.getvalue())
        summary = {
            "best_epoch": self.progress.best_epoch,
            "best_val_psnr": self.progress.best_val_psnr,
            "epochs": [{key: _json_number(value) for key, value in row.items()} for row in self.history],
        }
        atomic_write_text(self.run_dir / "history.json", json.dumps(summary, indent=2) + "\n")


def _json_number(value: Any) -> Any:
    """JSON has no infinity: a perfect PSNR (``inf``) is written as the string ``"inf"``."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value
