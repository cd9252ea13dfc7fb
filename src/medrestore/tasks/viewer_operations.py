"""The operations the local web viewer offers (:mod:`medrestore.tasks.viewer`): each command's task function on
files, with the form of its parameters.

Every operation is the CLI's own task function (``medrestore denoise --modality mri|oct``, ``superres``,
``harmonize``, ``recon``, ``degrade``), so a result is the file the command would write. A parameter that names
a file (a ``model`` or ``coil_maps``) is resolved inside the viewer's root before the operation runs, unless it is
a zoo name or a keyword (:meth:`Parameter.parse`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from medrestore.core.errors import ConfigError
from medrestore.io.values import CLIPPED_KEY
from medrestore.physics.degradations import DEGRADATION_KINDS, catalogue_entry, parameter_types, required_parameters
from medrestore.tasks.degrade import degrade_file
from medrestore.tasks.denoise import DEFAULT_MODELS, denoise_file
from medrestore.tasks.denoise_mri import METHODS as MRI_METHODS
from medrestore.tasks.harmonize import harmonize_file
from medrestore.tasks.radial import DELAY_CORRECTIONS
from medrestore.tasks.recon import RECON_METHODS, ReconOptions, reconstruct_file
from medrestore.tasks.superres import DEFAULT_METHOD as SUPERRES_DEFAULT
from medrestore.tasks.superres import METHODS as SUPERRES_METHODS
from medrestore.tasks.superres import SuperResolutionRequest, superres_file
from medrestore.zoo.store import in_zoo

DEGRADE_PREFIX = "degrade-"
"""Operations named so are degradations (``medrestore degrade --kind KIND``), not restorations."""
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
    request = SuperResolutionRequest(
        scale=values["scale"], method=values["method"], model=values.get("model"), nonfinite=nonfinite, collimator_from_image=True
    )  # the command's default: the collimator the file names
    record = superres_file(source, output, request)
    summary = {"method": record["method"], "model": record["model"], "scale": record["scale"]}
    camera = record.get("system_response") or {}
    if camera:  # the camera assumed, and where its collimator came from
        summary["camera"] = {key: camera[key] for key in ("collimator", "resolution_mm", "collimator_source", "source") if key in camera}
    return summary | {key: record[key] for key in (CLIPPED_KEY, "refinement_guard") if record.get(key)}


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
        return {"degradation": record["degradation"]} | ({CLIPPED_KEY: record[CLIPPED_KEY]} if CLIPPED_KEY in record else {})

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


__all__ = ["DEGRADE_PREFIX", "OPERATIONS", "Operation", "Parameter", "PathResolver", "Runner"]
