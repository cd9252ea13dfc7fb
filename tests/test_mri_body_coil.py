"""Body-coil referenced sensitivities: the closed form S_c / β on a simulated pair, and the real 16-ch/2-ch pair."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from medrestore.core.fft import fftc
from medrestore.physics.mri.body_coil import BodyCoilOptions, body_coil_maps, widen
from medrestore.physics.mri.espirit import espirit_maps
from test_mri_espirit import inner_erode
from test_mri_operators import _coil_maps


def _grid(shape: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.meshgrid(torch.linspace(-1, 1, shape[0]), torch.linspace(-1, 1, shape[1]), indexing="ij")


def test_maps_are_array_over_body_profile() -> None:
    """Array maps S_c, a quadrature body coil (two channels with one profile β): the maps are S_c / β up to one
    constant inside the object (correlation and relative magnitude), and zero away from it."""
    shape = (64, 64)
    y, x = _grid(shape)
    inside = ((x / 0.7) ** 2 + (y / 0.8) ** 2) < 1
    image = inside.to(torch.complex64) * torch.exp(1j * 0.4 * x)
    array = _coil_maps(6, shape)
    profile = ((1.0 + 0.25 * x - 0.15 * y) * torch.exp(1j * 0.3 * y)).to(torch.complex64)
    body = torch.stack([profile, 0.7j * profile]) * image
    maps = body_coil_maps(fftc(array * image), fftc(body), options=BodyCoilOptions(calibration_width=32))
    expected = array / profile
    interior = inner_erode(inner_erode(inside))
    correlation = (maps.conj() * expected).sum(0).abs() / (maps.abs().norm(dim=0) * expected.abs().norm(dim=0)).clamp_min(1e-12)
    assert float(correlation[interior].min()) > 0.99
    ratio = maps.abs().norm(dim=0)[interior] / expected.abs().norm(dim=0)[interior]
    assert float(ratio.std() / ratio.mean()) < 0.03
    far = ~widen(inside, 8)
    assert float(maps[:, far].abs().max()) == 0.0
    assert float((maps.abs() ** 2).sum(0).max()) == pytest.approx(1.0, rel=1e-5)


def test_refuses_grids_that_differ() -> None:
    with pytest.raises(ValueError, match="grid"):
        body_coil_maps(torch.ones(4, 32, 32, dtype=torch.complex64), torch.ones(2, 32, 30, dtype=torch.complex64))


def test_real_pair_agrees_with_espirit(shared_data: Path) -> None:
    """Real 16-channel head coil + 2-channel body coil of one slice: the body-coil maps cover ESPIRiT's support
    (Dice > 0.95, no anatomy cut) and, normalised per pixel, point the same way (median correlation > 0.99)."""
    pytest.importorskip("twixtools", reason="reading twix needs the 'twixtools' package")
    from medrestore.core.fft import ifftc, rss
    from medrestore.io import read_kspace
    from medrestore.tasks.recon import CLASSICAL_ESPIRIT

    head = read_kspace(shared_data / "mri-raw-pulseq" / "2024-02-06-164128.dat").data
    body = read_kspace(shared_data / "mri-raw-pulseq" / "2024-02-06-164120.dat").data
    espirit, _ = espirit_maps(head, None, CLASSICAL_ESPIRIT)
    maps = body_coil_maps(head, body)
    support_espirit, support_body = espirit.abs().sum(0) > 0, maps.abs().sum(0) > 0
    dice = 2 * float((support_espirit & support_body).sum()) / float(support_espirit.sum() + support_body.sum())
    assert dice > 0.95
    reference = rss(ifftc(head), 0)
    anatomy = reference > 6 * float(reference[:12, :12].mean())
    assert int((anatomy & ~support_body).sum()) == 0
    common = support_espirit & support_body
    unit = maps / (maps.abs() ** 2).sum(0).sqrt().clamp_min(1e-30)
    correlation = (unit.conj() * espirit).sum(0).abs()[common]
    assert float(np.median(correlation.numpy())) > 0.99
