"""The workflow commands are a shell over the public API: each parses its options, calls the
:mod:`medrestore.api` function of the same name with ``output=`` its ``-o`` path, and writes what
that call, made in memory, returns."""

from __future__ import annotations

import ast
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import medrestore
from medrestore import api
from medrestore.cli.main import main
from medrestore.core.image import affine_from_spacing
from medrestore.core.random import make_generator
from medrestore.data.phantoms import shepp_logan
from medrestore.io import read_image, write_image, write_kspace
from medrestore.physics.mri import MaskSpec, sample_mask
from medrestore.physics.mri.simulation import birdcage_coil_maps, simulate_kspace

CLI = Path(medrestore.__file__).parent / "cli"
WORKFLOWS = {"degrade": "degrade", "denoise": "denoise", "superres": "superres", "harmonize": "harmonize", "recon": "recon",
             "evaluate": "evaluate"}  # fmt: skip
# the task functions that do each workflow's work; a command calling one directly would bypass the API
TASK_FUNCTIONS = {"degrade_file", "denoise_file", "denoise_mri_file", "superres_file", "harmonize_file", "reconstruct_file",
                  "reconstruct_any", "reconstruct", "evaluate_files", "evaluate_images"}  # fmt: skip


@pytest.mark.parametrize("command", sorted(WORKFLOWS))
def test_a_command_imports_no_task_function(command: str) -> None:
    """What a workflow command takes from :mod:`medrestore.tasks` is vocabulary (choices, defaults), never the work."""
    tree = ast.parse((CLI / f"{command}.py").read_text(encoding="utf-8"))
    imported = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("medrestore.tasks")
        for alias in node.names
    }
    assert not imported & TASK_FUNCTIONS
    assert any(isinstance(node, ast.ImportFrom) and node.module == "medrestore" and any(a.name == "api" for a in node.names)
               for node in ast.walk(tree))  # fmt: skip


def _spy(monkeypatch: pytest.MonkeyPatch, name: str) -> list[dict[str, Any]]:
    """Replace ``medrestore.api.<name>`` by a wrapper that records its keyword arguments and calls it."""
    calls: list[dict[str, Any]] = []
    real: Callable[..., api.Result] = getattr(api, name)

    def spy(*args: Any, **kwargs: Any) -> api.Result:
        calls.append({"args": args, **kwargs})
        return real(*args, **kwargs)

    monkeypatch.setattr(api, name, spy)
    return calls


def _image(tmp_path: Path, name: str, modality: str = "mri", size: int = 48) -> Path:
    image = medrestore.Image(torch.from_numpy(shepp_logan(size)), affine_from_spacing((1.0, 1.0)), 2, modality)
    write_image(image, tmp_path / name)
    return tmp_path / name


def _same_as_in_memory(output: Path, in_memory: medrestore.Image) -> None:
    torch.testing.assert_close(read_image(output).data, in_memory.data)


def test_degrade_and_denoise_go_through_the_api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clean = _image(tmp_path, "clean.nii.gz")
    calls = _spy(monkeypatch, "degrade")
    assert main(["degrade", str(clean), "-o", str(tmp_path / "noisy.nii.gz"), "--kind", "rician", "--sigma", "0.05", "--seed", "2"]) == 0
    assert len(calls) == 1 and calls[0]["output"] == str(tmp_path / "noisy.nii.gz") and calls[0]["sigma"] == 0.05
    _same_as_in_memory(tmp_path / "noisy.nii.gz", medrestore.degrade(clean, "rician", 2, sigma=0.05).output)

    calls = _spy(monkeypatch, "denoise")
    out = tmp_path / "denoised.nii.gz"
    assert main(["denoise", "--modality", "mri", str(tmp_path / "noisy.nii.gz"), "-o", str(out), "--method", "nlm", "--device", "cpu"]) == 0
    assert len(calls) == 1 and calls[0]["output"] == str(out)
    result = medrestore.denoise(tmp_path / "noisy.nii.gz", "mri", "nlm", device="cpu")
    _same_as_in_memory(out, result.output)
    written = json.loads(out.with_name(out.name + ".json").read_text())
    assert (written["method"], written["sigmas"]) == (result.record["method"], result.record["sigmas"])


def test_superres_goes_through_the_api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    counts = np.random.default_rng(0).poisson(20.0 * shepp_logan(32) + 1.0).astype(np.float32)
    source = tmp_path / "counts.nii.gz"
    write_image(medrestore.Image(torch.from_numpy(counts), affine_from_spacing((4.0, 4.0)), 2, "nm"), source)
    calls = _spy(monkeypatch, "superres")
    out = tmp_path / "fine.nii.gz"
    assert main(["superres", str(source), "-o", str(out), "--method", "mlem", "--iterations", "5", "--distance", "50"]) == 0
    assert len(calls) == 1 and (calls[0]["iterations"], calls[0]["distance_mm"], calls[0]["output"]) == (5, 50.0, str(out))
    _same_as_in_memory(out, medrestore.superres(source, 4, "mlem", device="cpu", iterations=5, distance_mm=50.0).output)


def test_recon_and_evaluate_go_through_the_api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    clean = torch.from_numpy(shepp_logan(48))
    maps = birdcage_coil_maps((48, 48), 4, 1.5)
    mask = sample_mask(MaskSpec("equispaced", 2, 0.16, 0), (48, 48))
    kspace = medrestore.KSpace(simulate_kspace(clean.to(torch.complex64), maps, 0.0, make_generator(0)) * mask, (48, 48), mask)
    write_kspace(kspace, tmp_path / "k.npz")
    reference = _image(tmp_path, "reference.nii.gz")
    calls = _spy(monkeypatch, "recon")
    out = tmp_path / "recon.nii.gz"
    assert main(["recon", str(tmp_path / "k.npz"), "-o", str(out), "--method", "sense", "--maps", "1", "--device", "cpu",
                 "--reference", str(reference)]) == 0  # fmt: skip
    assert len(calls) == 1 and (calls[0]["output"], calls[0]["reference"]) == (str(out), str(reference))
    image, record = medrestore.recon(kspace, "sense", device="cpu", reference=reference)
    _same_as_in_memory(out, image)
    written = json.loads(out.with_name(out.name + ".json").read_text())
    assert written["metrics"]["psnr"] == pytest.approx(record["metrics"]["psnr"], abs=1e-6)

    calls = _spy(monkeypatch, "evaluate")
    capsys.readouterr()
    assert main(["evaluate", "--pred", str(out), "--reference", str(reference), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert len(calls) == 1 and printed["pred"] == str(out) and printed["convention"] == "default"
    assert printed["metrics"] == pytest.approx(medrestore.evaluate(read_image(out), read_image(reference)).output, rel=1e-9)


def test_harmonize_goes_through_the_api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = _image(tmp_path, "slice.nii.gz", size=64)
    calls = _spy(monkeypatch, "harmonize")
    out = tmp_path / "harmonized.nii.gz"
    assert main(["harmonize", str(source), "-o", str(out), "--model", "coupled-dictionary-sim", "--direction", "a2b"]) == 0
    assert len(calls) == 1 and calls[0]["output"] == str(out)
    _same_as_in_memory(out, medrestore.harmonize(source, "coupled-dictionary-sim", "a2b").output)
