"""MRI physics: linear operators with true adjoints, sampling masks, SENSE, ESPIRiT.

* :mod:`~medrestore.physics.mri.operators` — ``LinearOperator`` (``A(x)``, ``A.H``, ``A @ B``,
  ``A.normal``), identity, pointwise multiplication, the adjoint check, power iteration.
* :mod:`~medrestore.physics.mri.fourier` — centred orthonormal FFT, Cartesian sampling.
* :mod:`~medrestore.physics.mri.sense` — coil expansion, the SENSE operator (any per-coil
  sampling operator: Cartesian now, a NUFFT for radial data), coil combination, zero-filled RSS.
* :mod:`~medrestore.physics.mri.masks` — fastMRI random/equispaced line masks, Poisson-disc.
* :mod:`~medrestore.physics.mri.espirit` — ESPIRiT coil sensitivities (one or several map sets, eigenvalue crop).
* :mod:`~medrestore.physics.mri.trajectory` — radial trajectories (uniform/golden-angle, full/half
  spokes, stack-of-stars) and the gradient-delay model.
* :mod:`~medrestore.physics.mri.nufft` — the NUFFT operator (FINUFFT, true adjoint, autograd).
* :mod:`~medrestore.physics.mri.density` — ramp and Pipe–Menon density compensation.
* :mod:`~medrestore.physics.mri.radial` — simulated coils, radial SENSE, gridding, coil maps from the centre.
* :mod:`~medrestore.physics.mri.delay_estimation` — gradient-delay estimation: RING
  (:mod:`~medrestore.physics.mri.delay_ring`), AC-adaptive (:mod:`~medrestore.physics.mri.delay_ac_adaptive`)
  and the checked decision between them.
"""

from medrestore.physics.mri.espirit import (
    BART_ESPIRIT, EspiritOptions, calibration_region, calibration_shape, espirit_map_sets, espirit_maps,
)
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
from medrestore.physics.mri.delay_estimation import (
    DelayDecision, DelayEstimate, estimate_delay, estimate_delay_ac_adaptive, estimate_delay_checked, estimate_delay_ring,
)
from medrestore.physics.mri.density import pipe_menon_density, ramp_density
from medrestore.physics.mri.nufft import NUFFTOperator, nonuniform_dft
from medrestore.physics.mri.radial import gridding, radial_coil_maps, radial_sense
from medrestore.physics.mri.simulation import birdcage_coil_maps
from medrestore.physics.mri.sense import (
    CoilExpansion, MapSetExpansion, SenseOperator, cartesian_sense, coil_combine, zero_filled_rss,
)
from medrestore.physics.mri.trajectory import (
    GradientDelay,
    RadialSpec,
    delayed_trajectory,
    radial_trajectory,
    spoke_angles,
    stack_of_stars,
)

__all__ = [
    "MASK_KINDS",
    "AdjointOperator",
    "BART_ESPIRIT",
    "CartesianSampling",
    "CoilExpansion",
    "ComposedOperator",
    "DelayDecision",
    "DelayEstimate",
    "EspiritOptions",
    "FFTOperator",
    "GradientDelay",
    "Identity",
    "LinearOperator",
    "MapSetExpansion",
    "MaskSpec",
    "Multiply",
    "NUFFTOperator",
    "RadialSpec",
    "SenseOperator",
    "adjoint_mismatch",
    "birdcage_coil_maps",
    "calibration_region",
    "calibration_shape",
    "cartesian_sense",
    "coil_combine",
    "delayed_trajectory",
    "equispaced_line_mask",
    "espirit_map_sets",
    "espirit_maps",
    "estimate_delay",
    "estimate_delay_ac_adaptive",
    "estimate_delay_checked",
    "estimate_delay_ring",
    "gridding",
    "inner_product",
    "lipschitz_constant",
    "mask_acceleration",
    "max_eigenvalue",
    "nonuniform_dft",
    "pipe_menon_density",
    "poisson_disc_mask",
    "radial_coil_maps",
    "radial_sense",
    "radial_trajectory",
    "ramp_density",
    "random_line_mask",
    "sample_mask",
    "spoke_angles",
    "stack_of_stars",
    "zero_filled_rss",
]
