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
(:class:`~medrestore.tasks.viewer_jobs.ImageCache`); beyond it the least recently used are dropped and read again from their files when
next needed. Closing a study drops its images.

Jobs: an operation runs as a :class:`~medrestore.tasks.viewer_jobs.Job` whose progress (the ``progress``/``track`` marks of
:mod:`medrestore.core.progress` in the task's loops) can be read while it runs, and which can be cancelled: the
next progress mark after :meth:`~medrestore.tasks.viewer_jobs.Job.cancel` stops it
(:class:`~medrestore.tasks.viewer_jobs.Cancelled`), before its output is written. The operations and their
forms: :mod:`medrestore.tasks.viewer_operations`.
"""

from __future__ import annotations

import collections
import dataclasses
import io
import itertools
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import torch
from PIL import Image as PILImage

from medrestore.core.errors import ConfigError, InputError
from medrestore.core.image import Image, planar_stack_axis
from medrestore.core.progress import reporting
from medrestore.io import read_image, read_kspace, write_image
from medrestore.io.common import single_slice_affine
from medrestore.report.figures import to_display_uint8
from medrestore.tasks.evaluate import CONVENTION_NAMES, evaluate_pair
from medrestore.tasks.recon import ReconOptions, reconstruct_file
from medrestore.tasks.viewer_jobs import DEFAULT_MEMORY_BUDGET, KEPT_JOBS, Cancelled, ImageCache, Job, image_bytes
from medrestore.tasks.viewer_operations import DEGRADE_PREFIX, OPERATIONS, Operation, Parameter, PathResolver

WINDOW_PERCENTILES = (0.5, 99.5)
"""Default display window: these percentiles of the study's input (of every k-th voxel, at most about
:data:`WINDOW_SAMPLE` of them)."""
WINDOW_SAMPLE = 2_000_000
KSPACE_SUFFIXES = (".dat", ".h5", ".hdf5", ".mrd", ".cfl", ".hdr")
"""Files with these extensions open as raw k-space; ``.npy``/``.npz`` do when :func:`read_kspace` takes them."""
WRITABLE_SUFFIXES = (".nii.gz", ".nii", ".tif", ".tiff", ".png", ".npy", ".npz", ".dcm", ".nrrd", ".mha")
"""Results keep the input's format when it is one of these; otherwise NIfTI (3-D, 4-D) or TIFF (2-D)."""


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
    counted from the left, posterior or inferior end, whatever order its voxels are stored in (NIfTI, DICOM); a frame
    of a stack without patient geometry (an NM file's views or windows) is shown as stored.

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
    if voxel == 0 and _frames_as_stored(image):  # a camera's frame, shown as the camera stored it
        return volume.select(0, size - 1 - index if flipped else index).detach().cpu().to(torch.float64).numpy()
    plane = volume.select(voxel, size - 1 - index if flipped else index)  # the two other voxel axes, in order
    (first, first_flip), (second, second_flip) = (axes[w] for w in range(3) if w != axis)  # world order
    if first > second:  # voxel order differs from world order
        plane = plane.T
    plane = plane.detach().cpu().to(torch.float64).numpy()
    plane = plane[::-1] if first_flip else plane
    plane = plane[:, ::-1] if second_flip else plane
    return np.ascontiguousarray(np.flipud(plane.T))


def _frames_as_stored(image: Image) -> bool:
    """Whether ``image`` is a stack of frames without patient geometry (an NM DICOM file whose detector gives no
    orientation, an Interfile image): its affine is only the reader's diagonal, so a frame is shown as stored, rows
    down and columns across, rather than turned into a world plane."""
    source = str(image.metadata.get("format", ""))
    return (source.startswith("dicom") and image.metadata.get("dicom_patient_geometry") is False) or source == "interfile"


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


def default_axis(image: Image) -> int:
    """The world axis a volume opens cut across: 2 (axial), or for a scintigram the one across its planar frames
    (:func:`~medrestore.core.image.planar_stack_axis`: the views of a whole-body file, its windows or time frames), so
    that each frame is shown whole rather than as a strip of one row of every frame."""
    if image.spatial_ndim != 3 or image.modality != "nm":
        return 2
    stack = planar_stack_axis(image)
    return next(world for world, (voxel, _) in enumerate(world_axes(image)) if voxel == stack)


def _geometry(image: Image) -> dict[str, Any]:
    shape, spacing = display_shape(image)
    return {
        "shape": list(image.shape), "spatial_ndim": image.spatial_ndim, "frames": image.n_frames, "spacing": list(image.spacing),
        "display_shape": list(shape), "display_spacing": list(spacing), "modality": image.modality,
        "default_axis": default_axis(image),
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
    "DEFAULT_MEMORY_BUDGET", "OPERATIONS", "Cancelled", "ImageCache", "Job", "Operation", "Parameter", "Result", "Study", "Viewer",
    "display_plane", "image_bytes", "output_suffix", "window_png",
]  # fmt: skip
