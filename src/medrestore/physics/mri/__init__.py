"""MRI physics: linear operators with true adjoints, sampling masks, SENSE, ESPIRiT.

* :mod:`~medrestore.physics.mri.operators` — ``LinearOperator`` (``A(x)``, ``A.H``, ``A @ B``,
  ``A.normal``), identity, pointwise multiplication, the adjoint check, power iteration.
* :mod:`~medrestore.physics.mri.fourier` — centred orthonormal FFT, Cartesian sampling.
* :mod:`~medrestore.physics.mri.sense` — coil expansion, the SENSE operator (any per-coil
  sampling operator: Cartesian now, a NUFFT for radial data), coil combination, zero-filled RSS.
* :mod:`~medrestore.physics.mri.masks` — fastMRI random/equispaced line masks, Poisson-disc.
* :mod:`~medrestore.physics.mri.espirit` — ESPIRiT coil sensitivities.
"""

from medrestore.physics.mri.espirit import EspiritOptions, calibration_region, calibration_shape, espirit_maps
from medrestore.physics.mri.fourier import CartesianSampling, FFTOperator
from medrestore.physics.mri.masks import (
    MASK_KINDS,
    MaskSpec,
    equispaced_line_mask,
    mask_acceleration,
    poisson_disc_mask,
    random_line_mask,
    sample_mask,
)
from medrestore.physics.mri.operators import (
    AdjointOperator,
    ComposedOperator,
    Identity,
    LinearOperator,
    Multiply,
    adjoint_mismatch,
    inner_product,
    lipschitz_constant,
    max_eigenvalue,
)
from medrestore.physics.mri.sense import CoilExpansion, SenseOperator, cartesian_sense, coil_combine, zero_filled_rss

__all__ = [
    "MASK_KINDS",
    "AdjointOperator",
    "CartesianSampling",
    "CoilExpansion",
    "ComposedOperator",
    "EspiritOptions",
    "FFTOperator",
    "Identity",
    "LinearOperator",
    "MaskSpec",
    "Multiply",
    "SenseOperator",
    "adjoint_mismatch",
    "calibration_region",
    "calibration_shape",
    "cartesian_sense",
    "coil_combine",
    "equispaced_line_mask",
    "espirit_maps",
    "inner_product",
    "lipschitz_constant",
    "mask_acceleration",
    "max_eigenvalue",
    "poisson_disc_mask",
    "random_line_mask",
    "sample_mask",
    "zero_filled_rss",
]
