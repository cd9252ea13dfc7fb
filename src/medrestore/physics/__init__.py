"""Physics: forward models and noise models.

Degradations (noise, blur + downsampling) come in three tiers: pure functions in
:mod:`~medrestore.physics.noise` and :mod:`~medrestore.physics.blur`, deterministic transforms
and ``Random*`` samplers in :mod:`~medrestore.physics.degradations`, which also holds the
catalogue (:func:`~medrestore.physics.degradations.build_degradation`).

MRI scanner appearance: :mod:`~medrestore.physics.scanner` (contrast curve, correlated Rician
noise, bias field, blur and a local hyperintensity of a 1.5 T-like and a 3 T-like scanner),
catalogued as the ``scanner`` degradation.

Nuclear medicine: :mod:`~medrestore.physics.gamma_camera` (collimators, isotopes, system
resolution and sensitivity, planar acquisitions), :mod:`~medrestore.physics.paper_phantom`
(printed radioactive-ink phantoms and their paired acquisitions) and
:mod:`~medrestore.physics.calibration` (look-up-table count calibration of a teacher image).
"""

from medrestore.physics.degradations import (
    DEGRADATION_KINDS,
    BlurDownsample,
    Compose,
    Degradation,
    GammaCamera,
    GaussianNoise,
    PoissonNoise,
    RandomBlurDownsample,
    RandomDegradation,
    RandomGammaCamera,
    RandomGaussianNoise,
    RandomPoissonNoise,
    RandomRicianNoise,
    RandomSpeckle,
    RicianNoise,
    ScannerAppearance,
    Speckle,
    build_degradation,
    degradation_from_record,
)

__all__ = [
    "DEGRADATION_KINDS",
    "BlurDownsample",
    "Compose",
    "Degradation",
    "GammaCamera",
    "GaussianNoise",
    "PoissonNoise",
    "RandomBlurDownsample",
    "RandomDegradation",
    "RandomGammaCamera",
    "RandomGaussianNoise",
    "RandomPoissonNoise",
    "RandomRicianNoise",
    "RandomSpeckle",
    "RicianNoise",
    "ScannerAppearance",
    "Speckle",
    "build_degradation",
    "degradation_from_record",
]
