"""Scanner harmonisation workflows: harmonise a file, simulate a scanner pair, organise IXI.

:func:`harmonize_file` reads a 2-D slice or a 3-D volume, maps it to the other scanner's
appearance with a trained harmoniser and writes it atomically with the same geometry (float32
for NIfTI/NumPy/TIFF, 16-bit integers with a rescale slope for DICOM: never 8 bit) and a
sidecar ``OUT.json``. A 2-D slice is used as stored (rows anterior → posterior, the simulator's
display orientation); a 3-D RAS+ volume is harmonised axial slice by axial slice, each turned
to display orientation and back (as :class:`~medrestore.physics.degradations.ScannerAppearance`
does).

``model`` is one of:

* a zoo name: ``cyclegan-sim`` picks ``cyclegan-sim-a2b`` or ``cyclegan-sim-b2a`` by direction
  (or the full name of one direction's card); a fitted harmoniser's card such as
  ``coupled-dictionary-sim`` serves both directions. When the card records the training data's
  ``intensity_reference`` per scanner (:func:`~medrestore.physics.scanner.robust_level`), the
  input is divided by ``robust_level(input) / reference[source]`` before harmonisation and
  multiplied back after, so images in any intensity unit (raw scanner values) work;
* a harmoniser file (``harmonizer.pt`` of ``medrestore train`` with a ``method:`` config), a
  CycleGAN checkpoint (``last.pt``), or a run folder holding ``harmonizer.pt``;
* a paired network's training checkpoint (``best.pt`` of ``medrestore train`` on paired
  scanner folders, e.g. ``configs/harmonize-unet-sim.yaml``), used for the direction asked.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

import medrestore
from medrestore.core.cache import cached_in_run
from medrestore.core.errors import ConfigError, InputError, MedrestoreError
from medrestore.core.random import make_generator
from medrestore.core.files import guard_output, sha256_file, write_record
from medrestore.core.image import Image
from medrestore.data.harmonize import SimulationPlan, display_slices, from_display_slices, write_simulated_dataset
from medrestore.data.ixi import IXI_ARCHIVES, IXI_BASE_URL, download_archives, organise_ixi
from medrestore.io import read_image, write_image
from medrestore.io.values import value_changes
from medrestore.inference import Predictor
from medrestore.physics.scanner import match_noise, robust_level
from medrestore.models.harmonizers import Harmonizer, NetworkHarmonizer, check_direction, check_slices
from medrestore.training import load_checkpoint
from medrestore.training.harmonize import load_harmonizer
from medrestore.zoo import ModelCard, find_in_zoo, is_harmonizer_card, list_cards, load_pretrained, load_pretrained_harmonizer

__all__ = [
    "IXI_ARCHIVES",
    "IXI_BASE_URL",
    "SimulationPlan",
    "harmonize_file",
    "harmonize_image",
    "harmonize_in_units",
    "harmonize_slices",
    "organise_ixi_archives",
    "resolve_harmonizer",
    "simulate_scanner_pair",
]


def _zoo_names() -> set[str]:
    return {card.name for card in list_cards()}


@cached_in_run
def resolve_harmonizer(model: str, direction: str) -> tuple[Harmonizer, str]:
    """The harmoniser ``model`` names (zoo name or path) for ``direction`` and a label for records.

    Raises:
        MedrestoreError: an unknown name, or a zoo model that is not a harmoniser.
        InputError: an unreadable harmoniser file.
    """
    direction = check_direction(direction)
    names = _zoo_names()
    for candidate in (f"{model}-{direction}", model):
        if candidate in names:
            harmonizer, card = _zoo_harmonizer(candidate, direction)
            reference = card.training.get("intensity_reference")
            if isinstance(reference, Mapping):
                harmonizer.intensity_reference = {str(k): float(v) for k, v in reference.items()}  # type: ignore[attr-defined]
            return harmonizer, f"zoo:{candidate}"
    path = Path(model)
    if path.is_dir():
        path = path / "harmonizer.pt"
    if not path.is_file():
        raise MedrestoreError(
            f"{model!r} is neither a zoo harmoniser ({', '.join(zoo_harmonizer_names()) or 'none'}) "
            "nor a harmoniser file or run folder"
        )
    if _is_image_to_image_checkpoint(path):
        return PredictorHarmonizer(Predictor.from_checkpoint(path, device="cpu"), direction), str(path)
    return load_harmonizer(path), str(path)


def _zoo_harmonizer(name: str, direction: str) -> tuple[Harmonizer, ModelCard]:
    """Zoo model ``name`` as a harmoniser for ``direction``: a fitted harmoniser (both directions) or one direction's network."""
    if is_harmonizer_card(find_in_zoo(name).card):
        return load_pretrained_harmonizer(name)
    network, card = load_pretrained(name)
    if card.task != "harmonize":
        raise MedrestoreError(f"zoo model {name!r} is a {card.task} model, not a harmoniser")
    card_direction = str(card.training.get("direction", direction))
    if card_direction != direction:
        raise MedrestoreError(f"zoo model {name!r} maps {card_direction}, not {direction}")
    return NetworkHarmonizer(name, {direction: network}, float(card.normalisation.get("scale", 1.0))), card


def _is_image_to_image_checkpoint(path: Path) -> bool:
    """A ``medrestore train`` checkpoint of a paired image-to-image network (not a CycleGAN)."""
    if path.name == "harmonizer.pt":
        return False
    try:
        payload = load_checkpoint(path)
    except InputError:
        return False
    return str(payload["model"].get("name")) != "cyclegan"


class PredictorHarmonizer(Harmonizer):
    """A paired network trained by ``medrestore train`` (e.g. a U-Net from scanner b to a) for one direction.

    The checkpoint does not say which way it maps: it is used for the direction it is asked for.
    """

    name = "unet-paired"
    paired = True

    def __init__(self, predictor: Predictor, direction: str) -> None:
        self.predictor = predictor
        self.direction = check_direction(direction)
        self.config = {"direction": self.direction}

    def fit(self, slices_a: torch.Tensor, slices_b: torch.Tensor, seed: int = 0) -> dict[str, float]:
        raise MedrestoreError("unet-paired is trained with `medrestore train` (paired-folders layout)")

    def harmonize(self, slices: torch.Tensor, direction: str) -> torch.Tensor:
        if check_direction(direction) != self.direction:
            raise MedrestoreError(f"this paired network maps {self.direction}, not {direction}")
        return self.predictor.predict(check_slices(slices)[:, None])[:, 0]

    def state_dict(self) -> dict[str, torch.Tensor]:
        return dict(self.predictor.model.state_dict())

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        self.predictor.model.load_state_dict(state)


def harmonize_on_grid(slices: torch.Tensor, harmonizer: Harmonizer, direction: str, size: int) -> torch.Tensor:
    """Harmonise on the model's training grid and apply the change at the slices' own resolution.

    Each ``(H, W)`` slice is zero-padded to a square and resampled (area) to ``size × size`` —
    the grid of :func:`~medrestore.data.harmonize.axial_slices` — giving ``x̄``; the correction
    ``H(x̄) − x̄`` is resampled back (bilinear) and added: ``y = x + up(H(x̄) − x̄)``. Appearance
    changes coarser than the grid (contrast, bias, local intensity) are applied; the input's
    finer detail is kept.
    """
    if size < 8:
        raise ConfigError(f"grid size must be at least 8, got {size}")
    count, height, width = slices.shape
    side = max(height, width)
    top, left = (side - height) // 2, (side - width) // 2
    padded = torch.nn.functional.pad(slices, (left, side - width - left, top, side - height - top))
    coarse = torch.nn.functional.interpolate(padded[:, None], size=(size, size), mode="area")[:, 0]
    correction = harmonizer.harmonize(coarse, direction) - coarse
    fine = torch.nn.functional.interpolate(correction[:, None], size=(side, side), mode="bilinear", align_corners=False)[:, 0]
    return slices + fine[:, top : top + height, left : left + width]


def harmonize_slices(
    slices: torch.Tensor,
    harmonizer: Harmonizer,
    direction: str,
    noise_level: float | None = None,
    seed: int = 0,
    grid: int | None = None,
) -> torch.Tensor:
    """``(N, H, W)`` → harmonised ``(N, H, W)``; with ``grid``, through :func:`harmonize_on_grid`; with
    ``noise_level``, white Rician noise is then added up to that relative level
    (:func:`~medrestore.physics.scanner.match_noise`, seeded by ``seed``)."""
    output = harmonizer.harmonize(slices, direction) if grid is None else harmonize_on_grid(slices, harmonizer, direction, grid)
    if noise_level is None:
        return output
    if not noise_level >= 0:
        raise ConfigError(f"noise level must be >= 0, got {noise_level}")
    return match_noise(output, float(noise_level), make_generator(seed))


def harmonize_in_units(slices: torch.Tensor, harmonizer: Harmonizer, direction: str, grid: int | None = None) -> torch.Tensor:
    """``(N, H, W)`` slices in any intensity unit → harmonised (:func:`harmonize_slices`), in the same unit.

    When the harmoniser carries its training data's ``intensity_reference`` (zoo cards), the stack
    is divided by ``robust_level(slices) / reference[source]`` first and multiplied back after, as
    :func:`harmonize_image` does for one image.
    """
    reference = getattr(harmonizer, "intensity_reference", None)
    factor = 1.0 if reference is None else robust_level(slices) / reference[check_direction(direction)[0]]
    return harmonize_slices(slices / factor, harmonizer, direction, grid=grid) * factor


def harmonize_image(
    image: Image,
    harmonizer: Harmonizer,
    direction: str,
    source: str | Path | None = None,
    noise_level: float | None = None,
    seed: int = 0,
    grid: int | None = None,
) -> Image:
    """Harmonise a 2-D slice or 3-D volume :class:`Image` (see the module docstring); geometry kept."""
    data = image.data.float()
    if data.ndim != image.spatial_ndim:
        raise InputError(source, f"harmonisation takes one 2-D slice or 3-D volume, got shape {tuple(data.shape)}")
    if not bool(torch.isfinite(data).all()):
        raise InputError(source, "holds NaN or infinite values")
    reference = getattr(harmonizer, "intensity_reference", None)
    if reference is not None:  # bring the input to the training data's intensity unit, and back after
        factor = robust_level(data) / reference[check_direction(direction)[0]]
        rescaled = image.with_data(data / factor)
        output = harmonize_image(rescaled, _Unscaled(harmonizer), direction, source, noise_level, seed, grid)
        return output.with_data(output.data * factor)
    slices = display_slices(image).float()  # turned as the training slices are
    output = harmonize_slices(slices, harmonizer, direction, noise_level, seed, grid)
    return image.with_data(from_display_slices(image, output))


class _Unscaled(Harmonizer):
    """``harmonizer`` without its intensity reference (the input is already rescaled)."""

    def __init__(self, harmonizer: Harmonizer) -> None:
        self.inner = harmonizer
        self.name = harmonizer.name  # type: ignore[misc]
        self.paired = harmonizer.paired  # type: ignore[misc]
        self.config = harmonizer.config

    def fit(self, slices_a: torch.Tensor, slices_b: torch.Tensor, seed: int = 0) -> dict[str, float]:
        return self.inner.fit(slices_a, slices_b, seed)

    def harmonize(self, slices: torch.Tensor, direction: str) -> torch.Tensor:
        return self.inner.harmonize(slices, direction)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.inner.state_dict()

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        self.inner.load_state_dict(state)


def harmonize_file(
    input_path: str | Path,
    output_path: str | Path,
    model: str,
    direction: str = "b2a",
    noise_level: float | None = None,
    seed: int = 0,
    grid: int | None = None,
    nonfinite: str = "refuse",
) -> dict[str, Any]:
    """Harmonise ``input_path`` into ``output_path`` (+ ``OUT.json``); returns the sidecar record.

    ``nonfinite`` is the reader's NaN/±Inf policy (``"refuse"`` or ``"zero"``, recorded in the
    sidecar as ``nonfinite_replaced`` when values were replaced).

    ``noise_level`` (relative to the brain's robust maximum, e.g. the target scanner's level in
    the model card) adds seeded white Rician noise after harmonisation, so the output also has the
    target scanner's noise level. ``grid`` (e.g. 128 for the ``cyclegan-sim`` models, whose card
    records it) harmonises on that square grid and applies the change at the input's resolution
    (:func:`harmonize_on_grid`), for slices of another size or pixel spacing than the training data.
    """
    input_path, output_path = Path(input_path), Path(output_path)
    guard_output(output_path, [input_path, model], sidecar=True)
    harmonizer, label = resolve_harmonizer(model, direction)
    image = read_image(input_path, nonfinite=nonfinite)
    start = time.perf_counter()
    harmonized = harmonize_image(image, harmonizer, direction, input_path, noise_level, seed, grid)
    seconds = time.perf_counter() - start
    written = write_image(harmonized.with_metadata(derivation="Restored"), output_path)  # float32 (NIfTI, NumPy, TIFF) or 16-bit + rescale (DICOM)
    record = {
        "harmonization": {"model": label, "method": harmonizer.name, "direction": direction, "noise_level": noise_level, "seed": seed, "grid": grid},
        "input": str(input_path),
        "input_sha256": sha256_file(input_path) if input_path.is_file() else None,
        "input_shape": list(image.shape),
        "output": str(written),
        "seconds": round(seconds, 3),
        **value_changes(image),
        "medrestore_version": medrestore.__version__,
    }
    write_record(written, record)
    return record


def simulate_scanner_pair(colin27_path: str | Path, output_dir: str | Path, plan: SimulationPlan = SimulationPlan()) -> dict:
    """Write the simulated paired/unpaired scanner dataset (:func:`medrestore.data.harmonize.write_simulated_dataset`)."""
    return write_simulated_dataset(colin27_path, output_dir, plan)


def organise_ixi_archives(
    archives_dir: str | Path, output_dir: str | Path, download: bool = False, base_url: str = IXI_BASE_URL
) -> dict:
    """Sort the IXI archives in ``archives_dir`` (downloading :data:`IXI_ARCHIVES` there first when
    ``download``) into ``output_dir/1.5T`` and ``output_dir/3T``; returns the manifest."""
    archives_dir = Path(archives_dir)
    if download:
        download_archives(IXI_ARCHIVES, archives_dir, base_url)
    archives = sorted(archives_dir.glob("IXI*.tar")) if archives_dir.is_dir() else []
    if not archives:
        raise InputError(archives_dir, "holds no IXI*.tar archives (pass --download to fetch them)")
    return organise_ixi(archives, output_dir)


def zoo_harmonizer_names() -> list[str]:
    """Zoo cards whose task is ``harmonize``."""
    return sorted(card.name for card in list_cards() if card.task == "harmonize")
