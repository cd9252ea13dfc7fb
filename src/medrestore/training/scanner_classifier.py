"""Train and apply the scanner classifier (:class:`~medrestore.models.scanner_classifier.ScannerClassifier`).

Cross-entropy, Adam, left-right flips; every random choice comes from ``seed``. The slices it
is trained on must come from subjects that neither the harmoniser nor the evaluation used.
"""

from __future__ import annotations

import torch
import torch.nn.functional as functional

from medrestore.core.errors import InputError
from medrestore.models.scanner_classifier import ScannerClassifier, ScannerClassifierConfig


def train_scanner_classifier(
    slices: torch.Tensor,
    labels: torch.Tensor,
    epochs: int = 30,
    batch_size: int = 16,
    lr: float = 2e-3,
    seed: int = 0,
    config: ScannerClassifierConfig = ScannerClassifierConfig(),
) -> tuple[ScannerClassifier, list[float]]:
    """Fit on ``(N, H, W)`` slices with integer ``labels (N,)``; returns the model (eval mode) and per-epoch losses."""
    if slices.ndim != 3 or labels.shape != (len(slices),):
        raise InputError(None, f"expected (N, H, W) slices and (N,) labels, got {tuple(slices.shape)} and {tuple(labels.shape)}")
    torch.manual_seed(seed)
    model = ScannerClassifier(config)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    losses = []
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(slices), generator=generator)
        total = 0.0
        for start in range(0, len(order), batch_size):
            index = order[start : start + batch_size]
            batch = slices[index, None]
            flips = torch.rand(len(index), generator=generator) < 0.5
            batch = torch.where(flips[:, None, None, None], batch.flip(-1), batch)
            loss = functional.cross_entropy(model(batch), labels[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(index)
        losses.append(total / len(slices))
    return model.eval(), losses


@torch.no_grad()
def classifier_accuracy(model: ScannerClassifier, slices: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of ``(N, H, W)`` slices whose predicted scanner equals ``labels``."""
    model.eval()
    predictions = torch.cat([model(slices[i : i + 32, None]).argmax(dim=1) for i in range(0, len(slices), 32)])
    return float((predictions == labels).float().mean())
