"""Before/after comparison figures written as PNG (matplotlib, Agg backend, no display needed)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (backend must be chosen first)
import numpy as np  # noqa: E402
import torch  # noqa: E402

from medrestore.core.files import atomic_path  # noqa: E402


def _as_numpy(image: np.ndarray | torch.Tensor) -> np.ndarray:
    array = image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
    if np.iscomplexobj(array):
        array = np.abs(array)
    return array.astype(np.float64)


def _middle_slice(array: np.ndarray) -> np.ndarray:
    """2-D view of an image: the array itself, or the middle slice along the first axis of a volume."""
    while array.ndim > 2:
        array = array[array.shape[0] // 2]
    return array


def to_display_uint8(image: np.ndarray | torch.Tensor, low: float | None = None, high: float | None = None) -> np.ndarray:
    """Window ``image`` to ``[low, high]`` (default: 0.5th/99.5th percentiles) and scale to uint8."""
    array = _middle_slice(_as_numpy(image))
    if low is None or high is None:
        low_p, high_p = np.percentile(array, [0.5, 99.5])
        low = low_p if low is None else low
        high = high_p if high is None else high
    scale = max(float(high) - float(low), 1e-12)
    return (np.clip((array - low) / scale, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def save_comparison_png(
    panels: Sequence[tuple[str, np.ndarray | torch.Tensor]],
    path: str | Path,
    reference_index: int | None = 0,
    panel_inches: float = 3.2,
) -> Path:
    """Save panels side by side with one shared grey-level window.

    Args:
        panels: ``(label, image)`` pairs; 3-D images show their middle slice.
        path: output PNG (written atomically).
        reference_index: panel whose 0.5–99.5 % percentiles set the shared window
            (``None``: each panel is windowed on its own, e.g. for k-space or error maps).
        panel_inches: width of one panel.
    """
    arrays = [_middle_slice(_as_numpy(image)) for _, image in panels]
    window = None
    if reference_index is not None:
        window = tuple(np.percentile(arrays[reference_index], [0.5, 99.5]))
    figure, axes = plt.subplots(1, len(panels), figsize=(panel_inches * len(panels), panel_inches + 0.7), squeeze=False)
    for axis, (label, _), array in zip(axes[0], panels, arrays, strict=True):
        low, high = window if window is not None else np.percentile(array, [0.5, 99.5])
        axis.imshow(array, cmap="gray", vmin=low, vmax=high, interpolation="nearest")
        axis.set_title(label, fontsize=9)
        axis.axis("off")
    figure.tight_layout()
    with atomic_path(path, suffix=".png") as temporary:
        figure.savefig(temporary, dpi=100, format="png")
    plt.close(figure)
    return Path(path)


def save_line_plot_png(
    curves: dict[str, Sequence[float]],
    positions: Sequence[float],
    path: str | Path,
    xlabel: str,
    ylabel: str,
    panels: Sequence[tuple[str, np.ndarray | torch.Tensor]] = (),
    panel_inches: float = 3.2,
) -> Path:
    """Save a line plot of ``curves`` (label → one value per position) over ``positions`` and, to its right, the
    ``panels`` as :func:`save_comparison_png` shows them (shared window of the first panel); written atomically."""
    figure, axes = plt.subplots(1, 1 + len(panels), figsize=(panel_inches * (1.4 + len(panels)), panel_inches + 0.7), squeeze=False,
                                gridspec_kw={"width_ratios": [1.4] + [1.0] * len(panels)})
    plot = axes[0][0]
    for label, values in curves.items():
        plot.plot(list(positions), list(values), marker="o", markersize=2.5, linewidth=1.0, label=label)
    plot.set_xlabel(xlabel, fontsize=9)
    plot.set_ylabel(ylabel, fontsize=9)
    plot.legend(fontsize=7)
    plot.grid(alpha=0.3)
    arrays = [_middle_slice(_as_numpy(image)) for _, image in panels]
    if arrays:
        low, high = np.percentile(arrays[0], [0.5, 99.5])
        for axis, (label, _), array in zip(axes[0][1:], panels, arrays, strict=True):
            axis.imshow(array, cmap="gray", vmin=low, vmax=high, interpolation="nearest")
            axis.set_title(label, fontsize=9)
            axis.axis("off")
    figure.tight_layout()
    with atomic_path(path, suffix=".png") as temporary:
        figure.savefig(temporary, dpi=100, format="png")
    plt.close(figure)
    return Path(path)


def _png_bytes(figure: Any) -> bytes:
    """The matplotlib ``figure`` as PNG bytes (closed afterwards)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, dpi=100, format="png")
    plt.close(figure)
    return buffer.getvalue()


def zoom_box(shape: tuple[int, int], difference: np.ndarray | None, fraction: float = 0.25) -> tuple[int, int, int, int]:
    """``(top, left, height, width)`` of the region to magnify: ``fraction`` of each side, centred
    where the absolute ``difference`` (box-averaged over the region's size) is largest, or at the
    image centre without one."""
    height, width = (max(4, int(round(n * fraction))) for n in shape)
    height, width = min(height, shape[0]), min(width, shape[1])
    if difference is None or not np.any(difference):
        return (shape[0] - height) // 2, (shape[1] - width) // 2, height, width
    # box sums by an integral image: sum over every height × width window
    integral = np.pad(np.abs(difference), ((1, 0), (1, 0))).cumsum(0).cumsum(1)
    sums = integral[height:, width:] - integral[:-height, width:] - integral[height:, :-width] + integral[:-height, :-width]
    top, left = np.unravel_index(int(np.argmax(sums)), sums.shape)
    return int(top), int(left), height, width


def restoration_figure(
    panels: Sequence[tuple[str, np.ndarray]],
    difference: tuple[str, np.ndarray] | None,
    window_index: int,
    panel_inches: float = 3.4,
) -> bytes:
    """Before/after panels with a magnified inset, and a signed difference map; returns PNG bytes.

    Args:
        panels: ``(label, image)`` pairs of 2-D images (input, output, reference...); an image of
            another size than the window panel's (a super-resolution input) keeps its own pixels,
            its own grey window, and the zoom box scaled to it.
        difference: ``(label, output − baseline)`` shown with a diverging map symmetric about 0,
            its limit the 99.5th percentile of ``|difference|`` (``None``: no map).
        window_index: the panel whose 0.5–99.5 % percentiles set the shared grey window.
        panel_inches: width of one panel.

    The inset (upper right of each grey panel) magnifies the box of :func:`zoom_box`, placed where
    the difference is largest, and the box is outlined on the panel.
    """
    columns = len(panels) + (difference is not None)
    figure, axes = plt.subplots(1, columns, figsize=(panel_inches * columns, panel_inches + 0.7), squeeze=False)
    anchor_shape = panels[window_index][1].shape
    box = zoom_box(anchor_shape, None if difference is None else difference[1])
    for axis, (label, array) in zip(axes[0], panels, strict=False):
        if array.shape != anchor_shape:  # another grid (a super-resolution input: counts per coarse pixel): its own window
            low, high = np.percentile(array, [0.5, 99.5])
        else:
            low, high = np.percentile(panels[window_index][1], [0.5, 99.5])
        axis.imshow(array, cmap="gray", vmin=low, vmax=high, interpolation="nearest")
        axis.set_title(label, fontsize=9)
        axis.axis("off")
        scale = (array.shape[0] / anchor_shape[0], array.shape[1] / anchor_shape[1])
        top, left = box[0] * scale[0], box[1] * scale[1]
        height, width = box[2] * scale[0], box[3] * scale[1]
        inset = axis.inset_axes((0.6, 0.6, 0.39, 0.39))
        inset.imshow(array, cmap="gray", vmin=low, vmax=high, interpolation="nearest")
        inset.set_xlim(left - 0.5, left + width - 0.5)
        inset.set_ylim(top + height - 0.5, top - 0.5)
        inset.set_xticks([])
        inset.set_yticks([])
        for spine in inset.spines.values():
            spine.set_edgecolor("yellow")
        axis.add_patch(plt.Rectangle((left - 0.5, top - 0.5), width, height, fill=False, edgecolor="yellow", linewidth=1.0))
    if difference is not None:
        label, array = difference
        limit = float(np.percentile(np.abs(array), 99.5)) or 1.0
        axis = axes[0][-1]
        shown = axis.imshow(array, cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest")
        axis.set_title(label, fontsize=9)
        axis.axis("off")
        figure.colorbar(shown, ax=axis, fraction=0.046, pad=0.02)
    figure.tight_layout()
    return _png_bytes(figure)
