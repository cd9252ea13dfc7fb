"""Noise models as pure functions: Gaussian, Rician, Poisson (counting) and multiplicative speckle.

All functions take a tensor of any shape, never modify it, and draw every random number from
the ``generator`` argument (a ``torch.Generator`` on the tensor's device), so the same seed
gives the same output. Real inputs may be ``float32`` or ``float64`` and keep their dtype;
complex inputs (``complex64``/``complex128``) are accepted where the model makes sense.

Noise levels are absolute (in image units) unless a function says otherwise;
:func:`resolve_sigma` turns a level relative to the image maximum (the "σ = 3 % of the
maximum" convention of the MRI denoising literature) into an absolute one.

References:
    Gudbjartsson H, Patz S. The Rician distribution of noisy MRI data. MRM 34:910–914, 1995.
    Goodman JW. Speckle Phenomena in Optics. Roberts & Company, 2007 (ch. 3, 5).
    Schmitt JM, Xiang SH, Yung KM. Speckle in optical coherence tomography. JBO 4:95–105, 1999.
    Anscombe FJ. The transformation of Poisson, binomial and negative-binomial data.
    Biometrika 35:246–254, 1948.
    Mäkitalo M, Foi A. A closed-form approximation of the exact unbiased inverse of the Anscombe
    variance-stabilizing transformation. IEEE TIP 20(9):2697–2698, 2011.
"""

from __future__ import annotations

import math

import torch

from medrestore.core.errors import ConfigError, InputError

SPECKLE_FORMS = ("intensity", "amplitude")


def _check_floating(x: torch.Tensor, allow_complex: bool) -> None:
    if x.is_complex() and allow_complex:
        return
    if not x.is_floating_point():
        expected = "a floating-point or complex" if allow_complex else "a floating-point"
        raise InputError(None, f"expected {expected} tensor, got dtype {x.dtype}")


def _check_level(name: str, value: float, strictly_positive: bool = False) -> float:
    value = float(value)
    if not math.isfinite(value) or value < 0 or (strictly_positive and value == 0):
        bound = "> 0" if strictly_positive else ">= 0"
        raise ConfigError(f"{name} must be a finite number {bound}, got {value!r}")
    return value


def _standard_normal(like: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Real standard-normal samples with the shape and real dtype of ``like``."""
    dtype = like.real.dtype if like.is_complex() else like.dtype
    return torch.randn(like.shape, generator=generator, dtype=dtype, device=like.device)


def image_maximum(x: torch.Tensor) -> float:
    """Maximum of ``|x|`` over the whole tensor (0 for an empty tensor)."""
    return float(x.abs().max()) if x.numel() else 0.0


def resolve_sigma(x: torch.Tensor, sigma: float, relative: bool) -> float:
    """Absolute noise level: ``sigma`` itself, or ``sigma · max|x|`` when ``relative``.

    Example:
        >>> resolve_sigma(torch.tensor([0.0, 2.0]), 0.03, relative=True)
        0.06
    """
    sigma = _check_level("sigma", sigma)
    return sigma * image_maximum(x) if relative else sigma


def add_gaussian_noise(x: torch.Tensor, sigma: float, generator: torch.Generator) -> torch.Tensor:
    """Additive white Gaussian noise: ``y = x + σ·n``, ``n ~ N(0, 1)`` independently per element.

    For complex ``x`` the real and imaginary parts each receive independent ``N(0, σ²)`` noise
    (circularly symmetric noise of total variance ``2σ²``), the model of thermal noise in
    k-space and in complex MR images.

    Args:
        x: tensor of any shape, float32/float64/complex.
        sigma: standard deviation (per real component), absolute, ``>= 0``.
        generator: source of all randomness.

    Returns:
        A new tensor, same shape and dtype as ``x``.
    """
    _check_floating(x, allow_complex=True)
    sigma = _check_level("sigma", sigma)
    noise = sigma * _standard_normal(x, generator)
    if x.is_complex():
        noise = torch.complex(noise, sigma * _standard_normal(x, generator))
    return x + noise


def add_rician_noise(x: torch.Tensor, sigma: float, generator: torch.Generator) -> torch.Tensor:
    """Noise of a magnitude MR image: ``M = |x + σ n₁ + i σ n₂|`` with ``n₁, n₂ ~ N(0, 1)``.

    For a real noise-free magnitude ``ν = |x|`` the result follows the Rice distribution with
    ``E[M²] = ν² + 2σ²`` and ``E[M] = σ √(π/2) L_{1/2}(−ν²/2σ²)`` (Rayleigh when ``ν = 0``);
    the sign of a negative real input is lost, as in any magnitude image. A complex ``x`` (an
    image before the magnitude is taken) receives complex Gaussian noise and stays complex,
    so the caller decides when to take the magnitude (e.g. after coil combination).

    Args:
        x: real (float32/float64) or complex tensor of any shape.
        sigma: standard deviation of each of the two Gaussian channels, absolute, ``>= 0``.
        generator: source of all randomness.

    Returns:
        Real tensor of the input's dtype for real ``x``; complex tensor for complex ``x``.

    Reference:
        Gudbjartsson & Patz, MRM 1995.
    """
    _check_floating(x, allow_complex=True)
    sigma = _check_level("sigma", sigma)
    if x.is_complex():
        return add_gaussian_noise(x, sigma, generator)
    real = x + sigma * _standard_normal(x, generator)
    imaginary = sigma * _standard_normal(x, generator)
    return torch.hypot(real, imaginary)


def _check_nonnegative(x: torch.Tensor, what: str) -> None:
    _check_floating(x, allow_complex=False)
    if x.numel() and (not bool(torch.isfinite(x).all()) or float(x.min()) < 0):
        raise InputError(None, f"{what} must be finite and non-negative (minimum {float(x.min())!r})")


def add_poisson_noise(
    x: torch.Tensor, peak_counts: float, generator: torch.Generator, return_counts: bool = False
) -> torch.Tensor:
    """Counting (shot) noise: scale ``x`` so its maximum expects ``peak_counts`` counts, sample Poisson.

    ``λ = x · s`` with ``s = peak_counts / max(x)``; ``k ~ Poisson(λ)`` independently per
    element, so ``E[k] = Var[k] = λ``. The result is ``k`` (``return_counts=True``) or ``k / s``
    (same units and mean as ``x``; the relative noise ``1/√λ`` falls as counts grow).
    An all-zero ``x`` gives zeros.

    Args:
        x: non-negative float32/float64 tensor of any shape.
        peak_counts: expected counts at the image maximum, ``> 0``.
        generator: source of all randomness.
        return_counts: return integer-valued counts instead of rescaling back.

    Returns:
        A new tensor, same shape and dtype as ``x``.
    """
    _check_nonnegative(x, "Poisson noise input")
    peak_counts = _check_level("peak_counts", peak_counts, strictly_positive=True)
    maximum = image_maximum(x)
    if maximum == 0:
        return torch.zeros_like(x)
    scale = peak_counts / maximum
    counts = torch.poisson(x * scale, generator=generator)
    return counts if return_counts else counts / scale


def super_poisson_counts(expected: torch.Tensor, fano: float, generator: torch.Generator) -> torch.Tensor:
    """Counts with variance ``F`` times their mean: a negative-binomial draw (gamma-mixed Poisson).

    ``λ ~ Gamma(shape = μ / (F − 1), scale = F − 1)``, ``k ~ Poisson(λ)``: ``E[k] = μ``,
    ``Var[k] = μ + (F − 1) μ = F μ`` (``F = 1``: plain Poisson). Over-dispersed counts of this kind
    come from a camera's energy, linearity and uniformity corrections, which move and weight events
    after they are counted (a flood's neighbour-difference variance is ``F`` times its mean).

    Args:
        expected: non-negative expected counts ``μ`` of any shape, float32/float64.
        fano: variance-to-mean ratio ``F >= 1``.
        generator: source of all randomness.

    Returns:
        Integer-valued counts, same shape and dtype as ``expected``.
    """
    _check_nonnegative(expected, "expected counts")
    fano = _check_level("fano", fano, strictly_positive=True)
    if fano < 1:
        raise ConfigError(f"fano must be >= 1 (a negative-binomial draw cannot be sub-Poisson), got {fano!r}")
    if fano == 1:
        return torch.poisson(expected, generator=generator)
    shape = (expected / (fano - 1.0)).clamp(min=torch.finfo(expected.dtype).tiny)
    rate = torch._standard_gamma(shape, generator=generator) * (fano - 1.0)
    return torch.poisson(torch.where(expected > 0, rate, torch.zeros_like(rate)), generator=generator)


def anscombe(counts: torch.Tensor) -> torch.Tensor:
    """Anscombe's variance-stabilising transform ``z = 2 √(k + 3/8)`` of Poisson counts ``k``.

    For ``k ~ Poisson(λ)`` the variance of ``z`` is ≈ 1 (within 2 % for ``λ ≥ 4``), whatever λ:
    a denoiser for white Gaussian noise of σ = 1 then applies. Same shape and dtype.
    """
    _check_nonnegative(counts, "Anscombe transform input")
    return 2.0 * torch.sqrt(counts + 0.375)


def inverse_anscombe(z: torch.Tensor) -> torch.Tensor:
    """Closed-form approximation of the exact unbiased inverse of :func:`anscombe` (Mäkitalo & Foi 2011).

    ``λ̂ = z²/4 + √(3/2)/(4z) − 11/(8z²) + 5√(3/2)/(8z³) − 1/8``, clipped at 0, for ``z`` clipped at 1.
    Unlike the algebraic inverse ``z²/4 − 3/8``, it maps ``E[z | λ]`` back to ``λ`` (the algebraic
    one is biased low at small counts: a denoised estimate of ``E[z]`` would lose counts). Same
    shape and dtype.
    """
    _check_floating(z, allow_complex=False)
    z = z.clamp(min=1.0)
    root = math.sqrt(1.5)
    return (0.25 * z**2 + 0.25 * root / z - 1.375 / z**2 + 0.625 * root / z**3 - 0.125).clamp(min=0.0)


def poisson_counts(
    activity: torch.Tensor,
    generator: torch.Generator,
    total_counts: float | None = None,
    peak_counts: float | None = None,
) -> torch.Tensor:
    """Counts of an emission image: ``k ~ Poisson(s · activity)`` (e.g. a gamma-camera acquisition).

    Exactly one of ``total_counts`` (the expected total ``Σ s·activity``, the usual way a
    scintigraphy is specified) or ``peak_counts`` (expected counts in the brightest pixel)
    fixes the scale ``s``.

    Args:
        activity: non-negative float32/float64 tensor of any shape, not all zero.
        generator: source of all randomness.
        total_counts: expected total counts, ``> 0``.
        peak_counts: expected counts at the maximum, ``> 0``.

    Returns:
        Integer-valued counts, same shape and dtype as ``activity``.
    """
    _check_nonnegative(activity, "activity")
    if (total_counts is None) == (peak_counts is None):
        raise ConfigError("give exactly one of total_counts or peak_counts")
    reference = float(activity.sum()) if total_counts is not None else image_maximum(activity)
    if reference == 0:
        raise InputError(None, "activity is zero everywhere; there is nothing to count")
    target = total_counts if total_counts is not None else peak_counts
    name = "total_counts" if total_counts is not None else "peak_counts"
    scale = _check_level(name, float(target), strictly_positive=True) / reference  # type: ignore[arg-type]
    return torch.poisson(activity * scale, generator=generator)


def speckle_field(
    shape: tuple[int, ...] | torch.Size,
    looks: float,
    generator: torch.Generator,
    form: str = "intensity",
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Unit-mean-power speckle: ``g ~ Gamma(L, 1/L)`` (intensity) or ``√g`` (amplitude).

    Intensity: ``E[g] = 1``, ``Var[g] = 1/L`` (fully developed speckle averaged over ``L``
    independent looks; ``L = 1`` is the exponential law). Amplitude: ``a = √g`` follows the
    Nakagami distribution with shape ``m = L`` and spread ``Ω = E[a²] = 1``, so
    ``E[a] = Γ(L + ½) / (Γ(L) √L)`` (Rayleigh for ``L = 1``).
    """
    looks = _check_level("looks", looks, strictly_positive=True)
    if form not in SPECKLE_FORMS:
        raise ConfigError(f"speckle form must be one of {SPECKLE_FORMS}, got {form!r}")
    shape_parameter = torch.full(tuple(shape), looks, dtype=dtype, device=device)
    intensity = torch._standard_gamma(shape_parameter, generator=generator) / looks
    return intensity if form == "intensity" else intensity.sqrt()


def add_speckle(
    x: torch.Tensor,
    looks: float,
    generator: torch.Generator,
    form: str = "intensity",
    additive_sigma: float = 0.0,
) -> torch.Tensor:
    """Multiplicative fully developed speckle (OCT, ultrasound), optionally plus additive noise.

    ``y = x · g + σ_a · n`` where ``g`` is :func:`speckle_field` (``form="intensity"``: ``x`` is
    an intensity image, ``g ~ Gamma(L, 1/L)``, mean 1, variance ``1/L``; ``form="amplitude"``:
    ``x`` is an amplitude/envelope image, ``g`` Nakagami(m=L, Ω=1)) and ``n ~ N(0, 1)`` is the
    detector's additive noise (``additive_sigma = 0`` leaves it out).

    Args:
        x: float32/float64 tensor of any shape (usually non-negative).
        looks: number of looks ``L > 0`` (non-integer = equivalent number of looks).
        generator: source of all randomness.
        form: ``"intensity"`` or ``"amplitude"``.
        additive_sigma: absolute standard deviation of the additive Gaussian term, ``>= 0``.

    Returns:
        A new tensor, same shape and dtype as ``x``.

    Reference:
        Goodman, Speckle Phenomena in Optics, 2007; Schmitt et al., JBO 1999.
    """
    _check_floating(x, allow_complex=False)
    additive_sigma = _check_level("additive_sigma", additive_sigma)
    multiplier = speckle_field(x.shape, looks, generator, form, x.dtype, x.device)
    speckled = x * multiplier
    if additive_sigma > 0:
        speckled = speckled + additive_sigma * _standard_normal(x, generator)
    return speckled
