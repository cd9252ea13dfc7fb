"""Physics: forward models and noise models.

Degradations (noise, blur + downsampling) come in three tiers: pure functions in
:mod:`~medrestore.physics.noise` and :mod:`~medrestore.physics.blur`, deterministic transforms
and ``Random*`` samplers in :mod:`~medrestore.physics.degradations`, which also holds the
catalogue (:func:`~medrestore.physics.degradations.build_degradation`).
"""

from medrestore.physics.degradations import (
    DEGRADATION_KINDS,
    BlurDownsample,
    Compose,
    Degradation,
    GaussianNoise,
    PoissonNoise,
    RandomBlurDownsample,
    RandomDegradation,
    RandomGaussianNoise,
    RandomPoissonNoise,
    RandomRicianNoise,
    RandomSpeckle,
    RicianNoise,
    Speckle,
    build_degradation,
    degradation_from_record,
)

__all__ = [
    "DEGRADATION_KINDS",
    "BlurDownsample",
    "Compose",
    "Degradation",
    "GaussianNoise",
    "PoissonNoise",
    "RandomBlurDownsample",
    "RandomDegradation",
    "RandomGaussianNoise",
    "RandomPoissonNoise",
    "RandomRicianNoise",
    "RandomSpeckle",
    "RicianNoise",
    "Speckle",
    "build_degradation",
    "degradation_from_record",
]
