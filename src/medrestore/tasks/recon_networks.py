"""Network reconstruction of one Cartesian slice with a shipped model (``recon --method unet|vgg-unet|unrolled``).

The zoo model of each method (:data:`NETWORK_MODELS`) was trained on retrospectively
undersampled multi-coil k-space (:mod:`medrestore.data.mri_recon`). A slice is prepared exactly
as in training — the coil-combined zero-filled image ``x₀ = Aᴴy`` with the slice's coil maps
(ESPIRiT or a file), everything divided by ``s = q₀.₉₉(|x₀|)`` — run through the network
(the image alone, or image + k-space + mask + maps for the unrolled network, as the card's
``normalisation.inputs`` says) and multiplied back by ``s``.
"""

from __future__ import annotations

import functools

import torch
from torch import nn

from medrestore.core.complex import channels_to_complex
from medrestore.core.errors import MedrestoreError
from medrestore.data.mri_recon import network_inputs, undersampled_sample
from medrestore.zoo import in_zoo, load_pretrained

__all__ = ["NETWORK_MODELS", "network_available", "network_reconstruction"]

NETWORK_MODELS = {"unet": "unet-mri-brain", "vgg-unet": "vgg-unet-mri-brain", "unrolled": "unrolled-mri-brain"}
"""``recon`` method → zoo model name."""


def network_available(method: str) -> bool:
    """Whether the zoo holds the model of network method ``method``."""
    return method in NETWORK_MODELS and in_zoo(NETWORK_MODELS[method])


@functools.lru_cache(maxsize=4)
def _model(method: str, device: str) -> tuple[nn.Module, str]:
    """The zoo model of ``method`` on ``device`` (eval mode) and the input kind it takes."""
    if method not in NETWORK_MODELS:
        raise MedrestoreError(f"no network for method {method!r}; known: {', '.join(NETWORK_MODELS)}")
    model, card = load_pretrained(NETWORK_MODELS[method], device)
    return model, str(card.normalisation.get("inputs", "image"))


def network_reconstruction(method: str, kspace: torch.Tensor, coil_maps: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Complex image ``(H, W)`` of one slice by the network of ``method``.

    Args:
        method: ``unet``, ``vgg-unet`` or ``unrolled``.
        kspace: complex ``(coils, H, W)`` (zeros where not sampled).
        coil_maps: complex ``(coils, H, W)``.
        mask: bool/0-1, broadcastable to ``(H, W)``.
    """
    device = kspace.device
    model, inputs_kind = _model(method, str(device))
    grid = tuple(kspace.shape[-2:])
    full_mask = torch.broadcast_to(mask.to(device), grid).to(torch.float32)
    sample = undersampled_sample(kspace, coil_maps.to(device), None, full_mask, int(kspace.shape[0]))
    inputs = network_inputs(sample, inputs_kind)
    with torch.no_grad():
        if isinstance(inputs, torch.Tensor):
            output = model(inputs.unsqueeze(0).to(device))
        else:
            output = model(*(tensor.unsqueeze(0).to(device) for tensor in inputs))
    return channels_to_complex(output[0]) * sample.scale.to(device)
