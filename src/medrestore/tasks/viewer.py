"""What the local web viewer (``medrestore view``) does, without the web: studies, operations, slices, metrics.

A *study* is one input image file opened from a folder the viewer was started on (its *root*; nothing outside
it is read), with an optional *reference* (the clean or fully sampled image the results are scored against)
and the *results* of the operations run on it. Every operation is the CLI's own task function on the files
(:data:`OPERATIONS`: ``medrestore denoise --modality mri|oct``, ``superres``, ``harmonize``, ``recon``, ``degrade``), so a
result is the file the command would write, in the viewer's work folder, and can be downloaded as it is.
A result can be *continued* as a new study (its input the result, its reference the study's), so that
"degrade a clean image, restore it, score it against the clean one" takes three clicks.

Slices for display (:meth:`Study.slice_png`): a 2-D image as stored (rows down); a 3-D volume cut
across the world axis ``axis`` (0 sagittal, 1 coronal, 2 axial, found from the affine whatever the voxel
order: NIfTI, DICOM) at ``index``, shown with superior or anterior up and the patient's right on the right
(neurological convention); a 4-D series at ``frame``. Grey levels map ``[low, high]`` linearly to 0…255, by
default the 0.5th and 99.5th percentiles of the study's input, so that before and after share one window.

Metrics (:meth:`Study.metrics`): :func:`medrestore.tasks.evaluate.evaluate_pair` of an image against the
reference under a named convention (``default``, ``oct``, ``fastmri``), optionally inside the mask
``reference > 0`` (the brain of a skull-stripped volume, the convention of ``benchmarks/mri_denoise.py``),
computed once per (image, reference, convention, mask) and kept.

Paths: every path a request names (the study, its reference, a folder to list, a ``model`` or ``coil_maps``
parameter) resolves inside the root (a zoo name or a keyword such as ``espirit`` aside) before anything is
opened (:meth:`Viewer.resolve`); a path outside gets the same answer whether or not a file is there.

Memory: the images of the studies (inputs, references, results) stay in memory up to a budget of bytes
(:class:`ImageCache`); beyond it the least recently used are dropped and read again from their files when
next needed. Closing a study drops its images.

Jobs: an operation runs as a :class:`Job` whose progress (the ``progress``/``track`` marks of
:mod:`medrestore.core.progress` in the task's loops) can be read while it runs, and which can be cancelled: the
next progress mark after :meth:`Job.cancel` stops it (:class:`Cancelled`), before its output is written.
"""

from __future__ import annotations

import collections
import dataclasses
import io
import itertools
import threading
import time
from collections.abc import Callable, Hashable, Mapping
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import torch
from PIL import Image as PILImage

from medrestore.core.errors import ConfigError, InputError, MedrestoreError
from medrestore.core.image import Image
from medrestore.core.progress import reporting
from medrestore.io import read_image, read_kspace, write_image
from medrestore.io.common import single_slice_affine
from medrestore.physics.degradations import DEGRADATION_KINDS, catalogue_entry, parameter_types, required_parameters
from medrestore.report.figures import to_display_uint8
from medrestore.tasks.degrade import degrade_file
from medrestore.tasks.denoise import DEFAULT_MODELS, denoise_file
from medrestore.tasks.denoise_mri import METHODS as MRI_METHODS
from medrestore.tasks.evaluate import CONVENTION_NAMES, evaluate_pair
from medrestore.tasks.harmonize import harmonize_file
from medrestore.tasks.radial import DELAY_CORRECTIONS
from medrestore.tasks.recon import RECON_METHODS, ReconOptions, reconstruct_file
from medrestore.tasks.superres import DEFAULT_METHOD as SUPERRES_DEFAULT
from medrestore.tasks.superres import METHODS as SUPERRES_METHODS
from medrestore.tasks.superres import SuperResolutionRequest, superres_file
from medrestore.zoo.store import in_zoo

WINDOW_PERCENTILES = (0.5, 99.5)
"""Default display window: these percentiles of the study's input (of every k-th voxel, at most about
:data:`WINDOW_SAMPLE` of them)."""
WINDOW_SAMPLE = 2_000_000
DEGRADE_PREFIX = "degrade-"
"""Operations named so are degradations (``medrestore degrade --kind KIND``), not restorations."""
KSPACE_SUFFIXES = (".dat", ".h5", ".hdf5", ".mrd", ".cfl", ".hdr")
"""Files with these extensions open as raw k-space; ``.npy``/``.npz`` do when :func:`read_kspace` takes them."""
WRITABLE_SUFFIXES = (".nii.gz", ".nii", ".tif", ".tiff", ".png", ".npy", ".npz", ".dcm")
"""Results keep the input's format when it is one of these; otherwise NIfTI (3-D, 4-D) or TIFF (2-D)."""
DEFAULT_MEMORY_BUDGET = 2 << 30
"""Bytes of images kept in memory by default (:class:`ImageCache`)."""
PATH_KINDS = ("model", "file")
"""Parameter kinds that name a file: resolved inside the viewer's root (:meth:`Parameter.parse`)."""

PathResolver = Callable[[str], Path]
"""A request's path → the file inside the viewer's root (:meth:`Viewer.resolve`; ``PermissionError`` outside)."""


@dataclasses.dataclass(frozen=True)
class Parameter:
    """One parameter of an operation, as the viewer's form shows it.

    ``kind``: ``choice`` (one of ``choices``), ``number``, ``integer``, ``boolean``, ``text``, ``model`` (a zoo
    name, or a checkpoint file inside the root) or ``file`` (one of ``choices`` as a keyword, or a file inside
    the root). ``default`` ``None`` with ``required=False``: left out unless given.
    """

    name: str
    label: str
    kind: str
    default: Any = None
    choices: tuple[str, ...] = ()
    required: bool = False

    def parse(self, value: Any, operation: str, resolve: PathResolver | None = None) -> Any:
        """``value`` from a form (JSON) checked and converted; ``None``/``""`` → the default.

        A ``model`` or ``file`` value that is not a zoo name or keyword becomes ``resolve(value)`` as text: a
        file inside the root, checked before the operation opens anything (without ``resolve`` it is refused).
        """
        if value is None or value == "":
            if self.required and self.default is None:
                raise ConfigError(f"{operation}: parameter {self.name!r} is required")
            return self.default
        if self.kind in PATH_KINDS:
            text = str(value)
            if text in self.choices or (self.kind == "model" and in_zoo(text)):
                return text
            if resolve is None:
                raise ConfigError(f"{operation}: {self.name} {text!r} names a file, and no folder to find it in was given")
            return str(resolve(text))
        if self.kind == "choice":
            if str(value) not in self.choices:
                raise ConfigError(f"{operation}: {self.name} must be one of {', '.join(self.choices)}, got {value!r}")
            return str(value)
        if self.kind in ("number", "integer"):
            try:
                number = float(value)
            except (TypeError, ValueError):
                raise ConfigError(f"{operation}: {self.name} must be a number, got {value!r}") from None
            if not np.isfinite(number) or (self.kind == "integer" and not number.is_integer()):
                raise ConfigError(f"{operation}: {self.name} must be a finite {'integer' if self.kind == 'integer' else 'number'}, got {value!r}")
            return int(number) if self.kind == "integer" else number
        if self.kind == "boolean":
            if isinstance(value, bool):
                return value
            if str(value).lower() in ("true", "false"):
                return str(value).lower() == "true"
            raise ConfigError(f"{operation}: {self.name} must be true or false, got {value!r}")
        return str(value)

    def describe(self) -> dict[str, Any]:
        return dataclasses.asdict(self) | {"choices": list(self.choices)}


Runner = Callable[[Path, Path, dict[str, Any], Path | None, str], dict[str, Any]]
"""``(input, output, parameters, reference or None, nonfinite) → summary``: one command's task function on
files; ``nonfinite`` is the study's NaN/±Inf reader policy (:mod:`medrestore.io.values`)."""


@dataclasses.dataclass(frozen=True)
class Operation:
    """A restoration (or degradation) the viewer offers: ``run(input, output, parameters, reference, nonfinite)
    → summary`` (a :data:`Runner`). ``accepts``: ``image`` (an image file) or ``kspace`` (raw k-space)."""

    name: str
    label: str
    description: str
    parameters: tuple[Parameter, ...]
    run: Runner
    accepts: str = "image"

    def parse(self, values: Mapping[str, Any], resolve: PathResolver | None = None) -> dict[str, Any]:
        """The form's ``values`` checked: unknown names refused, defaults filled, ``None`` left out; file
        parameters resolved with ``resolve`` (:meth:`Parameter.parse`)."""
        known = {p.name for p in self.parameters}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"{self.name}: unknown parameter(s) {', '.join(unknown)}; it takes {', '.join(sorted(known)) or 'none'}")
        parsed = {p.name: p.parse(values.get(p.name), self.name, resolve) for p in self.parameters}
        return {name: value for name, value in parsed.items() if value is not None}

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name, "label": self.label, "description": self.description, "accepts": self.accepts,
            "parameters": [p.describe() for p in self.parameters],
        }  # fmt: skip


def _denoise_mri(source: Path, output: Path, values: dict[str, Any], reference: Path | None, nonfinite: str) -> dict[str, Any]:
    result = denoise_file(source, output, "mri", values.get("model"), method=values["method"], sigma=values.get("sigma", "auto"),
                          nonfinite=nonfinite)
    summary = {"method": result.method, "model": result.model, "sigma": [round(s, 6) for s in result.sigmas]}
    if result.tsnr_gain is not None:
        summary |= {"tSNR before": result.tsnr_before, "tSNR after": result.tsnr_after}
    return summary


def _denoise_oct(source: Path, output: Path, values: dict[str, Any], reference: Path | None, nonfinite: str) -> dict[str, Any]:
    result = denoise_file(source, output, "oct", values.get("model"))
    return {"model": result.model, "images": result.images}


def _superres(source: Path, output: Path, values: dict[str, Any], reference: Path | None, nonfinite: str) -> dict[str, Any]:
    request = SuperResolutionRequest(scale=values["scale"], method=values["method"], model=values.get("model"), nonfinite=nonfinite)
    record = superres_file(source, output, request)
    return {"method": record["method"], "model": record["model"], "scale": record["scale"]}


def _harmonize(source: Path, output: Path, values: dict[str, Any], reference: Path | None, nonfinite: str) -> dict[str, Any]:
    record = harmonize_file(source, output, values["model"], values["direction"], values.get("noise_level"), grid=values.get("grid"),
                            nonfinite=nonfinite)
    return {"model": record["harmonization"]["model"], "direction": values["direction"]}


def _recon(source: Path, output: Path, values: dict[str, Any], reference: Path | None, nonfinite: str) -> dict[str, Any]:
    """``medrestore recon``; with a reference, its report's metrics (after its least-squares intensity fit)."""
    options = ReconOptions(values["method"], values["coil_maps"], values.get("lam"), values.get("iterations"), delay_correction=values["delay_correction"])
    report = reconstruct_file(source, output, options, reference)
    keys = ("method", "lambda", "iterations", "delay_correction", "delay", "metrics")
    return {key: report[key] for key in keys if key in report and report[key] is not None}


def _degrader(kind: str) -> Runner:
    def run(source: Path, output: Path, values: dict[str, Any], reference: Path | None, nonfinite: str) -> dict[str, Any]:
        seed = int(values.pop("seed", 0))
        record = degrade_file(source, output, kind, values, seed=seed, nonfinite=nonfinite)
        return {"degradation": record["degradation"]}

    return run


def _degrade_parameters(kind: str) -> tuple[Parameter, ...]:
    """A form field per parameter of the degradation ``kind`` (its dataclass fields and types), and the seed."""
    required = set(required_parameters(kind))
    fields = {field.name: field for field in dataclasses.fields(catalogue_entry(kind).transform)}  # type: ignore[arg-type]
    parameters = []
    for name, annotation in parameter_types(kind).items():
        text = str(annotation)
        form = "boolean" if "bool" in text else "integer" if "int" in text else "number" if "float" in text else "text"
        default = fields[name].default
        default = None if default is dataclasses.MISSING else default
        parameters.append(Parameter(name, name.replace("_", " "), form, default, required=name in required))
    return (*parameters, Parameter("seed", "seed", "integer", 0))


def _operations() -> dict[str, Operation]:
    mri = Operation(
        "denoise-mri", "Denoise MRI", "medrestore denoise --modality mri: 2-D, 3-D or 4-D magnitude images (Rician).",
        (
            Parameter("method", "method", "choice", "auto", MRI_METHODS),
            Parameter("sigma", "noise σ (image units, or auto)", "text", "auto"),
            Parameter("model", "network (zoo name or checkpoint; empty: the method's default)", "model"),
        ),
        _denoise_mri,
    )
    oct_ = Operation(
        "denoise-oct", "Denoise OCT", "medrestore denoise --modality oct: one B-scan (or a stack) to the multi-frame average's quality.",
        (Parameter("model", f"model (empty: {DEFAULT_MODELS['oct']})", "model"),),
        _denoise_oct,
    )
    nm = Operation(
        "superres-nm", "Super-resolve a scintigram", "medrestore superres --modality nm: a planar gamma-camera image K times finer, counts kept.",
        (
            Parameter("method", "method", "choice", SUPERRES_DEFAULT, SUPERRES_METHODS),
            Parameter("scale", "scale K", "integer", 4),
            Parameter("model", "network (empty: the method's default)", "model"),
        ),
        _superres,
    )
    harmonize = Operation(
        "harmonize", "Harmonise scanners", "medrestore harmonize: an MRI slice or volume to the other scanner's appearance.",
        (
            Parameter("model", "harmoniser (zoo name or checkpoint)", "model", "cyclegan-sim"),
            Parameter("direction", "direction", "choice", "b2a", ("a2b", "b2a")),
            Parameter("noise_level", "add Rician noise up to (fraction of the robust maximum)", "number"),
            Parameter("grid", "harmonise on an N×N grid", "integer"),
        ),
        _harmonize,
    )
    recon = Operation(
        "recon", "Reconstruct k-space", "medrestore recon: raw Cartesian or radial k-space to a magnitude image.",
        (
            Parameter("method", "method", "choice", "auto", RECON_METHODS),
            Parameter("coil_maps", "coil maps (espirit or a maps file)", "file", "espirit", ("espirit",)),
            Parameter("lam", "λ (empty: from the noise of the outer k-space)", "number"),
            Parameter("iterations", "iterations (empty: the method's default)", "integer"),
            Parameter("delay_correction", "gradient-delay correction (radial)", "choice", "auto", DELAY_CORRECTIONS),
        ),
        _recon,
        accepts="kspace",
    )
    degraders = [
        Operation(f"{DEGRADE_PREFIX}{kind}", f"Degrade: {kind}", f"medrestore degrade --kind {kind}: the seeded forward model.", _degrade_parameters(kind), _degrader(kind))
        for kind in DEGRADATION_KINDS
    ]
    return {operation.name: operation for operation in (mri, oct_, nm, harmonize, recon, *degraders)}


OPERATIONS: dict[str, Operation] = _operations()
"""Every operation the viewer offers, by name."""


def output_suffix(source: Path, image: Image) -> str:
    """The result's extension: the input's when :data:`WRITABLE_SUFFIXES` has it, else ``.nii.gz`` (3-D+) or ``.tif``."""
    name = source.name.lower()
    for suffix in WRITABLE_SUFFIXES:
        if name.endswith(suffix):
            return suffix
    return ".nii.gz" if image.spatial_ndim == 3 else ".tif"


def holds_kspace(path: Path) -> bool:
    """Whether ``path`` is raw k-space (the input of ``recon``) rather than an image."""
    suffix = path.suffix.lower()
    if path.is_dir() or suffix not in (*KSPACE_SUFFIXES, ".npy", ".npz"):
        return False
    if suffix in KSPACE_SUFFIXES:
        return True
    try:
        read_kspace(path)
    except InputError:
        return False
    return True


def kspace_preview(path: Path, target: Path) -> Path:
    """The zero-filled reconstruction of the k-space at ``path`` (``medrestore recon --method zero-filled
    --delay-correction none``: root-sum-of-squares of the coils, gridded when radial), written to ``target``."""
    reconstruct_file(path, target, ReconOptions(method="zero-filled", delay_correction="none"))
    return target


def world_axes(image: Image) -> tuple[tuple[int, bool], ...]:
    """For each world axis R, A, S of a volume: the voxel axis closest to it and whether it runs the other way
    (from the affine, :func:`nibabel.orientations.io_orientation`). 2-D images: their own axes, unflipped."""
    if image.spatial_ndim == 2:
        return ((0, False), (1, False))
    orientation = nib.orientations.io_orientation(image.affine)
    found: dict[int, tuple[int, bool]] = {int(world): (voxel, bool(sign < 0)) for voxel, (world, sign) in enumerate(orientation)}
    return tuple(found[world] for world in range(3))


def display_shape(image: Image) -> tuple[tuple[int, ...], tuple[float, ...]]:
    """Sizes and spacings along the displayed axes: R, A, S for a volume (:func:`world_axes`), the stored ones in 2-D."""
    axes = world_axes(image)
    return tuple(image.spatial_shape[v] for v, _ in axes), tuple(image.spacing[v] for v, _ in axes)


def display_plane(image: Image, axis: int = 2, index: int | None = None, frame: int = 0) -> np.ndarray:
    """The 2-D array shown for ``image`` (module docstring), float64: rows top to bottom, columns left to right.

    A volume is cut across the world axis ``axis`` (0 R, 1 A, 2 S: sagittal, coronal, axial) at ``index``
    counted from the left, posterior or inferior end, whatever order its voxels are stored in (NIfTI, DICOM).

    Raises:
        InputError: an axis, slice or frame outside the image.
    """
    data = image.data
    if not 0 <= frame < image.n_frames:
        raise InputError(None, f"frame {frame} outside 0…{image.n_frames - 1}")
    volume = data[..., frame] if data.ndim > image.spatial_ndim else data
    if image.spatial_ndim == 2 and image.metadata.get("squeezed_axis") in (0, 1, 2):
        return _single_slice_plane(volume, image.affine, int(image.metadata["squeezed_axis"]))
    if image.spatial_ndim == 2:
        return volume.detach().cpu().to(torch.float64).numpy()
    if axis not in (0, 1, 2):
        raise InputError(None, f"axis must be 0, 1 or 2 for a volume, got {axis}")
    axes = world_axes(image)
    voxel, flipped = axes[axis]
    size = volume.shape[voxel]
    index = size // 2 if index is None else index
    if not 0 <= index < size:
        raise InputError(None, f"slice {index} outside 0…{size - 1} along axis {axis}")
    plane = volume.select(voxel, size - 1 - index if flipped else index)  # the two other voxel axes, in order
    (first, first_flip), (second, second_flip) = (axes[w] for w in range(3) if w != axis)  # world order
    if first > second:  # voxel order differs from world order
        plane = plane.T
    plane = plane.detach().cpu().to(torch.float64).numpy()
    plane = plane[::-1] if first_flip else plane
    plane = plane[:, ::-1] if second_flip else plane
    return np.ascontiguousarray(np.flipud(plane.T))


def _single_slice_plane(plane: torch.Tensor, affine: np.ndarray, squeezed_axis: int) -> np.ndarray:
    """A one-slice volume read as 2-D (:func:`~medrestore.io.common.squeeze_single_slice`), shown as the
    volume's own plane across the world axis of its slice: the same picture as the volume it came from."""
    volume = Image(plane.unsqueeze(squeezed_axis), single_slice_affine(affine, squeezed_axis), 3)
    world = next(w for w, (voxel, _) in enumerate(world_axes(volume)) if voxel == squeezed_axis)
    return display_plane(volume, world, 0)


def window_png(plane: np.ndarray, low: float, high: float) -> bytes:
    """``plane`` mapped ``[low, high] → [0, 255]`` (clipped; :func:`~medrestore.report.figures.to_display_uint8`,
    the demo report's window) as 8-bit grey PNG bytes."""
    buffer = io.BytesIO()
    PILImage.fromarray(to_display_uint8(plane, low, high), mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


class Cancelled(MedrestoreError):
    """A job stopped at a progress mark of its task because it was cancelled (:meth:`Job.cancel`)."""


def image_bytes(image: Image) -> int:
    """Bytes of ``image``'s voxels in memory."""
    return image.data.element_size() * image.data.numel()


class ImageCache:
    """Images kept in memory up to ``budget`` bytes, by key; beyond it the least recently used are dropped and
    loaded again (by the caller's loader) when next asked for. The image just stored or asked for is always
    kept, even alone over the budget. Safe to share between threads.
    """

    def __init__(self, budget: int = DEFAULT_MEMORY_BUDGET) -> None:
        if budget < 0:
            raise ConfigError(f"memory budget must be at least 0 bytes, got {budget}")
        self.budget = budget
        self._images: collections.OrderedDict[Hashable, Image] = collections.OrderedDict()
        self._lock = threading.Lock()

    @property
    def nbytes(self) -> int:
        """Bytes of the images held now."""
        with self._lock:
            return sum(image_bytes(image) for image in self._images.values())

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._images

    def get(self, key: Hashable, load: Callable[[], Image]) -> Image:
        """The image under ``key``, from memory or ``load()`` (then kept, dropping the least recently used)."""
        with self._lock:
            if key in self._images:
                self._images.move_to_end(key)
                return self._images[key]
        image = load()  # outside the lock: reading a file takes a while, other images stay available meanwhile
        self.put(key, image)
        return image

    def put(self, key: Hashable, image: Image) -> None:
        """Keep ``image`` under ``key`` as the most recently used."""
        with self._lock:
            self._images[key] = image
            self._images.move_to_end(key)
            total = sum(image_bytes(held) for held in self._images.values())
            while total > self.budget and len(self._images) > 1:
                _, dropped = self._images.popitem(last=False)
                total -= image_bytes(dropped)

    def drop(self, which: Callable[[Hashable], bool]) -> None:
        """Forget every image whose key ``which`` accepts."""
        with self._lock:
            for key in [key for key in self._images if which(key)]:
                del self._images[key]


@dataclasses.dataclass
class Result:
    """One operation's output file, what ran, and the geometry of its image (the image itself: :meth:`Study.image_of`)."""

    id: str
    operation: str
    parameters: dict[str, Any]
    path: Path
    seconds: float
    summary: dict[str, Any]
    geometry: dict[str, Any]

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id, "operation": self.operation, "parameters": self.parameters, "file": self.path.name,
            "seconds": round(self.seconds, 3), "summary": self.summary, **self.geometry,
        }  # fmt: skip


def _geometry(image: Image) -> dict[str, Any]:
    shape, spacing = display_shape(image)
    return {
        "shape": list(image.shape), "spatial_ndim": image.spatial_ndim, "frames": image.n_frames, "spacing": list(image.spacing),
        "display_shape": list(shape), "display_spacing": list(spacing), "modality": image.modality,
    }  # fmt: skip


@dataclasses.dataclass
class Study:
    """An input image, its optional reference, and the results of operations on it (module docstring).

    Its images live in ``cache`` (read again from their files when the memory budget dropped them); its
    metrics are kept per (image, reference, convention, mask).
    """

    id: str
    path: Path
    workdir: Path
    cache: ImageCache = dataclasses.field(default_factory=ImageCache)
    reference_path: Path | None = None
    results: dict[str, Result] = dataclasses.field(default_factory=dict)
    window: tuple[float, float] = (0.0, 1.0)
    preview: Path | None = None
    _counter: itertools.count = dataclasses.field(default_factory=lambda: itertools.count(1))
    nonfinite: str = "refuse"
    geometry: dict[str, Any] = dataclasses.field(default_factory=dict)
    reference_geometry: dict[str, Any] | None = None
    _metrics: dict[tuple[str, str, str, bool], dict[str, float] | None] = dataclasses.field(default_factory=dict)
    _metrics_lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        image = self.image
        self.geometry = _geometry(image)
        values = image.data.detach().cpu().reshape(-1)
        values = values[:: max(1, values.numel() // WINDOW_SAMPLE)].to(torch.float64).numpy()  # every k-th voxel
        low, high = (float(v) for v in np.percentile(values, WINDOW_PERCENTILES))
        self.window = (low, high if high > low else low + 1.0)

    @property
    def image(self) -> Image:
        """The input image (the zero-filled reconstruction of raw k-space)."""
        return self.cache.get((self.id, "input"), lambda: read_image(self.path_of("input"), nonfinite=self.nonfinite))

    @property
    def reference(self) -> Image | None:
        """The reference image, or ``None``."""
        if self.reference_path is None:
            return None
        path = self.reference_path
        return self.cache.get((self.id, "reference"), lambda: read_image(path, nonfinite=self.nonfinite))

    def image_of(self, source: str) -> Image:
        """``input``, ``reference`` or a result id → its image."""
        if source == "input":
            return self.image
        if source == "reference":
            if self.reference is None:
                raise InputError(None, "this study has no reference")
            return self.reference
        if source in self.results:
            path = self.results[source].path
            return self.cache.get((self.id, source), lambda: read_image(path))
        raise InputError(None, f"no image {source!r} in this study (input, reference or a result id)")

    def geometry_of(self, source: str) -> dict[str, Any]:
        """:func:`_geometry` of ``source`` without reading it."""
        if source == "input":
            return self.geometry
        if source == "reference" and self.reference_geometry is not None:
            return self.reference_geometry
        if source in self.results:
            return self.results[source].geometry
        raise InputError(None, f"no image {source!r} in this study (input, reference or a result id)")

    @property
    def kind(self) -> str:
        """``kspace`` when the input is raw k-space (shown by its zero-filled reconstruction), else ``image``."""
        return "image" if self.preview is None else "kspace"

    def path_of(self, source: str) -> Path:
        if source == "input":
            return self.path if self.preview is None else self.preview
        if source == "reference" and self.reference_path is not None:
            return self.reference_path
        if source in self.results:
            return self.results[source].path
        raise InputError(None, f"no image {source!r} in this study")

    def slice_png(self, source: str, axis: int = 2, index: int | None = None, frame: int = 0, low: float | None = None, high: float | None = None) -> bytes:
        """A slice of ``source`` as PNG. 3-D: ``index`` is a slice of the *input*, scaled to ``source``'s size
        along ``axis`` when they differ (a super-resolved image shows the same place)."""
        image = self.image_of(source)
        if image.spatial_ndim == 3 and self.geometry["spatial_ndim"] == 3 and index is not None and axis in (0, 1, 2):
            size, own = self.geometry["display_shape"][axis], display_shape(image)[0][axis]
            if size != own and size > 1:
                index = int(round(index * (own - 1) / (size - 1)))
        frame = min(frame, image.n_frames - 1)
        plane = display_plane(image, axis, index, frame)
        return window_png(plane, self.window[0] if low is None else low, self.window[1] if high is None else high)

    def metrics(self, source: str, convention: str = "default", masked: bool = False) -> dict[str, float] | None:
        """Metrics of ``source`` against the reference (``None`` without one, or when their shapes differ),
        computed on the first request for (``source``, reference, ``convention``, ``masked``) and kept."""
        if self.reference_path is None or self.reference_geometry is None:
            return None
        if convention not in CONVENTION_NAMES:
            raise ConfigError(f"unknown convention {convention!r}; use one of {', '.join(CONVENTION_NAMES)}")
        if self.geometry_of(source)["shape"] != self.reference_geometry["shape"]:
            return None
        key = (source, str(self.reference_path), convention, masked)
        with self._metrics_lock:  # one computation per key, however many requests ask at once
            if key not in self._metrics:
                mask = self._reference_mask() if masked else None
                self._metrics[key] = evaluate_pair(self.path_of(source), self.reference_path, mask, convention, self.nonfinite)
            return self._metrics[key]

    def _reference_mask(self) -> Path:
        """``reference > 0`` written once in the work folder (NIfTI for volumes, TIFF for 2-D)."""
        reference = self.reference
        assert reference is not None
        target = self.workdir / f"{self.id}-reference-mask{'.nii.gz' if reference.spatial_ndim == 3 else '.tif'}"
        if not target.exists():
            write_image(reference.with_data((reference.data > 0).to(torch.uint8), metadata={}), target, dtype="uint8")
        return target

    def set_reference(self, path: Path | None) -> None:
        """Score against the image at ``path`` (``None``: against nothing); the old reference's mask and the
        metrics against it are dropped."""
        reference = None if path is None else read_image(path, nonfinite=self.nonfinite)  # unreadable: nothing changes
        with self._metrics_lock:
            for mask in self.workdir.glob(f"{self.id}-reference-mask.*"):
                mask.unlink()
            self._metrics.clear()
            self.cache.drop(lambda key: key == (self.id, "reference"))
            self.reference_path = path
            self.reference_geometry = None if reference is None else _geometry(reference)
            if reference is not None:
                self.cache.put((self.id, "reference"), reference)

    def prepare(self, operation: str, values: Mapping[str, Any], resolve: PathResolver | None = None) -> tuple[Operation, dict[str, Any]]:
        """``operation`` and its checked parameters (:meth:`Operation.parse`), or the error a run would give."""
        if operation not in OPERATIONS:
            raise ConfigError(f"unknown operation {operation!r}; available: {', '.join(OPERATIONS)}")
        chosen = OPERATIONS[operation]
        if chosen.accepts != self.kind:
            wanted = "raw k-space" if chosen.accepts == "kspace" else "an image"
            raise InputError(self.path, f"{chosen.name} needs {wanted}; this study is {'raw k-space' if self.kind == 'kspace' else 'an image'}")
        return chosen, chosen.parse(values, resolve)

    def run(self, operation: str, values: Mapping[str, Any], resolve: PathResolver | None = None) -> Result:
        """Run ``operation`` on the input into the work folder; the new :class:`Result`."""
        chosen, parsed = self.prepare(operation, values, resolve)
        result_id = f"r{next(self._counter)}"
        suffix = ".nii.gz" if self.preview is not None else output_suffix(self.path, self.image)
        output = self.workdir / f"{self.id}-{result_id}-{chosen.name}{suffix}"
        started = time.perf_counter()
        summary = chosen.run(self.path, output, dict(parsed), self.reference_path, self.nonfinite)
        seconds = time.perf_counter() - started
        image = read_image(output)
        self.cache.put((self.id, result_id), image)
        result = Result(result_id, chosen.name, parsed, output, seconds, summary, _geometry(image))
        self.results[result_id] = result
        return result

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id, "file": self.path.name, "path": str(self.path), **self.geometry,
            "kind": self.kind, "window": list(self.window),
            "reference": None if self.reference_path is None else {"file": self.reference_path.name, "path": str(self.reference_path), **(self.reference_geometry or {})},
            "results": [result.describe() for result in self.results.values()],
        }  # fmt: skip


@dataclasses.dataclass
class Job:
    """One run of an operation on a study: its state (``waiting`` for the one running before it, ``running``,
    ``done``, ``failed``, ``cancelled``) and, while it runs, the progress marks of its task (a
    :class:`~medrestore.core.progress.ProgressSink`: nested stages, outermost first)."""

    id: str
    study: str
    operation: str
    state: str = "waiting"
    stages: list[list[Any]] = dataclasses.field(default_factory=list)
    result: str | None = None
    error: str | None = None
    started: float = dataclasses.field(default_factory=time.monotonic)
    _cancel: threading.Event = dataclasses.field(default_factory=threading.Event)

    def cancel(self) -> None:
        """Stop at the task's next progress mark (or before it starts, while waiting)."""
        self._cancel.set()

    def check(self) -> None:
        """Raises :class:`Cancelled` once :meth:`cancel` was called."""
        if self._cancel.is_set():
            raise Cancelled(f"{self.operation} on study {self.study} was cancelled")

    def begin(self, label: str, total: int | None) -> None:
        self.check()
        self.stages.append([label, 0, total])

    def advance(self, label: str, done: int, total: int | None) -> None:
        self.check()
        for stage in reversed(self.stages):
            if stage[0] == label:
                stage[1:] = [done, total]
                break

    def end(self, label: str) -> None:
        for index in range(len(self.stages) - 1, -1, -1):
            if self.stages[index][0] == label:
                del self.stages[index]
                break

    @property
    def active(self) -> bool:
        return self.state in ("waiting", "running")

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id, "study": self.study, "operation": self.operation, "state": self.state, "result": self.result,
            "error": self.error, "seconds": round(time.monotonic() - self.started, 1), "cancelling": self._cancel.is_set() and self.active,
            "stages": [{"label": label, "done": done, "total": total} for label, done, total in list(self.stages)],
        }  # fmt: skip


KEPT_JOBS = 100
"""Finished jobs remembered (for :meth:`Viewer.jobs`) besides the waiting and running ones."""


class Viewer:
    """The viewer's state: the root folder it may read, its work folder, and the open studies.

    One operation runs at a time (they use every CPU thread), the others wait; reading slices goes on meanwhile.
    """

    def __init__(self, root: str | Path, workdir: str | Path, nonfinite: str = "refuse", memory_budget: int = DEFAULT_MEMORY_BUDGET) -> None:
        self.nonfinite = nonfinite  # NaN/±Inf policy of every read (medrestore.io.values)
        self.root = Path(root).resolve()
        if not self.root.is_dir():
            raise InputError(self.root, "is not a folder; the viewer serves the files of a folder")
        self.workdir = Path(workdir).resolve()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.cache = ImageCache(memory_budget)
        self.studies: dict[str, Study] = {}
        self._ids = itertools.count(1)
        self._job_ids = itertools.count(1)
        self._jobs: collections.OrderedDict[str, Job] = collections.OrderedDict()
        self._running = threading.Lock()
        self._state = threading.Lock()

    def resolve(self, path: str | Path) -> Path:
        """``path`` (relative to the root, or absolute) inside the root, links followed.

        Raises:
            PermissionError: outside the root; the message is the same whether or not a file is there, and
                nothing was opened.
            InputError: a path with a NUL character.
        """
        if "\x00" in str(path):
            raise InputError(None, "a path cannot hold a NUL character")
        candidate = Path(path)
        resolved = (candidate if candidate.is_absolute() else self.root / candidate).resolve()
        if not resolved.is_relative_to(self.root):
            raise PermissionError(f"{path}: outside the folder this viewer serves ({self.root})")
        return resolved

    def list_folder(self, path: str | Path = "") -> dict[str, Any]:
        """The visible entries of a folder inside the root: sub-folders first, then files, by name."""
        folder = self.resolve(path)
        if not folder.is_dir():
            raise InputError(folder, "is not a folder")
        entries = sorted((p for p in folder.iterdir() if not p.name.startswith(".")), key=lambda p: (not p.is_dir(), p.name.lower()))
        return {
            "path": "" if folder == self.root else str(folder.relative_to(self.root)),
            "entries": [
                {"name": p.name, "path": str(p.relative_to(self.root)), "folder": p.is_dir(), "bytes": None if p.is_dir() else p.stat().st_size}
                for p in entries
            ],
        }

    def open(self, path: str | Path, reference: str | Path | None = None) -> Study:
        """Open the image at ``path`` (inside the root) as a new study, with an optional reference."""
        source = self.resolve(path)
        reference_path = None if reference is None else self.resolve(reference)
        if not source.exists():
            raise InputError(source, "does not exist")
        study_id = f"s{next(self._ids)}"
        if not holds_kspace(source):
            return self._add(study_id, source, reference_path)
        preview = kspace_preview(source, self.workdir / f"{study_id}-zero-filled.nii.gz")
        return self._add(study_id, source, reference_path, preview)

    def _add(self, study_id: str, source: Path, reference: Path | None, preview: Path | None = None) -> Study:
        study = Study(study_id, source, self.workdir, self.cache, preview=preview, nonfinite=self.nonfinite)
        if reference is not None:
            study.set_reference(reference)
        self.studies[study.id] = study
        return study

    def study(self, study_id: str) -> Study:
        try:
            return self.studies[study_id]
        except KeyError:
            raise LookupError(f"no study {study_id!r}") from None

    def list_studies(self) -> list[dict[str, Any]]:
        """The open studies, oldest first (:meth:`Study.describe`), for a page that was reloaded."""
        return [study.describe() for study in list(self.studies.values())]

    def close(self, study_id: str) -> None:
        """Forget the study ``study_id``: its images leave memory and its waiting or running job is cancelled
        (its result files stay in the work folder)."""
        self.study(study_id)
        for job in self.jobs(study_id):
            self.job(job["id"]).cancel()
        self.studies.pop(study_id, None)
        self.cache.drop(lambda key: isinstance(key, tuple) and key[0] == study_id)

    def set_reference(self, study_id: str, path: str | Path | None) -> Study:
        study = self.study(study_id)
        study.set_reference(None if path in (None, "") else self.resolve(path))  # type: ignore[arg-type]
        return study

    def run(self, study_id: str, operation: str, values: Mapping[str, Any]) -> Result:
        """Run ``operation`` on the study as a :class:`Job` (after the one running now, if any); its result.

        Raises:
            Cancelled: the job was cancelled (:meth:`cancel`) before it finished.
        """
        study = self.study(study_id)
        study.prepare(operation, values, self.resolve)  # a bad form fails now, not after the queue
        job = self._new_job(study_id, operation)
        try:
            while not self._running.acquire(timeout=0.1):
                job.check()
            try:
                job.check()
                job.state = "running"
                with reporting(job):
                    result = study.run(operation, values, self.resolve)
            finally:
                self._running.release()
        except Cancelled:
            job.state = "cancelled"
            raise
        except BaseException as error:
            job.state, job.error = "failed", str(error)
            raise
        job.state, job.result = "done", result.id
        return result

    def _new_job(self, study_id: str, operation: str) -> Job:
        with self._state:
            job = Job(f"j{next(self._job_ids)}", study_id, operation)
            self._jobs[job.id] = job
            finished = [key for key, old in self._jobs.items() if not old.active]
            for key in finished[: max(0, len(finished) - KEPT_JOBS)]:
                del self._jobs[key]
            return job

    def jobs(self, study_id: str | None = None, active: bool = True) -> list[dict[str, Any]]:
        """The jobs (of the study ``study_id``; only the waiting and running ones unless ``active`` is false)."""
        with self._state:
            chosen = [job for job in self._jobs.values() if (study_id is None or job.study == study_id) and (job.active or not active)]
        return [job.describe() for job in chosen]

    def job(self, job_id: str) -> Job:
        try:
            return self._jobs[job_id]
        except KeyError:
            raise LookupError(f"no job {job_id!r}") from None

    def cancel(self, job_id: str) -> dict[str, Any]:
        """Cancel the job ``job_id`` (:meth:`Job.cancel`); its description."""
        job = self.job(job_id)
        job.cancel()
        return job.describe()

    def continue_from(self, study_id: str, result_id: str) -> Study:
        """A new study whose input is the result ``result_id``. Its reference is the study's; when the study has
        none and the result is a degradation, the study's input (the clean image it was degraded from)."""
        study = self.study(study_id)
        if result_id not in study.results:
            raise LookupError(f"no result {result_id!r} in study {study_id}")
        result = study.results[result_id]
        reference = study.reference_path
        if reference is None and result.operation.startswith(DEGRADE_PREFIX):
            reference = study.path
        return self._add(f"s{next(self._ids)}", result.path, reference)

    @staticmethod
    def operations() -> list[dict[str, Any]]:
        return [operation.describe() for operation in OPERATIONS.values()]


__all__ = [
    "OPERATIONS", "Cancelled", "ImageCache", "Job", "Operation", "Parameter", "Result", "Study", "Viewer", "display_plane",
    "output_suffix", "window_png",
]  # fmt: skip
