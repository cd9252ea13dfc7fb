"""The proximal operator of total variation by the fast gradient projection (FGP) method.

Beck & Teboulle, "Fast gradient-based algorithms for constrained total variation image
denoising and deblurring problems", IEEE TIP 18(11), 2009 (the dual approach of Chambolle,
JMIV 20, 2004, accelerated). ``prox_{w TV}(v) = argmin_x ½‖x − v‖² + w TV(x)`` equals
``v − w Gᴴ p*`` with the dual ``p*`` maximising over ``{‖p_r‖₂ ≤ 1}`` (isotropic) or
``{|p| ≤ 1}`` (anisotropic)::

    p_k   = Proj(r_k + (1 / (‖G‖² w)) G(v − w Gᴴ r_k))
    t_k+1 = (1 + sqrt(1 + 4 t_k²)) / 2,   r_k+1 = p_k + ((t_k − 1)/t_k+1)(p_k − p_k−1)

``G`` is the circular forward difference (:class:`~medrestore.solvers.finite_difference.FiniteDifference`).
Returning the dual lets an outer solver warm-start the next call.
"""

from __future__ import annotations

import torch

from medrestore.solvers.finite_difference import FiniteDifference
from medrestore.solvers.proximal import project_group_ball, project_linf_ball


def tv_proximal(
    image: torch.Tensor,
    weight: float,
    iterations: int = 10,
    isotropic: bool = True,
    dual_start: torch.Tensor | None = None,
    grid_ndim: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``prox_{weight·TV}(image)`` over the trailing ``grid_ndim`` axes of ``image``; returns ``(x, dual)``.

    Args:
        image: ``v``, complex or real, ``(*images, *grid)``.
        weight: ``w ≥ 0``.
        iterations: FGP iterations.
        isotropic: group the differences of a pixel (‖·‖₂) or not (|·|).
        dual_start: warm start for ``p`` (shape ``(*images, ndim, *grid)``), zeros when ``None``.
        grid_ndim: axes differentiated (``None``: all); leading axes are separate images.
    """
    grid_ndim = image.ndim if grid_ndim is None else grid_ndim
    differences = FiniteDifference(tuple(image.shape[image.ndim - grid_ndim :]))
    dual_shape = (*image.shape[: image.ndim - grid_ndim], *differences.output_shape)
    if weight <= 0:
        return image.clone(), torch.zeros(dual_shape, dtype=image.dtype, device=image.device)
    step = 1.0 / (differences.squared_norm_bound() * weight)

    def project(values: torch.Tensor) -> torch.Tensor:
        return project_group_ball(values, 1.0, -grid_ndim - 1) if isotropic else project_linf_ball(values, 1.0)

    dual = torch.zeros(dual_shape, dtype=image.dtype, device=image.device) if dual_start is None else dual_start
    extrapolated, momentum = dual, 1.0
    for _ in range(iterations):
        previous = dual
        dual = project(extrapolated + step * differences.forward(image - weight * differences.adjoint(extrapolated)))
        next_momentum = (1 + (1 + 4 * momentum**2) ** 0.5) / 2
        extrapolated = dual + ((momentum - 1) / next_momentum) * (dual - previous)
        momentum = next_momentum
    return image - weight * differences.adjoint(dual), dual
