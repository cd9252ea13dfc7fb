"""Linear operators with a true adjoint: the building block of every MRI forward model.

An operator ``A`` maps tensors of shape ``(*batch, *input_shape)`` to ``(*batch, *output_shape)``
(complex64 unless stated); leading batch axes pass through. ``A(x)`` applies it, ``A.H`` is
the adjoint operator (``<A x, y> = <x, Aᴴ y>`` with ``<a, b> = Σ conj(a) b``), ``A @ B`` is the
composition ``x ↦ A(B(x))`` and ``A.normal(x) = Aᴴ A x`` (subclasses may fuse it).

Operators are immutable: applying one never changes it, and a new mask or new coil maps make
a new operator (sigpy's ``Linop`` design without its in-place state). A Cartesian sampling
operator and, later, a non-Cartesian NUFFT are interchangeable wherever an operator from
coil images to samples is expected (see :class:`~medrestore.physics.mri.sense.SenseOperator`).

Example:
    >>> identity = Identity((4, 4))
    >>> composed = identity @ identity.H
    >>> composed.input_shape, composed.output_shape
    ((4, 4), (4, 4))
"""

from __future__ import annotations

import abc

import torch


class LinearOperator(abc.ABC):
    """Base class: subclasses implement :meth:`forward` and :meth:`adjoint`.

    Attributes:
        input_shape: trailing shape of the operator's input.
        output_shape: trailing shape of its output.
    """

    def __init__(self, input_shape: tuple[int, ...], output_shape: tuple[int, ...]) -> None:
        self._input_shape = tuple(int(n) for n in input_shape)
        self._output_shape = tuple(int(n) for n in output_shape)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self._input_shape

    @property
    def output_shape(self) -> tuple[int, ...]:
        return self._output_shape

    @abc.abstractmethod
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``A x``: ``(*batch, *input_shape)`` → ``(*batch, *output_shape)``."""

    @abc.abstractmethod
    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        """``Aᴴ y``: ``(*batch, *output_shape)`` → ``(*batch, *input_shape)``."""

    def normal(self, x: torch.Tensor) -> torch.Tensor:
        """``Aᴴ A x`` (the Gram operator used by CG and gradient methods)."""
        return self.adjoint(self.forward(x))

    def squared_norm_bound(self) -> float | None:
        """An upper bound on ``‖A‖² = λ_max(AᴴA)`` when one is known in closed form, else ``None``.

        Solvers use it for safe step sizes without power iterations.
        """
        return None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward(x)

    @property
    def H(self) -> LinearOperator:  # noqa: N802 - the conventional name of the adjoint
        """The adjoint operator ``Aᴴ``."""
        return AdjointOperator(self)

    def __matmul__(self, other: LinearOperator) -> LinearOperator:
        if not isinstance(other, LinearOperator):
            return NotImplemented
        return ComposedOperator(self, other)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.input_shape} -> {self.output_shape})"


class AdjointOperator(LinearOperator):
    """``Aᴴ`` of an operator ``A``; its own adjoint is ``A`` again."""

    def __init__(self, operator: LinearOperator) -> None:
        super().__init__(operator.output_shape, operator.input_shape)
        self.operator = operator

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.operator.adjoint(x)

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return self.operator.forward(y)

    @property
    def H(self) -> LinearOperator:  # noqa: N802
        return self.operator

    def squared_norm_bound(self) -> float | None:
        return self.operator.squared_norm_bound()


class ComposedOperator(LinearOperator):
    """``A B``: apply ``inner`` (B) then ``outer`` (A); the adjoint is ``Bᴴ Aᴴ``."""

    def __init__(self, outer: LinearOperator, inner: LinearOperator) -> None:
        if outer.input_shape != inner.output_shape:
            raise ValueError(f"cannot compose {outer!r} after {inner!r}: shapes differ")
        super().__init__(inner.input_shape, outer.output_shape)
        self.outer = outer
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.outer.forward(self.inner.forward(x))

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return self.inner.adjoint(self.outer.adjoint(y))

    def squared_norm_bound(self) -> float | None:
        outer, inner = self.outer.squared_norm_bound(), self.inner.squared_norm_bound()
        return None if outer is None or inner is None else outer * inner


class Identity(LinearOperator):
    """``I x = x`` (returns the input tensor itself; callers never modify tensors in place)."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__(shape, shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return y

    def squared_norm_bound(self) -> float:
        return 1.0


class Multiply(LinearOperator):
    """Pointwise multiplication by a fixed tensor: ``x ↦ w ⊙ x``; adjoint ``y ↦ conj(w) ⊙ y``.

    ``weights`` must broadcast with ``shape`` to ``shape`` (a mask, a phase, a density weight).
    """

    def __init__(self, shape: tuple[int, ...], weights: torch.Tensor) -> None:
        super().__init__(shape, shape)
        if torch.broadcast_shapes(tuple(weights.shape), tuple(shape)) != tuple(shape):
            raise ValueError(f"weights of shape {tuple(weights.shape)} do not broadcast to {tuple(shape)}")
        self.weights = weights.detach().clone()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weights.to(x.device)

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        weights = self.weights.to(y.device)
        return y * (weights.conj() if weights.is_complex() else weights)

    def squared_norm_bound(self) -> float:
        return float(self.weights.abs().max()) ** 2


def inner_product(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``<a, b> = Σ conj(a) b`` over all axes (complex128 accumulation for a stable test)."""
    return torch.sum(a.to(torch.complex128).conj() * b.to(torch.complex128))


def adjoint_mismatch(operator: LinearOperator, generator: torch.Generator, batch: tuple[int, ...] = ()) -> float:
    """``|<A x, y> − <x, Aᴴ y>| / (‖A x‖ ‖y‖)`` for random complex64 ``x`` and ``y``.

    The house check of every operator: it must be ``≤ 1e-5``. ``generator`` makes it
    reproducible; ``batch`` adds leading axes to test broadcasting.
    """
    x = torch.randn((*batch, *operator.input_shape), dtype=torch.complex64, generator=generator)
    y = torch.randn((*batch, *operator.output_shape), dtype=torch.complex64, generator=generator)
    forward = operator.forward(x)
    left = inner_product(forward, y)
    right = inner_product(x, operator.adjoint(y))
    scale = torch.linalg.vector_norm(forward.to(torch.complex128)) * torch.linalg.vector_norm(y.to(torch.complex128))
    return float(torch.abs(left - right) / scale)


def max_eigenvalue(operator: LinearOperator, start: torch.Tensor, iterations: int = 30) -> float:
    """Largest eigenvalue of the positive semi-definite ``AᴴA`` by power iteration from ``start``.

    Args:
        operator: ``A``; its :meth:`~LinearOperator.normal` (``AᴴA``) is iterated.
        start: non-zero starting vector of shape ``(*input_shape)``; a deterministic start
            (e.g. ``Aᴴy``) makes the estimate reproducible.
        iterations: power iterations (sigpy's ``MaxEig`` uses 30).
    """
    vector = start / torch.linalg.vector_norm(start).clamp_min(1e-30)
    value = torch.zeros((), device=start.device)
    for _ in range(iterations):
        image = operator.normal(vector)
        value = torch.linalg.vector_norm(image)
        vector = image / value.clamp_min(1e-30)
    return float(value)


def lipschitz_constant(operator: LinearOperator, start: torch.Tensor, iterations: int = 30) -> float:
    """``‖A‖²``: the closed-form bound when the operator has one, else power iteration from ``start``."""
    bound = operator.squared_norm_bound()
    return bound if bound is not None else max_eigenvalue(operator, start, iterations)
