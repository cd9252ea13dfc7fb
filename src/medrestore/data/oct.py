"""OCT data: groups of co-registered noisy B-scans with their clean average, as training pairs.

Two folder layouts are read:

* **Duke/Bioptigen** (Fang et al., "Fast acquisition and reconstruction of optical coherence
  tomography images via sparse representation", IEEE TMI 32(11), 2013): one folder per
  subject, ``N/test.tif`` (the noisy B-scan), ``N/average.tif`` (the registered multi-frame
  average, the clean target) and ``N/1.tif`` … ``N/4.tif`` (neighbouring noisy frames).
  Suggested split: subjects 1–8 train, 9–12 validate (:data:`DUKE_TRAIN_SUBJECTS`,
  :data:`DUKE_VALIDATION_SUBJECTS`).
* **noisy/ + clean/ folders**: files with matching names. A file may be a multi-page TIFF: a
  noisy stack of ``P`` pages with a one-page clean file is ``P`` repeated frames of one
  location and their average (one group); a noisy and a clean stack of ``P`` pages each are
  ``P`` separate pairs (one group per page).

Every frame is a :class:`FrameGroup` row ``(H, W)`` float32 **on the 8-bit scale 0–255**:
8-bit files are kept as they are and other files are mapped by :func:`eight_bit_scale` (16-bit
full range → 0–255), so one model serves 8- and 16-bit scans.

:class:`OCTPairs` turns groups into the ``(input, target)`` pairs of
:class:`~medrestore.data.paired.PairedPatchDataset`:

* ``target="average"`` — every selected frame → the average (single-frame models), or the
  frame stacked with its neighbours as channels → the average (``stack > 1``, multi-frame models);
* ``target="noise2noise"`` — every ordered pair of distinct frames ``(f, g)``: frame ``f`` → frame
  ``g``, no average needed (Lehtinen et al., "Noise2Noise: Learning image restoration without
  clean data", ICML 2018). Independent speckle in ``f`` and ``g`` makes ``E[g | f]`` the clean
  signal, so minimising ``‖net(f) − g‖²`` learns the denoiser.

Registration: the frames of a Duke subject are *not* all aligned with its average. Matching
Gaussian-smoothed frames to the average finds axial shifts of up to 5 pixels (subject 4, frames
1, 2, 4) and lateral ones of up to 12 (subjects 4, 5, 6), and such pairs teach a network to blur. With
``register=True`` every training pair is aligned by an integer translation
(:func:`estimate_shift`, :func:`shift_image`): the target and the stacked neighbours are moved onto
the grid of the frame being restored, which itself is never resampled (integer shifts do not
smooth the speckle). Shifts are estimated against the average where a group has one (it is far
less noisy than a frame). Validation pairs keep their average untouched (that is the score);
only the neighbours of a stack are aligned to the frame, from the noisy frames alone, as at
inference.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import scipy.ndimage
import torch

from medrestore.core.errors import ConfigError, InputError
from medrestore.core.image import Image
from medrestore.data.paired import ImagePairSource, list_image_files
from medrestore.io import read_image

DUKE_NOISY_FRAMES = ("test", "1", "2", "3", "4")
"""Noisy frames of a Duke/Bioptigen subject in order: the reference frame first."""
DUKE_AVERAGE = "average"
DUKE_TRAIN_SUBJECTS = ("1", "2", "3", "4", "5", "6", "7", "8")
DUKE_VALIDATION_SUBJECTS = ("9", "10", "11", "12")
IMAGE_SUFFIXES = (".tif", ".tiff", ".png")
EIGHT_BIT_MAX = 255.0


# -- intensities and files --------------------------------------------------------------------
def eight_bit_scale(dtype: str, maximum: float) -> float:
    """Factor ``s`` mapping stored values onto the 8-bit scale, ``x₂₅₅ = s · x``.

    ``uint8`` → 1; other integer types → ``255 / iinfo(dtype).max`` (16-bit full range to
    0–255); floats → 255 when the image's ``maximum`` ≤ 1 (a [0, 1] image), else 1 (already
    on the 0–255 scale).
    """
    kind = np.dtype(dtype)
    if kind == np.uint8:
        return 1.0
    if kind.kind in "iu":
        return EIGHT_BIT_MAX / float(np.iinfo(kind).max)
    if maximum <= 1.0:
        return EIGHT_BIT_MAX
    return 1.0 if maximum <= EIGHT_BIT_MAX else EIGHT_BIT_MAX / maximum


def bscan_stack(image: Image, path: str | Path | None) -> torch.Tensor:
    """Pixel data of ``image`` as B-scans ``(B, H, W)`` float32, unscaled.

    A 2-D image is one B-scan; a 3-D image (multi-page TIFF, volume) is a stack along its first
    axis; a trailing frame axis ``(H, W, T)`` of a 2-D image becomes the stack axis.
    """
    data = image.data.to(torch.float32)
    if image.spatial_ndim == 2:
        return data.unsqueeze(0) if data.ndim == 2 else data.movedim(-1, 0).contiguous()
    if data.ndim == 3:
        return data.contiguous()
    raise InputError(path, f"has shape {tuple(data.shape)}: expected a B-scan (H, W) or a stack of B-scans (B, H, W)")


def read_bscans(path: str | Path) -> tuple[torch.Tensor, Image, float]:
    """Read ``path`` as B-scans ``(B, H, W)`` on the 8-bit scale, with the :class:`Image` read and the scale used.

    Returns:
        ``(s · stack, image, s)`` with ``s`` from :func:`eight_bit_scale`; dividing by ``s``
        returns to the file's range.

    Raises:
        InputError: unreadable file or a shape that is not one or several B-scans.
    """
    image = read_image(path, modality="oct")
    stack = bscan_stack(image, path)
    scale = eight_bit_scale(str(image.metadata.get("dtype", "float32")), float(stack.max()))
    return stack * scale, image, scale


def find_image(folder: Path, stem: str) -> Path:
    """The file ``folder/stem`` with a TIFF or PNG suffix (``.tif``, ``.tiff``, ``.png``)."""
    for suffix in IMAGE_SUFFIXES:
        candidate = folder / f"{stem}{suffix}"
        if candidate.is_file():
            return candidate
    raise InputError(folder, f"no {stem}.tif, {stem}.tiff or {stem}.png in this folder")


# -- groups of frames -------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True, eq=False)
class FrameGroup:
    """Noisy B-scans of one location and their clean reference.

    Attributes:
        name: label (the subject folder, or ``file[#page]``).
        frames: ``(F, H, W)`` float32 noisy frames on the 0–255 scale, reference frame first.
        frame_names: one name per frame (``test``, ``1``… for Duke; page numbers otherwise).
        reference: ``(H, W)`` clean average on the same scale, or ``None`` when there is none.
    """

    name: str
    frames: torch.Tensor
    frame_names: tuple[str, ...]
    reference: torch.Tensor | None

    def __post_init__(self) -> None:
        if self.frames.ndim != 3 or len(self.frame_names) != self.frames.shape[0]:
            raise InputError(self.name, f"frames {tuple(self.frames.shape)} do not match the names {self.frame_names}")
        if self.reference is not None and self.reference.shape != self.frames.shape[1:]:
            raise InputError(
                self.name, f"average of shape {tuple(self.reference.shape)} differs from the frames {tuple(self.frames.shape[1:])}"
            )

    def frame_index(self, name: str) -> int:
        """Position of the frame called ``name``."""
        if name not in self.frame_names:
            raise InputError(self.name, f"has no frame {name!r}; frames: {', '.join(self.frame_names)}")
        return self.frame_names.index(name)


def _single_bscan(path: Path) -> torch.Tensor:
    stack, _, _ = read_bscans(path)
    if stack.shape[0] != 1:
        raise InputError(path, f"holds {stack.shape[0]} B-scans; expected one")
    return stack[0]


def has_image(folder: Path, stem: str) -> bool:
    """Whether ``folder/stem`` exists with a TIFF or PNG suffix."""
    return any((folder / f"{stem}{suffix}").is_file() for suffix in IMAGE_SUFFIXES)


def read_duke_subject(folder: str | Path, frames: Sequence[str] = DUKE_NOISY_FRAMES) -> FrameGroup:
    """One Duke/Bioptigen subject folder: ``frames`` (default ``test``, ``1``…``4``) and ``average``.

    The first frame is required; the neighbouring frames after it are read when present.

    Raises:
        InputError: a missing or unreadable first frame or average, or frames of different sizes.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(folder, "subject folder does not exist")
    if not frames:
        raise ConfigError("no frames selected")
    frames = [frames[0], *(name for name in frames[1:] if has_image(folder, name))]
    bscans = [_single_bscan(find_image(folder, name)) for name in frames]
    shapes = {tuple(bscan.shape) for bscan in bscans}
    if len(shapes) != 1:
        raise InputError(folder, f"frames have different sizes {sorted(shapes)}")
    reference = _single_bscan(find_image(folder, DUKE_AVERAGE))
    return FrameGroup(str(folder), torch.stack(bscans), tuple(frames), reference)


def read_duke_subjects(root: str | Path, subjects: Sequence[str], frames: Sequence[str] = DUKE_NOISY_FRAMES) -> list[FrameGroup]:
    """:func:`read_duke_subject` for ``root/<subject>`` of every subject in order."""
    if not subjects:
        raise ConfigError("no subjects selected")
    return [read_duke_subject(Path(root) / subject, frames) for subject in subjects]


def read_folder_pair(noisy_path: Path, clean_path: Path) -> list[FrameGroup]:
    """Groups from a matching noisy/clean file (see the module docstring for stacks)."""
    noisy, _, _ = read_bscans(noisy_path)
    clean, _, _ = read_bscans(clean_path)
    name = str(noisy_path)
    if clean.shape[0] == 1:
        names = tuple(str(page) for page in range(noisy.shape[0]))
        return [FrameGroup(name, noisy, names, clean[0])]
    if clean.shape[0] != noisy.shape[0]:
        raise InputError(clean_path, f"holds {clean.shape[0]} B-scans but {noisy_path} holds {noisy.shape[0]}; expected 1 or as many")
    return [FrameGroup(f"{name}#{page}", noisy[page : page + 1], ("0",), clean[page]) for page in range(noisy.shape[0])]


def read_noisy_clean_folders(root: str | Path, stems: Sequence[str] = ()) -> list[FrameGroup]:
    """Groups from ``root/noisy/*`` and ``root/clean/*`` matched by file name (``stems`` selects files; empty: all)."""
    root = Path(root)
    groups: list[FrameGroup] = []
    for noisy_path in list_image_files(root / "noisy"):
        if stems and noisy_path.stem not in stems:
            continue
        clean_path = root / "clean" / noisy_path.name
        if not clean_path.is_file():
            raise InputError(clean_path, f"missing: no clean file for {noisy_path}")
        groups.extend(read_folder_pair(noisy_path, clean_path))
    if not groups:
        raise InputError(root / "noisy", f"no file matches the selection {list(stems)}")
    return groups


def folder_stems(root: str | Path) -> tuple[str, ...]:
    """Stems of the files in ``root/noisy`` (the subjects of the folder layout)."""
    return tuple(path.stem for path in list_image_files(Path(root) / "noisy"))


def detect_layout(root: str | Path) -> Literal["duke", "folders"]:
    """``folders`` when ``root`` holds ``noisy/`` and ``clean/``, ``duke`` when it holds subject folders."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(root, "OCT data folder does not exist")
    if (root / "noisy").is_dir() and (root / "clean").is_dir():
        return "folders"
    if any((entry / "test.tif").is_file() or (entry / "test.png").is_file() for entry in root.iterdir() if entry.is_dir()):
        return "duke"
    raise InputError(root, "is neither a Duke/Bioptigen folder (subject folders with test.tif) nor a folder with noisy/ and clean/")


# -- registration -----------------------------------------------------------------------------
REGISTRATION_SIGMA = 2.0
"""Gaussian smoothing (pixels) applied before cross-correlation, so speckle does not dominate it."""
MAX_SHIFT = 16
"""Largest translation (pixels, per axis) :func:`estimate_shift` considers."""


def _correlate(first: np.ndarray, second: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``c(d) = Σ_p first(p) · second(p − d)`` for every shift ``d`` (zero-padded FFTs, index ``d mod size``)."""
    return np.fft.irfft2(np.fft.rfft2(first, size) * np.conj(np.fft.rfft2(second, size)), size)


def estimate_shift(
    reference: torch.Tensor, moving: torch.Tensor, sigma: float = REGISTRATION_SIGMA, max_shift: int = MAX_SHIFT
) -> tuple[int, int]:
    """Integer ``(rows, columns)`` translation, each within ``±max_shift``, that aligns ``moving`` with ``reference``.

    Both ``(H, W)`` images are Gaussian-smoothed (σ = ``sigma``, so speckle does not dominate)
    and made zero-mean (``a``, ``b``); the shift minimises their mean squared difference over
    the overlap::

        e(d) = Σ_{p ∈ overlap(d)} (a(p) − b(p − d))² / |overlap(d)|

    with the three sums (``a²``, ``b²``, ``a·b`` over the overlap) computed by zero-padded FFT
    correlations. ``shift_image(moving, estimate_shift(reference, moving))`` is aligned with
    ``reference``. Axial shifts are well determined by the retinal layers; lateral ones only
    where the layers bend or vessels cast shadows, so they are less certain.
    """
    if reference.shape != moving.shape or reference.ndim != 2:
        raise InputError(None, f"registration needs two images of one (H, W) shape, got {tuple(reference.shape)} and {tuple(moving.shape)}")
    height, width = reference.shape
    smooth = [scipy.ndimage.gaussian_filter(image.double().numpy(), sigma) for image in (reference, moving)]
    first, second = (image - image.mean() for image in smooth)
    size, ones = (2 * height, 2 * width), np.ones((height, width))
    rows = np.arange(-min(max_shift, height - 1), min(max_shift, height - 1) + 1)
    columns = np.arange(-min(max_shift, width - 1), min(max_shift, width - 1) + 1)
    window = np.ix_(rows % size[0], columns % size[1])
    squares = _correlate(first * first, ones, size)[window] + _correlate(ones, second * second, size)[window]
    error = (squares - 2.0 * _correlate(first, second, size)[window]) / np.outer(height - np.abs(rows), width - np.abs(columns))
    row, column = np.unravel_index(int(np.argmin(error)), error.shape)
    return int(rows[row]), int(columns[column])


def shift_image(image: torch.Tensor, shift: tuple[int, int]) -> torch.Tensor:
    """``image`` ``(..., H, W)`` translated by integer ``(rows, columns)``: ``out[i, j] = image[i − rows, j − columns]``.

    Samples from outside the image repeat the nearest edge row/column. No interpolation: the
    values are moved, never blended. Returns a new tensor (the input itself when the shift is zero).
    """
    rows, columns = shift
    if rows == 0 and columns == 0:
        return image
    height, width = image.shape[-2:]
    row_index = (torch.arange(height) - rows).clamp(0, height - 1)
    column_index = (torch.arange(width) - columns).clamp(0, width - 1)
    return image.index_select(-2, row_index).index_select(-1, column_index)


def align_frames(frames: torch.Tensor) -> torch.Tensor:
    """Stack ``(F, H, W)`` with frames 1… moved onto frame 0 (integer shifts from :func:`estimate_shift`).

    Frame 0 is returned unchanged; this is how neighbouring frames are aligned at inference.
    """
    aligned = [frames[0]] + [shift_image(frame, estimate_shift(frames[0], frame)) for frame in frames[1:]]
    return torch.stack(aligned)


# -- configuration ----------------------------------------------------------------------------
OCT_LAYOUTS = ("auto", "duke", "folders")
OCT_TARGETS = ("average", "noise2noise")


@dataclasses.dataclass(frozen=True)
class OCTDataConfig:
    """The ``data.oct`` section of a training configuration (``data.layout: oct``).

    Attributes:
        root: the Duke/Bioptigen folder (subject folders) or a folder with ``noisy/`` and ``clean/``.
        layout: ``duke``, ``folders`` or ``auto`` (detected from ``root``).
        subjects: training subjects (Duke folder names, or file stems); empty: every subject
            that is not a validation subject.
        validation_subjects: validation subjects (never trained on).
        frames: noisy frames used as training inputs, by name (``test``, ``1``… for Duke, page
            numbers for stacks); empty: every frame.
        validation_frames: frames scored in validation; empty: the first (reference) frame only.
        stack: frames per input, stacked as channels: the frame itself first, then its
            neighbours in group order (multi-frame models); 1 for single-frame models.
        target: ``average`` (supervised) or ``noise2noise`` (frame → another frame, ``stack`` 1).
        register: align every training target and stacked neighbour with the frame being
            restored by an integer translation (see the module docstring).
        match_brightness: in training, offset each average so that its mean equals the mean of
            the frame it is paired with, ``t = a + (mean(f) − mean(a))``. The averages of a set
            can differ from all of their own noisy frames by a few grey levels (Duke subject 3:
            −7.8 on 0–255); the offset is not predictable from the frame, so learning it is
            label noise for a model that keeps the input's mean.
        match_contrast: in training, scale each average's contrast about its mean so that every
            eye's averages relate to their noisy frames by one common gain (see
            :func:`tone_gain` and :class:`OCTPairs`). The averages' contrast relative to their own
            frames differs from eye to eye (Duke subjects 1–8: 0.74–1.11 times their mean gain), again not
            predictable from a frame; a network trained on them learns each training eye's gain
            and applies a lookalike's to a new eye.
    """

    root: str
    layout: str = "auto"
    subjects: tuple[str, ...] = ()
    validation_subjects: tuple[str, ...] = ()
    frames: tuple[str, ...] = ()
    validation_frames: tuple[str, ...] = ()
    stack: int = 1
    target: str = "average"
    register: bool = False
    match_brightness: bool = False
    match_contrast: bool = False

    def __post_init__(self) -> None:
        if self.layout not in OCT_LAYOUTS:
            raise ConfigError(f"layout: {self.layout!r} is not one of {', '.join(OCT_LAYOUTS)}")
        if self.target not in OCT_TARGETS:
            raise ConfigError(f"target: {self.target!r} is not one of {', '.join(OCT_TARGETS)}")
        if self.stack < 1:
            raise ConfigError(f"stack: must be >= 1, got {self.stack}")
        if self.target == "noise2noise" and self.stack != 1:
            raise ConfigError("stack: noise2noise pairs single frames; use stack 1")
        overlap = sorted(set(self.subjects) & set(self.validation_subjects))
        if overlap:
            raise ConfigError(f"validation_subjects: {', '.join(overlap)} are also training subjects")

    def resolved(self, base: Path) -> OCTDataConfig:
        """Copy with a relative ``root`` made absolute against ``base``."""
        root = Path(self.root).expanduser()
        return dataclasses.replace(self, root=str(root if root.is_absolute() else (base / root).resolve()))


# -- pairs ------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class PairItem:
    """One ``(input, target)`` pair: frames of group ``group`` stacked as channels → a target.

    Attributes:
        group: index of the :class:`FrameGroup`.
        inputs: frame indices stacked as input channels (the denoised frame first).
        target: frame index of a Noise2Noise target, or ``None`` for the group's average.
    """

    group: int
    inputs: tuple[int, ...]
    target: int | None


def stack_indices(frame: int, count: int, stack: int, where: str) -> tuple[int, ...]:
    """``frame`` followed by the first ``stack − 1`` other frame indices of ``range(count)``."""
    if stack > count:
        raise ConfigError(f"stack: {where} has {count} frames, fewer than the stack of {stack}")
    neighbours = [index for index in range(count) if index != frame]
    return (frame, *neighbours[: stack - 1])


def pair_items(
    groups: Sequence[FrameGroup], frames: Sequence[str], stack: int, target: str, first_only: bool = False
) -> list[PairItem]:
    """The pairs of ``groups`` (``frames`` by name; empty: all, or the first with ``first_only``) in group then frame order.

    ``average``: one pair per selected frame, stacked with its neighbours when ``stack > 1``.
    ``noise2noise``: one pair per ordered couple of distinct selected frames.
    """
    items: list[PairItem] = []
    for group_index, group in enumerate(groups):
        if frames:
            selected = [group.frame_index(name) for name in frames]
        else:
            selected = [0] if first_only else list(range(len(group.frame_names)))
        if target == "average":
            if group.reference is None:
                raise InputError(group.name, "has no average to train or validate against")
            for frame in selected:
                items.append(PairItem(group_index, stack_indices(frame, len(group.frame_names), stack, group.name), None))
            continue
        if len(selected) < 2:
            raise InputError(group.name, "noise2noise needs at least two frames per group")
        items.extend(PairItem(group_index, (first,), second) for first in selected for second in selected if first != second)
    return items


REGISTRATION_MODES = ("none", "pairs", "inputs")
TONE_SIGMA = 4.0
"""Gaussian smoothing (pixels) of frame and average before their tone gain is fitted (:func:`tone_gain`)."""


def tone_gain(frame: torch.Tensor, average: torch.Tensor, sigma: float = TONE_SIGMA) -> float:
    """The least-squares slope ``g`` of the smoothed average on the smoothed frame, both ``(H, W)``::

        g = cov(G_σ * a, G_σ * f) / var(G_σ * f)

    Smoothing both images alike keeps blur out of the slope; residual speckle in ``G_σ * f``
    lowers it (regression dilution) by a similar factor for every frame of one noise level, so
    ratios of gains compare the averages' contrast across eyes. A flat frame gives 1.
    """
    smooth_frame, smooth_average = (scipy.ndimage.gaussian_filter(image.double().numpy(), sigma) for image in (frame, average))
    centred = smooth_frame - smooth_frame.mean()
    variance = float(np.mean(centred * centred))
    if variance <= 1e-12 * max(float(np.mean(smooth_frame * smooth_frame)), 1.0):  # a flat frame: no slope to fit
        return 1.0
    return float(np.mean(centred * (smooth_average - smooth_average.mean())) / variance)


class OCTPairs(ImagePairSource):
    """``(input (stack, H, W), target (1, H, W))`` pairs of frame groups, frames held once in memory.

    Args:
        groups: the frame groups (read with :func:`read_duke_subjects` or :func:`read_noisy_clean_folders`).
        frames: frame names used as inputs (empty: all frames, or the first with ``first_only``).
        stack: frames per input (see :class:`OCTDataConfig`).
        target: ``average`` or ``noise2noise``.
        first_only: with empty ``frames``, use each group's first (reference) frame only.
        register: ``none``; ``pairs`` (training): the target and the neighbours are moved onto the
            grid of the frame being restored, with shifts estimated against the group's average
            (between the noisy frames for ``noise2noise``, which never uses an average, or when
            there is none); ``inputs`` (validation, inference): only the neighbours are moved,
            with shifts estimated between the noisy frames.
        match_brightness: offset an average target so its mean equals its input frame's mean
            (see :class:`OCTDataConfig`).
        match_contrast: scale an average target about its mean, ``t = μ_a + (ḡ / g_i)(a − μ_a)``,
            where ``g_i`` is the :func:`tone_gain` of the pair and ``ḡ`` the mean gain over all
            average-target pairs of this source, so every pair has the common gain ``ḡ``.
    """

    spatial_ndim = 2

    def __init__(
        self,
        groups: Sequence[FrameGroup],
        frames: Sequence[str] = (),
        stack: int = 1,
        target: str = "average",
        first_only: bool = False,
        register: str = "none",
        match_brightness: bool = False,
        match_contrast: bool = False,
    ) -> None:
        if not groups:
            raise ConfigError("no OCT frame groups to pair")
        if register not in REGISTRATION_MODES:
            raise ConfigError(f"register: {register!r} is not one of {', '.join(REGISTRATION_MODES)}")
        self.groups = tuple(groups)
        self.items = tuple(pair_items(self.groups, frames, stack, target, first_only))
        self.register = register
        self.target = target
        self.match_brightness = match_brightness
        self._shifts: dict[tuple[int, int, int], tuple[int, int]] = {}
        self._aligned: dict[tuple[int, int, int], torch.Tensor] = {}
        self.contrast_scales: dict[int, float] = {}
        """Item index → ``ḡ / g_i`` for average targets (empty without ``match_contrast``)."""
        if match_contrast:
            gains = {}
            for index, item in enumerate(self.items):
                if item.target is None:
                    inputs, target = self._stored_pair(item)
                    gains[index] = tone_gain(inputs[0], target[0])
            if any(gain <= 0.0 for gain in gains.values()):
                raise InputError(None, "match_contrast: an average does not rise with its noisy frame (non-positive tone gain)")
            mean_gain = float(np.mean(list(gains.values()))) if gains else 1.0
            self.contrast_scales = {index: mean_gain / gain for index, gain in gains.items()}

    def __len__(self) -> int:
        return len(self.items)

    def name(self, index: int) -> str:
        item = self.items[index]
        group = self.groups[item.group]
        target = DUKE_AVERAGE if item.target is None else group.frame_names[item.target]
        inputs = "+".join(group.frame_names[frame] for frame in item.inputs)
        return f"{group.name}:{inputs}->{target}"

    def input_shape(self, index: int) -> tuple[int, ...]:
        return tuple(self.groups[self.items[index].group].frames.shape[1:])

    def factor(self, index: int) -> tuple[int, ...]:
        return (1, 1)

    def shift(self, group_index: int, frame: int, onto: int) -> tuple[int, int]:
        """Integer translation moving frame ``frame`` (``-1``: the average) onto frame ``onto`` of a group."""
        key = (group_index, frame, onto)
        if key not in self._shifts:
            group = self.groups[group_index]
            if self.register == "inputs" or group.reference is None or self.target == "noise2noise":
                moving = group.reference if frame < 0 else group.frames[frame]
                assert moving is not None
                self._shifts[key] = estimate_shift(group.frames[onto], moving)
            else:
                to_average = estimate_shift(group.reference, group.frames[onto])
                from_average = (0, 0) if frame < 0 else estimate_shift(group.reference, group.frames[frame])
                self._shifts[key] = (from_average[0] - to_average[0], from_average[1] - to_average[1])
        return self._shifts[key]

    def aligned(self, group_index: int, frame: int, onto: int) -> torch.Tensor:
        """Frame ``frame`` (``-1``: the average) of a group moved onto frame ``onto``, ``(H, W)``; cached."""
        key = (group_index, frame, onto)
        if key not in self._aligned:
            group = self.groups[group_index]
            image = group.reference if frame < 0 else group.frames[frame]
            assert image is not None
            self._aligned[key] = shift_image(image, self.shift(group_index, frame, onto)).contiguous()
        return self._aligned[key]

    def pair(self, index: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        item = self.items[index]
        inputs, target = self._stored_pair(item)
        if index in self.contrast_scales:
            target = target.mean() + self.contrast_scales[index] * (target - target.mean())
        if self.match_brightness and item.target is None:
            target = target + (self.groups[item.group].frames[item.inputs[0]].mean() - target.mean())
        return inputs, target

    def _stored_pair(self, item: PairItem) -> tuple[torch.Tensor, torch.Tensor]:
        """The pair of ``item``, registered as the source says, before any tone matching."""
        return self._registered_pair(item) if self.register != "none" else self._plain_pair(item)

    def _plain_pair(self, item: PairItem) -> tuple[torch.Tensor, torch.Tensor]:
        """The pair of ``item`` as stored (no registration)."""
        group = self.groups[item.group]
        first = item.inputs[0]
        if item.inputs == tuple(range(first, first + len(item.inputs))):
            inputs = group.frames[first : first + len(item.inputs)]
        else:
            inputs = group.frames[list(item.inputs)]
        if item.target is None:
            assert group.reference is not None
            return inputs, group.reference.unsqueeze(0)
        return inputs, group.frames[item.target : item.target + 1]

    def _registered_pair(self, item: PairItem) -> tuple[torch.Tensor, torch.Tensor]:
        """The pair of ``item`` with neighbours (and, for ``pairs``, the target) on the grid of its first frame."""
        group = self.groups[item.group]
        primary = item.inputs[0]
        neighbours = [self.aligned(item.group, frame, primary) for frame in item.inputs[1:]]
        inputs = torch.stack([group.frames[primary], *neighbours])
        target_frame = -1 if item.target is None else item.target
        if self.register == "pairs":
            return inputs, self.aligned(item.group, target_frame, primary).unsqueeze(0)
        target = group.reference if item.target is None else group.frames[item.target]
        assert target is not None
        return inputs, target.unsqueeze(0)


def split_subjects(config: OCTDataConfig, layout: Literal["duke", "folders"]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(training, validation) subjects; training defaults to all non-validation subjects."""
    validation = config.validation_subjects
    if config.subjects:
        return config.subjects, validation
    if layout == "folders":
        every = folder_stems(config.root)
    else:
        every = tuple(sorted((entry.name for entry in Path(config.root).iterdir() if entry.is_dir()), key=_subject_key))
    training = tuple(name for name in every if name not in validation)
    if not training:
        raise ConfigError(f"subjects: every subject of {config.root} is a validation subject")
    return training, validation


def _subject_key(name: str) -> tuple[int, str]:
    return (int(name), name) if name.isdigit() else (1 << 30, name)


def read_groups(config: OCTDataConfig, subjects: Sequence[str], layout: Literal["duke", "folders"]) -> list[FrameGroup]:
    """The frame groups of ``subjects`` in the layout of ``config.root``."""
    if layout == "folders":
        return read_noisy_clean_folders(config.root, subjects)
    return read_duke_subjects(config.root, subjects)


def oct_sources(config: OCTDataConfig) -> tuple[OCTPairs, OCTPairs | None]:
    """Training pairs and validation pairs (always against the untouched average; ``None`` without validation subjects).

    With ``config.register`` the training pairs are registered (``pairs``) and the validation
    stacks have their neighbours aligned from the noisy frames (``inputs``).
    """
    layout = detect_layout(config.root) if config.layout == "auto" else config.layout
    training_subjects, validation_subjects = split_subjects(config, layout)
    training_register = "pairs" if config.register else "none"
    training = OCTPairs(
        read_groups(config, training_subjects, layout),
        config.frames,
        config.stack,
        config.target,
        register=training_register,
        match_brightness=config.match_brightness,
        match_contrast=config.match_contrast,
    )
    if not validation_subjects:
        return training, None
    groups = read_groups(config, validation_subjects, layout)
    validation_register = "inputs" if config.register and config.stack > 1 else "none"
    return training, OCTPairs(groups, config.validation_frames, config.stack, "average", True, validation_register)
