"""Data for scanner harmonisation: simulated subjects, paired/unpaired scanner folders, subject splits.

Scanner folders hold 2-D slices or 3-D volumes (NIfTI, DICOM, NumPy, TIFF; float or 16-bit,
never squeezed to 8 bit): :func:`read_folder_slices` turns volumes into axial slices.
Folder layout written by :func:`write_simulated_dataset` (float32 NIfTI slices)::

    ROOT/manifest.json                       # subjects per split, scanner records, seed
    ROOT/paired/{train,val,test}/{a,b}/subjNNN_sliceMMM.nii.gz   # same anatomy on both scanners
    ROOT/unpaired/train/a/...                # scanner a: the first half of the training subjects
    ROOT/unpaired/train/b/...                # scanner b: the other half (no subject on both)
    ROOT/clean/{train,val,test}/...          # the anatomy before any scanner (for tissue classes)

File names start with the subject identifier (``subjNNN_``, or for IXI ``IXI012-HH-...``):
:func:`subject_of` reads it, and :func:`split_subjects` assigns *subjects*, never slices, to
splits, so no anatomy leaks from training into evaluation.

Simulated subjects come from one real brain (Colin27, 1 mm, 1.5 T average of 27 scans): each
subject ``k`` is that brain under a seeded smooth deformation (rotation, anisotropic scale,
shift and a low-frequency displacement field), a seeded intensity jitter, and its own choice of
axial slices; the slices are then imaged by both simulated scanners
(:class:`~medrestore.physics.degradations.ScannerAppearance`).
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as functional
import torch.utils.data

from medrestore.core.errors import ConfigError, InputError
from medrestore.core.files import atomic_write_text
from medrestore.core.image import Image
from medrestore.core.random import make_generator
from medrestore.data.paired import list_image_files
from medrestore.io import read_image, write_image
from medrestore.physics.degradations import ScannerAppearance
from medrestore.physics.scanner import robust_level

SPLITS = ("train", "val", "test")
SCANNERS = ("a", "b")
_SUBJECT_PATTERN = re.compile(r"^(subj\d+|IXI\d+)", re.IGNORECASE)


def subject_of(path: str | Path) -> str:
    """Subject identifier at the start of a file name (``subj003_slice040.nii.gz`` → ``subj003``).

    Names without a recognised prefix are their own subject (the stem up to the first ``_``).
    """
    name = Path(path).name
    match = _SUBJECT_PATTERN.match(name)
    return match.group(1) if match else name.split("_")[0].split(".")[0]


def split_subjects(
    subjects: Sequence[str], fractions: tuple[float, float, float], seed: int
) -> dict[str, tuple[str, ...]]:
    """Assign sorted unique ``subjects`` to ``train``/``val``/``test`` by a seeded permutation.

    ``fractions`` sum to 1; every split with a positive fraction gets at least one subject.
    """
    unique = sorted(set(subjects))
    if len(fractions) != 3 or abs(sum(fractions) - 1.0) > 1e-6 or min(fractions) < 0:
        raise ConfigError(f"fractions must be three non-negative numbers summing to 1, got {fractions}")
    order = np.random.default_rng(seed).permutation(len(unique))
    counts = [int(round(f * len(unique))) for f in fractions[1:]]
    counts = [max(c, 1) if f > 0 else 0 for c, f in zip(counts, fractions[1:])]
    n_val, n_test = counts
    if n_val + n_test >= len(unique):
        raise ConfigError(f"{len(unique)} subjects are too few for fractions {fractions}")
    shuffled = [unique[i] for i in order]
    return {
        "test": tuple(sorted(shuffled[:n_test])),
        "val": tuple(sorted(shuffled[n_test : n_test + n_val])),
        "train": tuple(sorted(shuffled[n_test + n_val :])),
    }


# -- clean anatomy -------------------------------------------------------------------------------


def axial_slices(volume: torch.Tensor, size: int, first: int, last: int) -> torch.Tensor:
    """Axial slices ``first..last`` of a RAS+ volume ``(X, Y, Z)`` → ``(N, size, size)`` display slices.

    Each slice is turned to display orientation (rows anterior → posterior, columns along X),
    zero-padded to a square and resampled (area-weighted) to ``size × size``.
    """
    slices = volume[:, :, first : last + 1].permute(2, 1, 0).flip(1)
    height, width = slices.shape[-2:]
    side = max(height, width)
    pad_rows, pad_cols = side - height, side - width
    padded = functional.pad(slices, (pad_cols // 2, pad_cols - pad_cols // 2, pad_rows // 2, pad_rows - pad_rows // 2))
    return functional.interpolate(padded[:, None], size=(size, size), mode="area")[:, 0].contiguous()


@dataclasses.dataclass(frozen=True)
class SubjectVariation:
    """Seeded anatomy of one simulated subject (applied identically to all its slices).

    Attributes:
        rotation_deg: in-plane rotation. scale: ``(row, column)`` scale factors.
        shift: ``(row, column)`` shift as a fraction of the half-size.
        warp_amplitude: peak of the smooth random displacement, fraction of the half-size.
        intensity: global intensity factor of the anatomy (subject-to-subject T1 variation).
        first_slice: offset of the subject's slice range within the allowed axial range.
    """

    rotation_deg: float
    scale: tuple[float, float]
    shift: tuple[float, float]
    warp_amplitude: float
    intensity: float
    first_slice: int

    @classmethod
    def sample(cls, seed: int, slice_offsets: int) -> SubjectVariation:
        """Draw one subject: rotation ±10°, scale 0.9–1.1 per axis, shift ±5 %, warp ≤ 3 %, intensity ±5 %."""
        rng = np.random.default_rng(seed)
        return cls(
            rotation_deg=float(rng.uniform(-10, 10)),
            scale=(float(rng.uniform(0.9, 1.1)), float(rng.uniform(0.9, 1.1))),
            shift=(float(rng.uniform(-0.05, 0.05)), float(rng.uniform(-0.05, 0.05))),
            warp_amplitude=float(rng.uniform(0.0, 0.03)),
            intensity=float(rng.uniform(0.95, 1.05)),
            first_slice=int(rng.integers(0, max(1, slice_offsets))),
        )


def deform_slices(slices: torch.Tensor, variation: SubjectVariation, seed: int) -> torch.Tensor:
    """Warp ``(N, H, W)`` slices by ``variation`` (bilinear, zeros outside); returns ``(N, H, W)``."""
    count, height, width = slices.shape
    angle = math.radians(variation.rotation_deg)
    cos, sin = math.cos(angle), math.sin(angle)
    theta = torch.tensor(
        [[cos / variation.scale[1], -sin / variation.scale[1], variation.shift[1]],
         [sin / variation.scale[0], cos / variation.scale[0], variation.shift[0]]],
        dtype=slices.dtype,
    )
    grid = functional.affine_grid(theta[None].expand(count, 2, 3), [count, 1, height, width], align_corners=False)
    generator = make_generator(seed)
    coarse = torch.randn(1, 2, 4, 4, generator=generator, dtype=slices.dtype)
    warp = functional.interpolate(coarse, size=(height, width), mode="bicubic", align_corners=True)
    warp = warp / warp.abs().amax().clamp_min(1e-12) * variation.warp_amplitude
    grid = grid + warp.permute(0, 2, 3, 1)
    warped = functional.grid_sample(slices[:, None], grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return (warped[:, 0] * variation.intensity).contiguous()


def load_colin27(path: str | Path) -> torch.Tensor:
    """The Colin27 volume ``(X, Y, Z)`` scaled so the brain's 99.5th percentile is 1 (float32)."""
    volume = read_image(path).data
    if volume.ndim != 3:
        raise InputError(path, f"expected a 3-D brain volume, got shape {tuple(volume.shape)}")
    return volume / robust_level(volume, samples=1_000_000)


@dataclasses.dataclass(frozen=True)
class SimulationPlan:
    """What :func:`write_simulated_dataset` writes.

    Attributes:
        subjects: number of simulated subjects. slices_per_subject: axial slices each.
        size: slice side in pixels. slice_range: axial (Z) indices the slices are drawn from.
        fractions: train/val/test fractions of subjects. seed: everything derives from it.
    """

    subjects: int = 12
    slices_per_subject: int = 8
    size: int = 128
    slice_range: tuple[int, int] = (60, 110)
    fractions: tuple[float, float, float] = (0.6, 0.15, 0.25)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.subjects < 3 or self.slices_per_subject < 1 or self.size < 16:
            raise ConfigError(f"need >= 3 subjects, >= 1 slice and size >= 16, got {self}")
        low, high = self.slice_range
        if not 0 <= low < high or high - low + 1 < self.slices_per_subject:
            raise ConfigError(f"slice_range {self.slice_range} cannot hold {self.slices_per_subject} slices")


def subject_slices(volume: torch.Tensor, plan: SimulationPlan, subject: int) -> torch.Tensor:
    """Clean display slices ``(slices_per_subject, size, size)`` of simulated subject ``subject``."""
    low, high = plan.slice_range
    span = high - low + 1
    variation = SubjectVariation.sample(plan.seed * 1000 + subject, span - plan.slices_per_subject + 1)
    step = max(1, (span - variation.first_slice) // plan.slices_per_subject)
    first = low + variation.first_slice
    indices = [min(high, first + i * step) for i in range(plan.slices_per_subject)]
    slices = torch.cat([axial_slices(volume, plan.size, index, index) for index in indices])
    return deform_slices(slices, variation, plan.seed * 1000 + subject)


def _write_slice(data: torch.Tensor, path: Path) -> None:
    write_image(Image.from_array(data.numpy().astype(np.float32), spacing=(1.0, 1.0), modality="mri"), path)


def write_simulated_dataset(colin27_path: str | Path, root: str | Path, plan: SimulationPlan = SimulationPlan()) -> dict:
    """Simulate subjects, image them on scanners a and b, write the folder layout; return the manifest.

    Pairs share the clean anatomy but draw independent noise. Unpaired training folders hold
    disjoint subjects (first half of the sorted training subjects on ``a``, the rest on ``b``).
    """
    root = Path(root)
    volume = load_colin27(colin27_path)
    names = [f"subj{k:03d}" for k in range(plan.subjects)]
    splits = split_subjects(names, plan.fractions, plan.seed)
    scanners = {name: ScannerAppearance(scanner=name) for name in SCANNERS}
    train_sorted = list(splits["train"])
    unpaired_owner = {s: ("a" if i < len(train_sorted) // 2 else "b") for i, s in enumerate(train_sorted)}
    for split, members in splits.items():
        for subject in members:
            k = int(subject[4:])
            clean = subject_slices(volume, plan, k)
            for index, clean_slice in enumerate(clean):
                stem = f"{subject}_slice{index:03d}.nii.gz"
                _write_slice(clean_slice, root / "clean" / split / stem)
                for scanner_name, transform in scanners.items():
                    seed = plan.seed * 1_000_003 + k * 1009 + index * 2 + SCANNERS.index(scanner_name)
                    image = transform(clean_slice[None], make_generator(seed))[0]
                    _write_slice(image, root / "paired" / split / scanner_name / stem)
                    if split == "train" and unpaired_owner[subject] == scanner_name:
                        _write_slice(image, root / "unpaired" / "train" / scanner_name / stem)
    manifest = {
        "plan": dataclasses.asdict(plan),
        "source": str(colin27_path),
        "splits": {split: list(members) for split, members in splits.items()},
        "unpaired": {name: sorted(s for s, owner in unpaired_owner.items() if owner == name) for name in SCANNERS},
        "scanners": {name: transform.record() for name, transform in scanners.items()},
    }
    atomic_write_text(root / "manifest.json", json.dumps(manifest, indent=2) + "\n")
    return manifest


# -- reading scanner folders --------------------------------------------------------------------


def display_slices(image: Image) -> torch.Tensor:
    """The slices of a 2-D slice or 3-D volume :class:`Image` as ``(k, H, W)`` in display orientation.

    A 2-D image is one slice as stored; a 3-D (RAS+) volume gives its axial slices (third axis),
    each turned to display orientation (rows anterior → posterior) as the simulator does, and so
    is one axial slice of a volume read as 2-D (``metadata["squeezed_axis"] == 2``).
    :func:`from_display_slices` turns them back.
    """
    if image.spatial_ndim == 3:
        return image.data.permute(2, 1, 0).flip(1).contiguous()
    if image.metadata.get("squeezed_axis") == 2:
        return image.data.T.flip(0)[None].contiguous()
    return image.data[None]


def from_display_slices(image: Image, slices: torch.Tensor) -> torch.Tensor:
    """``(k, H, W)`` slices from :func:`display_slices` back in ``image``'s layout."""
    if image.spatial_ndim == 3:
        return slices.flip(1).permute(2, 1, 0).contiguous()
    if image.metadata.get("squeezed_axis") == 2:
        return slices[0].flip(0).T.contiguous()
    return slices[0]


def read_slices(path: str | Path) -> torch.Tensor:
    """The slices of one file as ``(k, H, W)`` float32 in display orientation (:func:`display_slices`).

    Multi-frame images are refused, naming the file.
    """
    image = read_image(path)
    if image.data.ndim != image.spatial_ndim:
        raise InputError(path, f"expected a 2-D slice or a 3-D volume, got shape {tuple(image.data.shape)}")
    return display_slices(image)


def read_folder_slices(folder: str | Path, pattern: str = "*") -> tuple[tuple[str, ...], torch.Tensor]:
    """All slices of a folder's images: ``(names, (N, H, W) float32)``; slices must share one shape.

    A 2-D file contributes its name; a volume contributes ``<name>:<z>`` for each axial slice.
    """
    paths = list_image_files(folder, pattern)
    if not paths:
        raise InputError(folder, "holds no image files")
    names: list[str] = []
    slices: list[torch.Tensor] = []
    shape: tuple[int, ...] | None = None
    for path in paths:
        stack = read_slices(path)
        if shape is None:
            shape = tuple(stack.shape[1:])
        if tuple(stack.shape[1:]) != shape:
            raise InputError(path, f"slice shape {tuple(stack.shape[1:])} differs from {shape} of {paths[0].name}")
        names.extend([path.name] if len(stack) == 1 else [f"{path.name}:{z:03d}" for z in range(len(stack))])
        slices.append(stack)
    return tuple(names), torch.cat(slices)


def read_paired_folders(folder_a: str | Path, folder_b: str | Path) -> tuple[tuple[str, ...], torch.Tensor, torch.Tensor]:
    """Slices present in both folders (matched by name): ``(names, a (N, H, W), b (N, H, W))``."""
    names_a, slices_a = read_folder_slices(folder_a)
    names_b, slices_b = read_folder_slices(folder_b)
    common = sorted(set(names_a) & set(names_b))
    if not common:
        raise InputError(folder_b, f"shares no file names with {folder_a}")
    index_a = {n: i for i, n in enumerate(names_a)}
    index_b = {n: i for i, n in enumerate(names_b)}
    return (
        tuple(common),
        slices_a[[index_a[n] for n in common]],
        slices_b[[index_b[n] for n in common]],
    )


class UnpairedSlices(torch.utils.data.Dataset):
    """Unpaired ``(a, b)`` slices for CycleGAN: item ``i`` of epoch ``e`` is a pure function of ``(seed, e, i)``.

    Item ``i`` is slice ``i mod N_a`` of ``a`` with a seeded random slice of ``b``, each
    ``(1, H, W)`` float32 and optionally flipped left-right (the brain is nearly symmetric;
    anterior-posterior is never flipped, so position-dependent scanner effects stay put).
    """

    def __init__(self, slices_a: torch.Tensor, slices_b: torch.Tensor, seed: int, flip: bool = True) -> None:
        if slices_a.ndim != 3 or slices_b.ndim != 3 or slices_a.shape[1:] != slices_b.shape[1:]:
            raise InputError(None, f"unpaired slices must be (N, H, W) of one size, got {tuple(slices_a.shape)} and {tuple(slices_b.shape)}")
        self.slices_a, self.slices_b, self.seed, self.flip = slices_a, slices_b, seed, flip
        self.epoch = 0

    def __len__(self) -> int:
        return max(len(self.slices_a), len(self.slices_b))

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        generator = make_generator(self.seed * 1_000_003 + self.epoch * 10_007 + index)
        a = self.slices_a[index % len(self.slices_a)]
        b = self.slices_b[int(torch.randint(len(self.slices_b), (), generator=generator))]
        flips = torch.rand(2, generator=generator)
        if self.flip and flips[0] < 0.5:
            a = a.flip(-1)
        if self.flip and flips[1] < 0.5:
            b = b.flip(-1)
        return a[None].contiguous(), b[None].contiguous()
