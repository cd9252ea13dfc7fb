"""Input handling shared by the metrics: NumPy or torch in, float64 torch out, shapes checked.

Metrics never modify their inputs: every conversion below makes a new tensor (or a detached
view that is only read).
"""

from __future__ import annotations

import numpy as np
import torch

from medrestore.core.errors import InputError

ArrayLike = np.ndarray | torch.Tensor


def to_float64(values: ArrayLike, role: str = "input") -> torch.Tensor:
    """Return ``values`` as a detached ``torch.float64`` tensor (integer, bool and float inputs).

    Tensors stay on their device (Apple MPS has no float64, so MPS tensors move to the CPU).
    ``role`` names the argument in error messages ("prediction", "reference", "mask").

    Raises:
        InputError: complex or non-numeric input.
    """
    if isinstance(values, torch.Tensor):
        tensor = values.detach()
        if tensor.is_complex():
            raise InputError(None, f"{role} is complex; metrics take real images (take the magnitude first)")
        if tensor.device.type == "mps":
            tensor = tensor.cpu()
        return tensor.to(torch.float64)
    array = np.asarray(values)
    if np.iscomplexobj(array):
        raise InputError(None, f"{role} is complex; metrics take real images (take the magnitude first)")
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
        raise InputError(None, f"{role} has non-numeric dtype {array.dtype}")
    return torch.from_numpy(np.array(array, dtype=np.float64))


def check_same_shape(prediction: torch.Tensor, reference: torch.Tensor) -> None:
    """Raise :class:`InputError` unless ``prediction`` and ``reference`` have the same shape."""
    if prediction.shape != reference.shape:
        raise InputError(
            None,
            f"prediction shape {tuple(prediction.shape)} does not match reference shape {tuple(reference.shape)}",
        )


def prepare_pair(prediction: ArrayLike, reference: ArrayLike) -> tuple[torch.Tensor, torch.Tensor]:
    """Both images as float64 tensors on the reference's device, with matching shapes checked."""
    reference_tensor = to_float64(reference, "reference")
    prediction_tensor = to_float64(prediction, "prediction").to(reference_tensor.device)
    check_same_shape(prediction_tensor, reference_tensor)
    return prediction_tensor, reference_tensor


def prepare_mask(mask: ArrayLike | None, shape: torch.Size, device: torch.device) -> torch.Tensor | None:
    """A boolean mask (nonzero = inside) broadcast to ``shape``; ``None`` stays ``None``.

    Raises:
        InputError: the mask does not broadcast to ``shape`` or selects no voxel.
    """
    if mask is None:
        return None
    mask_tensor = to_float64(mask, "mask").to(device) != 0
    try:
        mask_tensor = torch.broadcast_to(mask_tensor, shape)
    except RuntimeError as error:
        raise InputError(
            None, f"mask shape {tuple(mask_tensor.shape)} does not fit image shape {tuple(shape)}"
        ) from error
    if not bool(mask_tensor.any()):
        raise InputError(None, "mask selects no voxel")
    return mask_tensor
