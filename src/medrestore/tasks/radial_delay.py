"""Gradient delays of radial k-space: estimate, check, decide, report (in the input's axes).

* :func:`check_kspace_delay` — the checked decision of
  :func:`~medrestore.physics.mri.delay_estimation.estimate_delay_checked` on 2-D radial or
  stack-of-stars k-space (its ``kz = 0`` partition), with a one-line warning on stderr when the
  decision departs from the primary estimator (a fallback to the other estimator or to no
  correction).
* :func:`estimate_delay_file` — ``medrestore estimate-delay``: the decision, every estimate and
  its fit quality, and, for simulated data, the errors against the simulated delay.
* :func:`delay_in_input_axes` — BART input reports delays in ``bart traj -q``'s axes.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medrestore.core.errors import InputError
from medrestore.core.kspace import KSpace
from medrestore.io import read_kspace
from medrestore.io.values import warn
from medrestore.physics.mri.delay_estimation import (
    ESTIMATORS, DelayDecision, DelayEstimate, estimate_delay, estimate_delay_checked,
)
from medrestore.physics.mri.trajectory import GradientDelay, has_full_spokes

__all__ = [
    "DELAY_CORRECTIONS", "check_kspace_delay", "decision_report", "delay_axes", "delay_from_values", "delay_in_input_axes",
    "estimate_delay_file", "estimate_kspace_delay", "is_stack_of_stars", "radial_plane",
]

DELAY_CORRECTIONS = (*ESTIMATORS, "none")
"""``auto`` (RING checked by AC-adaptive), ``ring``, ``ac-adaptive`` or ``none``."""


def is_stack_of_stars(kspace: KSpace) -> bool:
    """Whether ``kspace`` is stack-of-stars ``(coils, partitions, spokes, readout)`` with a ``(P, S, R, 3)`` trajectory."""
    return (not kspace.is_cartesian and kspace.data.ndim == 4 and kspace.trajectory.shape[-1] == 3
            and len(kspace.image_shape) == 3)


def radial_plane(kspace: KSpace) -> tuple[torch.Tensor, torch.Tensor]:
    """``(data (coils, spokes, readout), trajectory (spokes, readout, 2))`` of 2-D radial k-space.

    Stack-of-stars k-space ``(coils, partitions, spokes, readout)`` gives its central partition
    (``kz = 0``: the radial k-space of the projection along z, the strongest signal).
    """
    source = kspace.metadata.get("source_path")
    if kspace.is_cartesian:
        raise InputError(source, "the k-space is Cartesian; gradient delays concern radial (non-Cartesian) data")
    if is_stack_of_stars(kspace):
        centre = kspace.data.shape[1] // 2
        return kspace.data[:, centre], kspace.trajectory[centre, ..., 1:]
    if kspace.data.ndim != 3 or kspace.trajectory.shape[-1] != 2 or len(kspace.image_shape) != 2:
        raise InputError(source, f"expected 2-D radial (coils, spokes, readout) or stack-of-stars (coils, partitions, "
                                 f"spokes, readout) k-space, got shape {tuple(kspace.data.shape)}")
    return kspace.data, kspace.trajectory


def estimate_kspace_delay(kspace: KSpace, method: str = "ring") -> DelayEstimate:
    """One estimator's delay of radial k-space (``method`` ``ring`` or ``ac-adaptive``), unchecked."""
    data, trajectory = radial_plane(kspace)
    try:
        return estimate_delay(data, trajectory, method)
    except ValueError as error:
        raise InputError(kspace.metadata.get("source_path"), str(error)) from None


def check_kspace_delay(kspace: KSpace, method: str = "auto") -> DelayDecision:
    """The checked decision of ``method`` (:data:`DELAY_CORRECTIONS` but ``none``); warns on stderr when it falls back.

    Raises :class:`InputError` for Cartesian k-space, centre-out spokes or an unknown method.
    """
    source = kspace.metadata.get("source_path")
    if method not in ESTIMATORS:
        raise InputError(source, f"unknown delay estimator {method!r}; expected one of {', '.join(ESTIMATORS)}")
    data, trajectory = radial_plane(kspace)
    if not has_full_spokes(trajectory):
        raise InputError(source, "delay estimation needs full spokes through the k-space centre (centre-out spokes given)")
    decision = estimate_delay_checked(data, trajectory, method)
    if decision.fallback:
        warn(source, f"gradient delay: {decision.reason}")
    return decision


def decision_report(metadata: Mapping[str, Any], decision: DelayDecision) -> dict[str, Any]:
    """``decision.to_dict()`` with every delay in the input's axes (:func:`delay_in_input_axes`)."""
    report = decision.to_dict()
    for entry, estimate in zip(report["estimates"], decision.estimates):  # type: ignore[arg-type]
        entry["delay"] = [round(v, 5) for v in delay_in_input_axes(metadata, estimate.delay).as_tuple()]
    report["delay_axes"] = delay_axes(metadata)
    return report


def _simulated_delay(metadata: Mapping[str, Any]) -> GradientDelay | None:
    simulation = metadata.get("simulation")
    values = simulation.get("delay") if isinstance(simulation, dict) else None
    return None if values is None else GradientDelay(*values)


def estimate_delay_file(input_path: str | Path, method: str = "auto", trajectory: str | Path | None = None) -> dict[str, Any]:
    """Read radial k-space (BART k-space with its ``trajectory`` file), decide its delay correction, report.

    The report holds the applied delay (``delay_x``, ``delay_y``, ``delay_xy``; ``None`` when
    no correction is safe) and the decision (every estimate with its fit quality, the agreement
    and the reason), delays in the input's axes; with simulated data also ``rms_error`` of
    each estimate and of the decision (no correction: the simulated delay's own size).
    """
    kspace = read_kspace(input_path, trajectory)
    start = time.perf_counter()
    decision = check_kspace_delay(kspace, method)
    seconds = time.perf_counter() - start
    applied = decision.applied
    reported = None if applied is None else delay_in_input_axes(kspace.metadata, applied.delay)
    report: dict[str, Any] = {
        "input": str(input_path), "method": method, "applied": None if applied is None else applied.method,
        "delay_x": None if reported is None else reported.x, "delay_y": None if reported is None else reported.y,
        "delay_xy": None if reported is None else reported.xy, "delay_axes": delay_axes(kspace.metadata),
        "pairs": None if applied is None else applied.equations, "residual": None if applied is None else applied.residual,
        "decision": decision_report(kspace.metadata, decision), "seconds": round(seconds, 3),
    }
    simulated = _simulated_delay(kspace.metadata)
    if simulated is not None:
        report["simulated_delay"] = list(simulated.as_tuple())
        report["rms_error"] = (applied.delay if applied is not None else GradientDelay()).error(simulated)
        for entry, estimate in zip(report["decision"]["estimates"], decision.estimates):
            entry["rms_error"] = round(estimate.delay.error(simulated), 5)
    return report


def delay_from_values(values: np.ndarray | list[float]) -> GradientDelay:
    """A :class:`GradientDelay` from 2 (x, y) or 3 (x, y, xy) numbers."""
    values = [float(v) for v in values]
    if len(values) not in (2, 3):
        raise InputError(None, f"a delay is 2 (x y) or 3 (x y xy) numbers, got {len(values)}")
    return GradientDelay(*values)


def delay_axes(metadata: Mapping[str, Any]) -> str:
    """``"bart"`` for BART input (delays in ``bart traj -q``'s axes), else ``"medrestore"``."""
    return "bart" if metadata.get("delay_axes") == "bart" else "medrestore"


def delay_in_input_axes(metadata: Mapping[str, Any], delay: GradientDelay) -> GradientDelay:
    """A delay in medrestore's axes expressed in the axes of the input file, and back (the map is its own inverse).

    medrestore's :class:`GradientDelay` ``x`` acts along the trajectory's last grid axis (``kx``).
    BART's ``traj -q DX:DY:DXY`` builds ``d = S·(cos φ, sin φ)`` with ``S = [[DX, DXY], [DXY, DY]]``
    but stores the spoke as ``(c0, c1) = (d₁ + t sin φ, d₀ + t cos φ)``: ``DX`` moves samples
    along coordinate 1 (``PHS1``, our ``ky``) and ``DY`` along coordinate 0 (``READ``, our
    ``kx``). So for BART input (``metadata["delay_axes"] == "bart"``) ``(DX, DY, DXY) = (y, x, xy)``:
    the reported numbers are what ``bart traj -q`` takes and ``bart estdelay`` prints (samples).
    (Without ``-O`` BART keeps only the part of ``d`` along the spoke, ``(aᵀSa)·a``; with it, the
    whole ``S·a``, medrestore's model. RING fits both and reports which, ``model``.)
    """
    if delay_axes(metadata) == "bart":
        return GradientDelay(delay.y, delay.x, delay.xy)
    return delay
