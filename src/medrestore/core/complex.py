"""Complex ↔ two-channel real tensors: the form complex images take at a network's boundary.

Below the network layer complex data stays ``torch.complex64``; a network sees
``(N, 2, H, W)`` float (real, imaginary) and hands the same form back.

Example:
    >>> x = torch.complex(torch.ones(1, 3, 4), -torch.ones(1, 3, 4))
    >>> complex_to_channels(x).shape
    torch.Size([1, 2, 3, 4])
    >>> bool(torch.equal(channels_to_complex(complex_to_channels(x)), x))
    True
"""

from __future__ import annotations

import torch

__all__ = ["channels_to_complex", "complex_to_channels"]


def complex_to_channels(x: torch.Tensor) -> torch.Tensor:
    """Complex ``(N, H, W)`` → float32 ``(N, 2, H, W)`` (real, imaginary as channels)."""
    return torch.view_as_real(x.to(torch.complex64)).movedim(-1, -3).contiguous()


def channels_to_complex(x: torch.Tensor) -> torch.Tensor:
    """Float ``(N, 2, H, W)`` → complex64 ``(N, H, W)``; the inverse of :func:`complex_to_channels`."""
    if x.shape[-3] != 2:
        raise ValueError(f"expected 2 channels (real, imaginary) at axis -3, got shape {tuple(x.shape)}")
    return torch.complex(x.select(-3, 0).float(), x.select(-3, 1).float())
