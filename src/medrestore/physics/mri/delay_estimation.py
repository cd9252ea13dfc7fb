"""Gradient-delay estimation from radial data alone: RING, AC-adaptive, and the checked default.

Both estimators find the symmetric delay matrix ``S = [[x, xy], [xy, y]]`` (readout samples)
of :class:`~medrestore.physics.mri.trajectory.GradientDelay` from multi-coil data
``(coils, spokes, readout)`` on a nominal 2-D radial trajectory with full spokes:

* :func:`~medrestore.physics.mri.delay_ring.estimate_delay_ring` — RING (Rosenzweig, Holme &
  Uecker, MRM 81(3), 2019): crossings of spoke pairs; exact under both delay models (every
  sample moved by ``S n``, or only along the spoke), it picks the one that fits.
* :func:`~medrestore.physics.mri.delay_ac_adaptive.estimate_delay_ac_adaptive` — AC-adaptive
  (Block & Uecker, ISMRM 2011): shifts between antiparallel spokes; exact when samples move
  along the spoke only, biased in proportion to the anisotropy of ``S`` otherwise, and only
  for spokes over 360°.

``auto`` (:func:`estimate_delay_checked`) runs both and applies :func:`decide_delay`: RING is
used when its own fit is sound and AC-adaptive, when it is sound too, agrees with it; when RING
is unsound AC-adaptive is used if it is sound; otherwise — both unsound, or both sound and in
disagreement, where the data cannot tell which is wrong — no correction is applied, whose
error is at most the delay itself rather than an arbitrary wrong one. The thresholds
(:data:`DEFAULT_CHECK`) come from the validation in ``benchmarks/radial-delays.md``.
"""

from __future__ import annotations

import dataclasses
import math

import torch

from medrestore.physics.mri.delay_ac_adaptive import estimate_delay_ac_adaptive
from medrestore.physics.mri.delay_ring import estimate_delay_ring
from medrestore.physics.mri.delay_spokes import DelayEstimate

__all__ = [
    "DEFAULT_CHECK", "ESTIMATORS", "DelayCheck", "DelayDecision", "DelayEstimate", "decide_delay", "estimate_delay",
    "estimate_delay_ac_adaptive", "estimate_delay_checked", "estimate_delay_ring",
]

ESTIMATORS = ("auto", "ring", "ac-adaptive")
"""``auto`` = RING checked against AC-adaptive (:func:`decide_delay`)."""


@dataclasses.dataclass(frozen=True)
class DelayCheck:
    """When an estimate is sound and when two estimates agree (samples; see ``benchmarks/radial-delays.md``).

    Attributes:
        max_mismatch: per method, the largest median normalised mismatch of the matched samples
            (:attr:`DelayEstimate.mismatch`) of a sound estimate.
        max_uncertainty: the largest standard error (:attr:`DelayEstimate.uncertainty`) of a sound estimate.
        agreement: two sound estimates agree when their RMS difference is at most
            ``agreement + agreement_per_anisotropy · a`` (``a = √(((x − y)/2)² + xy²)`` of the
            RING estimate: AC-adaptive's bias grows with the anisotropy when every sample moves
            by ``S n``) or ``agreement_sigmas`` times their combined uncertainty, whichever is larger.
    """

    max_mismatch: tuple[tuple[str, float], ...] = (("ring", 0.03), ("ac-adaptive", 0.6))
    max_uncertainty: float = 0.1
    agreement: float = 0.15
    agreement_per_anisotropy: float = 0.1
    agreement_sigmas: float = 3.0

    def mismatch_limit(self, method: str) -> float:
        return dict(self.max_mismatch).get(method, math.inf)


DEFAULT_CHECK = DelayCheck()


@dataclasses.dataclass(frozen=True)
class DelayDecision:
    """What a checked estimation found and which delay (if any) to apply.

    Attributes:
        applied: the estimate to apply, ``None`` for no correction.
        estimates: every estimate computed.
        failures: ``(method, reason)`` of estimators that could not run or whose fit is unsound.
        disagreement: RMS difference of two sound estimates (samples), ``None`` without two.
        threshold: the agreement threshold used (samples), ``None`` without two.
        fallback: whether the decision departs from the first (primary) estimator's estimate.
        reason: one sentence saying why.
    """

    applied: DelayEstimate | None
    estimates: tuple[DelayEstimate, ...]
    failures: tuple[tuple[str, str], ...]
    disagreement: float | None
    threshold: float | None
    fallback: bool
    reason: str

    def to_dict(self) -> dict[str, object]:
        """Plain numbers for reports (delays in medrestore's axes)."""
        return {"applied": None if self.applied is None else self.applied.method,
                "estimates": [estimate.to_dict() for estimate in self.estimates],
                "failures": [{"method": method, "reason": reason} for method, reason in self.failures],
                "disagreement": None if self.disagreement is None else round(self.disagreement, 5),
                "threshold": None if self.threshold is None else round(self.threshold, 5),
                "fallback": self.fallback, "reason": self.reason}


def estimate_delay(data: torch.Tensor, trajectory: torch.Tensor, method: str = "ring") -> DelayEstimate:
    """One estimator's estimate (``method`` ``ring`` or ``ac-adaptive``); ``ValueError`` when it cannot run."""
    if method == "ring":
        return estimate_delay_ring(data, trajectory)
    if method == "ac-adaptive":
        return estimate_delay_ac_adaptive(data, trajectory)
    raise ValueError(f"unknown delay estimator {method!r}; expected ring or ac-adaptive")


def unsound(estimate: DelayEstimate, check: DelayCheck) -> str | None:
    """Why ``estimate``'s fit is unsound under ``check``, or ``None`` when it is sound."""
    limit = check.mismatch_limit(estimate.method)
    if not estimate.mismatch <= limit:
        return f"matched samples disagree (normalised mismatch {estimate.mismatch:.3g} > {limit:g})"
    if not estimate.uncertainty <= check.max_uncertainty:
        return f"uncertain fit (standard error {estimate.uncertainty:.3g} > {check.max_uncertainty:g} samples)"
    return None


def agreement_threshold(primary: DelayEstimate, secondary: DelayEstimate, check: DelayCheck) -> float:
    """The largest RMS difference at which ``primary`` and ``secondary`` agree (see :class:`DelayCheck`)."""
    delay = primary.delay
    anisotropy = math.hypot((delay.x - delay.y) / 2.0, delay.xy)
    spread = check.agreement_sigmas * math.hypot(primary.uncertainty, secondary.uncertainty)
    return max(check.agreement + check.agreement_per_anisotropy * anisotropy, spread)


def decide_delay(
    primary: DelayEstimate | str, secondary: DelayEstimate | str | None, check: DelayCheck = DEFAULT_CHECK,
    names: tuple[str, str] = ("ring", "ac-adaptive"),
) -> DelayDecision:
    """Which delay to apply, given the primary estimate and an optional check (an estimate, or the reason it failed).

    Rules (module notes): sound primary + agreeing or unavailable check → primary; sound primary
    + sound disagreeing check → no correction; unsound primary + sound check → the check;
    neither sound → no correction.
    """
    estimates = tuple(item for item in (primary, secondary) if isinstance(item, DelayEstimate))
    failures = [(name, item if isinstance(item, str) else unsound(item, check))
                for name, item in zip(names, (primary, secondary)) if item is not None]
    failures = [(name, reason) for name, reason in failures if reason is not None]
    sound = {estimate.method: estimate for estimate in estimates if unsound(estimate, check) is None}
    first, second = sound.get(names[0]), sound.get(names[1]) if secondary is not None else None
    if first is not None and second is not None:
        difference = first.delay.error(second.delay)
        threshold = agreement_threshold(first, second, check)
        if difference <= threshold:
            return DelayDecision(first, estimates, tuple(failures), difference, threshold, False,
                                 f"{names[0]} and {names[1]} agree within {threshold:.3g} samples")
        return DelayDecision(None, estimates, tuple(failures), difference, threshold, True,
                             f"{names[0]} and {names[1]} disagree by {difference:.3g} samples (> {threshold:.3g}); not corrected")
    if first is not None:
        return DelayDecision(first, estimates, tuple(failures), None, None, False, f"{names[0]} used; no check available")
    why = "; ".join(f"{name}: {reason}" for name, reason in failures)
    if second is not None:
        return DelayDecision(second, estimates, tuple(failures), None, None, True, f"{why}; {names[1]} used instead")
    return DelayDecision(None, estimates, tuple(failures), None, None, True, f"{why}; not corrected")


def _attempt(data: torch.Tensor, trajectory: torch.Tensor, method: str) -> DelayEstimate | str:
    try:
        return estimate_delay(data, trajectory, method)
    except ValueError as error:
        return str(error)


def estimate_delay_checked(
    data: torch.Tensor, trajectory: torch.Tensor, method: str = "auto", check: DelayCheck = DEFAULT_CHECK
) -> DelayDecision:
    """The decision of ``method``: ``auto`` = RING checked by AC-adaptive; ``ring``/``ac-adaptive`` = that one, checked by its own fit.

    ``data (coils, spokes, readout)``, ``trajectory (spokes, readout, 2)`` (nominal, full spokes).
    Raises ``ValueError`` for an unknown method.
    """
    if method not in ESTIMATORS:
        raise ValueError(f"unknown delay estimator {method!r}; expected one of {', '.join(ESTIMATORS)}")
    if method == "auto":
        return decide_delay(_attempt(data, trajectory, "ring"), _attempt(data, trajectory, "ac-adaptive"), check)
    other = "ac-adaptive" if method == "ring" else "ring"
    return decide_delay(_attempt(data, trajectory, method), None, check, (method, other))
