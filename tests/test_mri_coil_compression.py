"""Coil compression: closed forms (a rank-r array compresses losslessly to r virtual coils) and BART's `cc`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from medrestore.core.fft import fftc, ifftc
from medrestore.io.raw_bart import read_bart_array
from medrestore.physics.mri.coil_compression import (
    CoilCompression, compress_kspace, compress_maps, compression_matrices, virtual_coil_count,
)
from medrestore.physics.mri.masks import poisson_disc_mask, random_line_mask
from test_mri_operators import _coil_maps
from bart_helpers import bart, needs_bart


def _object(shape: tuple[int, int]) -> torch.Tensor:
    y, x = torch.meshgrid(torch.linspace(-1, 1, shape[0]), torch.linspace(-1, 1, shape[1]), indexing="ij")
    return (((x / 0.8) ** 2 + (y / 0.9) ** 2) < 1).to(torch.complex64) * (1 + 0.3 * x)


def _low_rank_kspace(coils: int, rank: int, shape: tuple[int, int] = (40, 36)) -> tuple[torch.Tensor, torch.Tensor]:
    """k-space of ``coils`` channels that are fixed mixtures of ``rank`` smooth source coils, and their maps."""
    image = _object(shape)
    mixing = torch.randn(coils, rank, dtype=torch.complex64, generator=torch.Generator().manual_seed(1))
    sources = _coil_maps(rank, shape)
    maps = torch.einsum("cr,r...->c...", mixing, sources)
    return fftc(maps * image), maps


@pytest.mark.parametrize("kind", ["svd", "geometric"])
def test_low_rank_array_compresses_without_loss(kind: str) -> None:
    """12 channels mixing 3 sources: 3 virtual coils keep all the energy, the energy rule picks 3, and
    compressing the maps in image space equals compressing the k-space (``S'·x`` transforms to ``y'``)."""
    kspace, maps = _low_rank_kspace(12, 3)
    options = CoilCompression(kind, 3)  # type: ignore[arg-type]
    matrices = compression_matrices(kspace, None, options)
    compressed = compress_kspace(kspace, matrices)
    assert compressed.shape == (3, 40, 36)
    energy = float((compressed.abs() ** 2).sum() / (kspace.abs() ** 2).sum())
    assert energy == pytest.approx(1.0, abs=1e-5)
    assert virtual_coil_count(kspace, None, CoilCompression(kind, None, 0.999)) == 3  # type: ignore[arg-type]
    expected = fftc(compress_maps(maps, matrices, 2) * _object((40, 36)))
    torch.testing.assert_close(compressed, expected, atol=1e-4 * float(expected.abs().max()), rtol=0)


def test_geometric_needs_complete_readout_lines() -> None:
    """A 2-D Poisson-disc mask varies along the readout: geometric compression refuses, auto falls back to svd."""
    kspace, _ = _low_rank_kspace(8, 3, (48, 48))
    mask = poisson_disc_mask((48, 48), 3, (16, 16), seed=0)
    with pytest.raises(ValueError, match="complete along the readout"):
        compression_matrices(kspace * mask, mask, CoilCompression("geometric", 4))
    assert compression_matrices(kspace * mask, mask, CoilCompression("auto", 4)).shape == (4, 8)
    lines = random_line_mask((48, 48), 4, 0.25, 0, axis=-2)
    assert compression_matrices(kspace * lines, lines, CoilCompression("auto", 4)).shape == (48, 4, 8)


@needs_bart
def test_matches_bart_cc(tmp_path: Path) -> None:
    """`bart phantom -k -s 8 -x 64` → `bart cc -p 4 -S` and `-G`.

    SVD: the same virtual coils up to a phase each (|correlation| > 0.9999). Geometric: the same
    energy kept and, per readout position, the same space up to a unitary mixing (the alignment
    starts from an arbitrary basis at the edge of the field of view): residual < 2 %.
    """
    bart(tmp_path, "phantom", "-k", "-s", 8, "-x", 64, "k")
    bart(tmp_path, "noise", "-s", 1, "-n", 100, "k", "kn")
    kspace = torch.from_numpy(read_bart_array(tmp_path / "kn")[0].reshape(8, 64, 64))
    total = float((kspace.abs() ** 2).sum())
    for kind, flag in (("svd", "-S"), ("geometric", "-G")):
        bart(tmp_path, "cc", "-p", 4, flag, "kn", f"cc_{kind}")
        theirs = torch.from_numpy(read_bart_array(tmp_path / f"cc_{kind}")[0].reshape(4, 64, 64))
        ours = compress_kspace(kspace, compression_matrices(kspace, None, CoilCompression(kind, 4)))  # type: ignore[arg-type]
        assert float((ours.abs() ** 2).sum()) / total == pytest.approx(float((theirs.abs() ** 2).sum()) / total, abs=2e-3)
        if kind == "svd":
            for virtual in range(4):
                correlation = abs(torch.vdot(ours[virtual].flatten(), theirs[virtual].flatten()))
                assert float(correlation / (ours[virtual].norm() * theirs[virtual].norm())) > 0.9999
        else:
            a, b = ifftc(ours, 1).to(torch.complex128).movedim(-1, 0), ifftc(theirs, 1).to(torch.complex128).movedim(-1, 0)
            left, _, right = torch.linalg.svd(b @ a.conj().transpose(-1, -2))
            assert float((b - left @ right @ a).norm() / b.norm()) < 0.02
