"""Denoise an image file with a trained model: one entry point, one workflow per modality.

:func:`denoise_file` reads the input, dispatches on ``modality`` to the workflow registered in
:data:`WORKFLOWS` and writes the result atomically in the input's dtype and intensity range.
A new modality (MRI denoising) is one more function with the signature of
:func:`denoise_oct` and one more entry in :data:`WORKFLOWS` and :data:`DEFAULT_MODELS`.

OCT (``modality="oct"``): the input is one B-scan or a stack of B-scans (multi-page TIFF).
Values are brought to the 8-bit scale the OCT models are trained on
(:func:`medrestore.data.oct.eight_bit_scale`: 16-bit full range → 0–255), restored, clipped to
0–255 and mapped back, so 8- and 16-bit files come out in their own dtype and range. With
``frames`` (neighbouring B-scans of the same location, same shape as the input) the input is
stacked with them as channels for a multi-frame model, each neighbour first moved onto the
input's grid by the integer translation that best aligns it
(:func:`medrestore.data.oct.align_frames`). Images larger than
:data:`WHOLE_IMAGE_PIXELS` are processed in overlapping tiles.

``model`` is a zoo name (``medrestore models``), the path of a training checkpoint
(``last.pt``/``best.pt`` of ``medrestore train``), or several of these joined by ``+``: a model
ensemble made at run time, whose output is the mean of its members' outputs,
``ŷ = (1/M) Σ_m f_m(x)`` (:class:`~medrestore.inference.AveragedPredictor`; an ensemble of one
architecture can also be published as one zoo model, as the default is).
``None`` takes the modality's default (:data:`DEFAULT_MODELS`, or :data:`DEFAULT_MULTIFRAME_MODELS`
when frames are given).

With a shipped OCT model each B-scan is first checked against what the networks learnt
(:mod:`medrestore.inference.oct_domain`): a dimmer B-scan is mapped onto the training brightness and back, and
a nearly speckle-free one (an averaged B-scan) is restored by non-local means instead; ``OUT.json`` lists
each B-scan's check.

Every call writes its record beside the output (``OUT.json``, :func:`denoise_record`): the method and
model run, σ per volume for MRI, timings, and why ``auto`` chose what it ran.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medrestore.core.cache import cached_in_run
from medrestore.core.device import select_device
from medrestore.core.errors import InputError, MedrestoreError
from medrestore.core.files import guard_output, write_record
from medrestore.core.image import Image
from medrestore.data.normalisation import normalisation_from_record
from medrestore.data.oct import EIGHT_BIT_MAX, align_frames, read_bscans
from medrestore.inference import AveragedPredictor, Predictor, names_model_file
from medrestore.inference.oct_domain import BScanCheck, check_bscan, classical_bscan, from_domain, to_domain
from medrestore.tasks.denoise_mri import MRIDenoiseResult, denoise_mri_file, parse_sigma
from medrestore.io import cast_to_dtype, write_image
from medrestore.zoo import load_pretrained

__all__ = [
    "DEFAULT_MODELS",
    "DEFAULT_MULTIFRAME_MODELS",
    "WORKFLOWS",
    "Denoiser",
    "DenoiseResult",
    "denoise_file",
    "denoise_oct",
    "restore_bscans",
    "input_frames",
    "load_denoiser",
    "MODALITIES",
]

DEFAULT_MODELS: dict[str, str] = {"oct": "resunet-ensemble-oct-duke"}
"""The shipped single-frame model used when no ``model`` is given, per modality."""
DEFAULT_MULTIFRAME_MODELS: dict[str, str] = {"oct": "multiframe-tone-oct-duke"}
"""The shipped model used when neighbouring ``frames`` are given, per modality."""
SHIPPED_OCT_SUFFIX = "-oct-duke"
"""The shipped OCT models' names end so (trained on the Duke/Bioptigen set): their inputs are checked against
:mod:`medrestore.inference.oct_domain`; a user's checkpoint is run as given."""
WHOLE_IMAGE_PIXELS = 2048 * 2048
"""Images up to this many pixels go through the network in one pass; larger ones are tiled."""
TILE = (512, 512)
TILE_OVERLAP = 0.25


@dataclasses.dataclass(frozen=True)
class DenoiseResult:
    """What :func:`denoise_file` did.

    Attributes:
        output: the written file.
        modality: the workflow used.
        model: the zoo name or checkpoint path of the model.
        images: B-scans (slices) restored.
        frames: frames stacked per input (1 for single-frame models).
        seconds_per_image: mean wall time of the network per B-scan (slice).
        domain: OCT with a shipped network: each B-scan against the network's training domain
            (:class:`~medrestore.inference.oct_domain.BScanCheck` records); ``None`` for a user's checkpoint.
        classical_images: B-scans restored by the classical method instead (outside the domain).
        brightened_images: B-scans mapped onto the training brightness for the network.
    """

    output: Path
    modality: str
    model: str
    images: int
    frames: int
    seconds_per_image: float
    domain: list[dict[str, Any]] | None = None
    classical_images: int = 0
    brightened_images: int = 0


Denoiser = Predictor | AveragedPredictor
"""One network (:class:`Predictor`) or the mean of several (:class:`AveragedPredictor`)."""


def _member_names(name: str) -> tuple[str, ...]:
    """The members of ``name``: ``A+B+…`` split at ``+`` (unless a file has that name), or ``name`` itself."""
    if "+" in name and not Path(name).is_file():
        return tuple(name.split("+"))
    return (name,)


def _load_network(name: str, modality: str, target: torch.device) -> Predictor:
    """One zoo model or checkpoint as a :class:`Predictor` (zoo models run on whole images)."""
    if names_model_file(name):
        return Predictor.from_checkpoint(name, target)
    network, card = load_pretrained(name, target)
    if card.task != "denoise" or card.modality not in (modality, "any"):
        raise MedrestoreError(f"zoo model {name!r} is a {card.modality} {card.task} model, not a {modality} denoiser")
    return Predictor(network, normalisation_from_record(card.normalisation), window=None, device=target)


def input_frames(denoiser: Denoiser) -> int:
    """How many frames (input channels) ``denoiser`` takes: 1 for single-frame models."""
    first = denoiser.predictors[0] if isinstance(denoiser, AveragedPredictor) else denoiser
    return int(getattr(first.model, "in_channels", 1))


@cached_in_run
def load_denoiser(model: str | None, modality: str, multi_frame: bool, device: str = "auto") -> tuple[Denoiser, str]:
    """The denoiser for ``model`` (zoo name, checkpoint path, model ensemble; ``None``: the default) and its label.

    Zoo models run on whole images (tiling is decided per image by the caller); checkpoints
    keep the tiling settings they were trained with. A model ensemble's members must all take
    the same number of frames.

    Raises:
        MedrestoreError: unknown zoo name, a zoo model made for another task or modality, or
            ensemble members taking different numbers of frames.
        InputError: an unreadable checkpoint.
    """
    defaults = DEFAULT_MULTIFRAME_MODELS if multi_frame else DEFAULT_MODELS
    name = model if model is not None else defaults[modality]
    target = select_device(device)
    members = _member_names(name)
    networks = [_load_network(member, modality, target) for member in members]
    if len(networks) == 1:
        return networks[0], name
    counts = [input_frames(network) for network in networks]
    if len(set(counts)) > 1:
        described = ", ".join(f"{member} takes {count}" for member, count in zip(members, counts))
        raise MedrestoreError(f"the members of model ensemble {name!r} take different numbers of frames: {described}")
    return AveragedPredictor(networks), name


def _frame_stacks(path: Path, frames: Sequence[str | Path]) -> tuple[torch.Tensor, Image, float]:
    """Input and neighbours as ``(B, F, H, W)`` on the 8-bit scale, the input :class:`Image` and its scale."""
    bscans, image, scale = read_bscans(path)
    stacks = [bscans]
    for frame_path in frames:
        neighbour, _, _ = read_bscans(frame_path)
        if neighbour.shape != bscans.shape:
            raise InputError(frame_path, f"has B-scans of shape {tuple(neighbour.shape)}; the input {path} has {tuple(bscans.shape)}")
        stacks.append(neighbour)
    return torch.stack(stacks, dim=1), image, scale


def _restored_image(image: Image, restored: torch.Tensor) -> Image:
    """``restored`` ``(B, H, W)`` back in the layout of ``image`` (inverse of :func:`~medrestore.data.oct.bscan_stack`)."""
    if image.spatial_ndim == 2 and image.data.ndim == 2:
        return image.with_data(restored[0])
    if image.spatial_ndim == 2:
        return image.with_data(restored.movedim(0, -1).contiguous())
    return image.with_data(restored)


def _tiled(denoiser: Denoiser, shape: tuple[int, ...]) -> Denoiser:
    """``denoiser`` itself, or a copy tiling images above :data:`WHOLE_IMAGE_PIXELS` (each member of an ensemble)."""
    if isinstance(denoiser, AveragedPredictor):
        return AveragedPredictor([_tiled(member, shape) for member in denoiser.predictors])
    if denoiser.window is not None or shape[0] * shape[1] <= WHOLE_IMAGE_PIXELS:
        return denoiser
    return Predictor(denoiser.model, denoiser.normalisation, TILE, TILE_OVERLAP, denoiser.device, denoiser.blend, denoiser.batch_size)


def _check_frame_count(path: Path, label: str, expected: int, given: int) -> None:
    """Refuse a stack of ``given`` frames for a model taking ``expected``."""
    if given == expected:
        return
    if expected == 1:
        raise InputError(path, f"model {label!r} takes a single frame; use a multi-frame model with --frames")
    raise InputError(
        path, f"model {label!r} takes {expected} frame(s) (the input and {expected - 1} neighbours); got {given}: pass {expected - 1} --frames"
    )


def restore_bscans(runner: Denoiser, stacks: torch.Tensor, guarded: bool) -> tuple[list[torch.Tensor], list[BScanCheck | None]]:
    """Restore each B-scan of ``stacks`` ``(B, F, H, W)`` (0–255; frames after the first are aligned onto it).

    ``guarded``: each B-scan is checked against the shipped networks' domain first
    (:func:`~medrestore.inference.oct_domain.check_bscan`): brought to the training brightness for the network and
    back, or restored by the classical method where it is nearly free of speckle. Returns the ``(H, W)`` outputs and
    the checks (``None`` unguarded).
    """
    outputs: list[torch.Tensor] = []
    checks: list[BScanCheck | None] = []
    for stack in stacks:
        aligned = align_frames(stack)
        check = check_bscan(aligned[0]) if guarded else None
        if check is not None and not check.network:
            outputs.append(classical_bscan(aligned[0]))
        else:
            restored = runner.predict(aligned if check is None else to_domain(aligned, check)).reshape(stack.shape[1:])
            outputs.append(restored if check is None else from_domain(restored, check))
        checks.append(check)
    return outputs, checks


def denoise_oct(
    input_path: Path, output_path: Path, model: str | None, frames: Sequence[str | Path], device: str
) -> DenoiseResult:
    """The OCT workflow of :func:`denoise_file` (see the module docstring)."""
    predictor, label = load_denoiser(model, "oct", bool(frames), device)
    stacks, image, scale = _frame_stacks(input_path, frames)
    _check_frame_count(input_path, label, input_frames(predictor), int(stacks.shape[1]))
    runner = _tiled(predictor, tuple(stacks.shape[2:]))
    guarded = all(part.endswith(SHIPPED_OCT_SUFFIX) for part in label.split("+"))  # trained on the Duke device
    started = time.perf_counter()
    outputs, checks = restore_bscans(runner, stacks, guarded)
    seconds = (time.perf_counter() - started) / stacks.shape[0]
    restored = torch.stack(outputs).clamp(0.0, EIGHT_BIT_MAX) / scale
    dtype = str(image.metadata.get("dtype", "float32"))
    values = torch.from_numpy(cast_to_dtype(restored.numpy().astype(np.float64), dtype).astype(np.float32))
    written = write_image(_restored_image(image, values).with_metadata(derivation="Restored"), output_path, dtype=dtype)
    domain = None if not guarded else [check.to_record() for check in checks if check is not None]
    return DenoiseResult(Path(written), "oct", label, int(stacks.shape[0]), int(stacks.shape[1]), seconds, domain,
                         sum(1 for c in checks if c is not None and not c.network),
                         sum(1 for c in checks if c is not None and c.network and c.gain != 1.0))  # fmt: skip


Workflow = Callable[[Path, Path, str | None, Sequence[str | Path], str], DenoiseResult]
WORKFLOWS: dict[str, Workflow] = {"oct": denoise_oct}
"""Modality → workflow ``(input, output, model, frames, device) → DenoiseResult``."""
MODALITIES = (*WORKFLOWS, "mri")
"""Every modality :func:`denoise_file` accepts (``mri``: :mod:`medrestore.tasks.denoise_mri`)."""


def denoise_file(
    input: str | Path,
    output: str | Path,
    modality: str,
    model: str | None = None,
    frames: Sequence[str | Path] | None = None,
    device: str = "auto",
    method: str = "auto",
    sigma: str | float | None = "auto",
    nonfinite: str = "refuse",
) -> DenoiseResult | MRIDenoiseResult:
    """Denoise the image file ``input`` into ``output`` with the ``modality`` workflow.

    Args:
        input: image file (TIFF — multi-page for a stack —, PNG, NIfTI, DICOM, NumPy).
        output: destination; its extension picks the format; written atomically in the
            input's dtype (the input is never modified).
        modality: a key of :data:`WORKFLOWS` (``"oct"``).
        model: zoo name or checkpoint path; ``None`` for the modality's default.
        frames: neighbouring frames of the same location for a multi-frame model.
        device: ``auto``, ``cpu``, ``cuda``…
        method: MRI only: ``auto``, ``nlm``, ``nlm-wiener``, ``pri-nlm``, ``unet``, ``unet3d``, ``unet3d-nlm``, ``gan``, or for 4-D
            series ``mppca`` or ``patch2self``.
        sigma: MRI only: ``"auto"`` (estimated per volume) or the noise σ in image units.
        nonfinite: MRI only: NaN/±Inf policy of the reader, ``"refuse"`` or ``"zero"``
            (:mod:`medrestore.io.values`); OCT B-scans are read with ``"refuse"``.

    Raises:
        MedrestoreError: unknown modality or model.
        InputError: unreadable input, frames that do not match it, or a model/frames mismatch.

    Example:
        >>> denoise_file("bscan.tif", "bscan-denoised.tif", "oct")  # doctest: +SKIP
    """
    if modality not in MODALITIES:
        raise MedrestoreError(f"no denoising workflow for modality {modality!r}; available: {', '.join(MODALITIES)}")
    input_path, output_path = Path(input), Path(output)
    if not input_path.exists():
        raise InputError(input_path, "input file does not exist")
    if modality == "mri":
        if frames:
            raise InputError(input_path, "MRI denoising takes --method, --sigma and --model, not --frames")
        guard_output(output_path, [input_path, model], sidecar=True)  # the record; denoise_mri_file guards the rest
        result: DenoiseResult | MRIDenoiseResult = denoise_mri_file(input_path, output_path, method, parse_sigma(sigma), device, model,
                                                                    nonfinite)
    else:
        guard_output(output_path, [input_path, *(frames or ()), *(_member_names(model) if model else ())], sidecar=True)
        if nonfinite != "refuse":
            raise MedrestoreError(f"--nonfinite {nonfinite} applies to MRI denoising; {modality} images are read as stored")
        result = WORKFLOWS[modality](input_path, output_path, model, tuple(frames or ()), device)
    write_record(result.output, denoise_record(result, input_path, method if modality == "mri" else None))
    return result


def denoise_record(result: DenoiseResult | MRIDenoiseResult, input_path: Path, requested_method: str | None) -> dict[str, Any]:
    """The record ``denoise`` writes beside its output (``OUT.json``): input, output, the result's fields and, for
    MRI, the method asked for and why ``auto`` ran what it ran (``auto_decision``)."""
    fields = {key: (str(value) if isinstance(value, Path) else value) for key, value in dataclasses.asdict(result).items()}
    record: dict[str, Any] = {"input": str(input_path), **fields}
    if isinstance(result, MRIDenoiseResult):
        decision = record.pop("decision")
        record = {**record, "requested_method": requested_method, "tsnr_gain": result.tsnr_gain}
        if decision is not None:
            record["auto_decision"] = decision
    return record
