"""Apply a trained image-to-image model to whole images: normalise → tiled inference → de-normalise.

:meth:`Predictor.from_checkpoint` reads the three entries a trained model needs from a file
written by :mod:`medrestore.training` (``last.pt``/``best.pt``) or any file holding them::

    model          {"name": str, "options": dict, "state_dict": dict}
    normalisation  a Normalisation.record() dict
    inference      {"window": list | None, "overlap": float, "blend": str, "batch_size": int}

Example:
    >>> predictor = Predictor.from_checkpoint("results/train/best.pt", device="cpu")  # doctest: +SKIP
    >>> restored = predictor.predict(noisy)   # (H, W) in, (H, W) out, on the input's scale
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from medrestore.core.device import select_device
from medrestore.core.errors import ConfigError, InputError
from medrestore.core.files import load_torch_file
from medrestore.data.normalisation import Normalisation, normalisation_from_record
from medrestore.inference.tiling import sliding_window_inference
from medrestore.models import create_model

MODEL_ENTRIES = ("model", "normalisation", "inference")


def names_model_file(name: str | Path) -> bool:
    """Whether a ``--model`` value names a checkpoint file (``*.pt`` or an existing file) rather than a zoo model."""
    return Path(name).suffix == ".pt" or Path(name).is_file()


def _read_model_file(path: Path, device: torch.device) -> Mapping[str, Any]:
    payload = load_torch_file(path, map_location=device)
    if not isinstance(payload, Mapping) or any(key not in payload for key in MODEL_ENTRIES):
        raise InputError(path, f"not a medrestore model file (needs the entries {', '.join(MODEL_ENTRIES)})")
    return payload


class Predictor:
    """A model with its normalisation and tiling settings.

    Args:
        model: maps ``(B, C_in, *window)`` to ``(B, C_out, *window)``; put in eval mode here.
        normalisation: applied per image to the input; its inverse to the output.
        window: tile size (2 or 3 ints) or ``None`` for the whole image in one pass.
        overlap, blend, batch_size: see :func:`~medrestore.inference.tiling.sliding_window_inference`.
        device: where the model runs (``"auto"``: CUDA, then MPS, else CPU).
        clip_window: for fully convolutional models that run on any size: the window is cut to the
            image along each axis, so an image that fits in it runs in one pass, unpadded, and only
            larger images are tiled (bounding memory); ``False`` pads smaller images to the window
            (a model trained on windows of that size).
    """

    def __init__(
        self,
        model: nn.Module,
        normalisation: Normalisation,
        window: Sequence[int] | None = None,
        overlap: float = 0.25,
        device: str | torch.device = "auto",
        blend: str = "gaussian",
        batch_size: int = 4,
        clip_window: bool = False,
    ) -> None:
        self.device = select_device(device) if isinstance(device, str) else device
        self.model = model.to(self.device).eval()
        self.normalisation = normalisation
        self.window = None if window is None else tuple(int(w) for w in window)
        self.overlap = overlap
        self.blend = blend
        self.batch_size = batch_size
        self.clip_window = clip_window
        spatial_ndim = getattr(model, "spatial_ndim", None)
        self.spatial_ndim = int(spatial_ndim) if spatial_ndim is not None else (len(self.window) if self.window else 2)
        if self.window is not None and len(self.window) != self.spatial_ndim:
            raise ConfigError(f"window {self.window} does not match the {self.spatial_ndim}-D model")

    @classmethod
    def from_record(cls, payload: Mapping[str, Any], device: str | torch.device = "auto", source: str = "<record>") -> Predictor:
        """Rebuild from the ``model``/``normalisation``/``inference`` entries (module docstring)."""
        entry = payload["model"]
        model = create_model(str(entry["name"]), dict(entry["options"]))
        try:
            model.load_state_dict(entry["state_dict"])
        except RuntimeError as error:
            raise InputError(source, f"weights do not fit model {entry['name']!r}: {str(error).splitlines()[0]}") from None
        settings = payload["inference"]
        return cls(
            model,
            normalisation_from_record(payload["normalisation"]),
            window=settings.get("window"),
            overlap=float(settings.get("overlap", 0.25)),
            device=device,
            blend=str(settings.get("blend", "gaussian")),
            batch_size=int(settings.get("batch_size", 4)),
        )

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str | torch.device = "auto") -> Predictor:
        """Load a training checkpoint (or any file with the entries of the module docstring)."""
        target = select_device(device) if isinstance(device, str) else device
        return cls.from_record(_read_model_file(Path(path), target), target, str(path))

    def _as_batch(self, image: np.ndarray | torch.Tensor) -> tuple[torch.Tensor, int]:
        """``(N, C, *spatial)`` float32 and the number of leading axes the caller gave (0, 1 or 2)."""
        tensor = torch.from_numpy(np.ascontiguousarray(image)) if isinstance(image, np.ndarray) else image
        if tensor.is_complex():
            raise InputError(None, "the predictor takes real images; take the magnitude first")
        leading = tensor.ndim - self.spatial_ndim
        if leading not in (0, 1, 2):
            raise InputError(None, f"expected (*spatial), (C, *spatial) or (N, C, *spatial) with {self.spatial_ndim} spatial axes, got {tuple(tensor.shape)}")
        batch = tensor.detach().to(torch.float32).reshape((1,) * (2 - leading) + tuple(tensor.shape))
        if not bool(torch.isfinite(batch).all()):
            raise InputError(None, "the image contains NaN or infinite values")
        return batch, leading

    def _run(self, batch: torch.Tensor) -> torch.Tensor:
        def function(windows: torch.Tensor) -> torch.Tensor:
            return self.model(windows.to(self.device))

        window = self.window
        if window is not None and self.clip_window:
            window = tuple(min(size, extent) for size, extent in zip(window, batch.shape[2:], strict=True))
        if window is None or (self.clip_window and window == tuple(batch.shape[2:])):
            return function(batch).to(batch.device)
        return sliding_window_inference(function, batch, window, self.overlap, self.blend, self.batch_size)

    def predict(self, image: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Restore ``image`` (``(*spatial)``, ``(C, *spatial)`` or ``(N, C, *spatial)``).

        Each image is normalised with its own parameters, passed through the model (tiled when a
        window is set) under ``torch.inference_mode``, and de-normalised. Returns float32 with the
        same leading layout (``C`` replaced by the model's output channels), on the input's
        device (CPU for NumPy input). The input is not modified.
        """
        batch, leading = self._as_batch(image)
        outputs = []
        with torch.inference_mode():
            for single in batch:
                parameters = self.normalisation.parameters(single)
                normalised = self.normalisation.normalise(single, parameters).unsqueeze(0)
                output = self._run(normalised)[0].to(torch.float32)
                outputs.append(self.normalisation.denormalise(output, parameters))
        result = torch.stack(outputs)
        if leading == 2:
            return result
        if leading == 1:
            return result[0]
        return result[0, 0] if result.shape[1] == 1 else result[0]
