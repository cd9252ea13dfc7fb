"""``medrestore train`` with a harmonisation config, ``medrestore harmonize`` end to end, CycleGAN resume."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from medrestore.cli.main import main
from medrestore.core.errors import ConfigError
from medrestore.core.image import Image
from medrestore.core.random import make_generator
from medrestore.io import read_image, write_image
from medrestore.physics import ScannerAppearance
from medrestore.tasks.harmonize import harmonize_file, resolve_harmonizer
from medrestore.training.harmonize import CycleGANTrainer, harmonization_config_from_mapping, load_harmonizer

torch.set_num_threads(1)


def brain_like(size: int, seed: int) -> np.ndarray:
    """An ellipse with smooth random texture (0.4-1.0) on a zero background."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[:size, :size]
    ellipse = ((rows - size / 2) / (0.42 * size)) ** 2 + ((cols - size / 2) / (0.34 * size)) ** 2 <= 1
    coarse = rng.uniform(0.4, 1.0, (4, 4))
    texture = np.kron(coarse, np.ones((size // 4, size // 4)))
    return np.where(ellipse, texture, 0.0).astype(np.float32)


@pytest.fixture(scope="module")
def scanner_folders(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("scanners")
    for index in range(4):
        clean = torch.from_numpy(brain_like(32, index))[None]
        for scanner in ("a", "b"):
            image = ScannerAppearance(scanner=scanner)(clean, make_generator(index))[0]
            write_image(Image.from_array(image.numpy(), spacing=(1.0, 1.0)), root / scanner / f"subj{index:03d}_slice000.nii.gz")
    return root


def write_config(path: Path, method: str, root: Path, output: Path, **train: object) -> Path:
    config = {
        "method": method,
        "data": {"scanner_a_dir": str(root / "a"), "scanner_b_dir": str(root / "b")},
        "options": {"base_channels": 4, "depth": 2, "discriminator_channels": 4, "discriminator_layers": 2} if method == "cyclegan" else {},
        "train": {"output_dir": str(output), "batch_size": 2, **train},
    }
    path.write_text(yaml.safe_dump(config))
    return path


def test_train_histogram_matching_then_harmonize_a_slice_and_a_volume(scanner_folders: Path, tmp_path: Path) -> None:
    config = write_config(tmp_path / "hm.yaml", "histogram-matching", scanner_folders, tmp_path / "run")
    assert main(["train", "--config", str(config)]) == 0
    assert (tmp_path / "run" / "harmonizer.pt").is_file()
    source = scanner_folders / "b" / "subj000_slice000.nii.gz"
    output = tmp_path / "out.nii.gz"
    assert main(["harmonize", str(source), "-o", str(output), "--model", str(tmp_path / "run"), "--direction", "b2a"]) == 0
    record = json.loads(Path(f"{output}.json").read_text())
    expected = {"model": str(tmp_path / "run" / "harmonizer.pt"), "method": "histogram-matching", "direction": "b2a"}
    assert record["harmonization"] == {**expected, "noise_level": None, "seed": 0, "grid": None}
    result, original = read_image(output), read_image(source)
    assert result.shape == original.shape and result.metadata["dtype"] == "float32"
    np.testing.assert_allclose(result.affine, original.affine)
    # DICOM output keeps the values through 16-bit storage with a rescale slope (never 8 bit)
    dicom = harmonize_file(source, tmp_path / "out.dcm", str(tmp_path / "run"), "b2a")
    stored = read_image(dicom["output"])
    np.testing.assert_allclose(stored.data.numpy(), result.data.numpy(), atol=2e-4 * float(result.data.max()))
    # a RAS+ volume is harmonised slice by slice with the same geometry
    volume = np.stack([np.flip(original.data.numpy(), 0).T] * 3, axis=-1)
    volume_path = tmp_path / "volume.nii.gz"
    write_image(Image.from_array(volume, spacing=(1.0, 1.0, 2.0)), volume_path)
    harmonize_file(volume_path, tmp_path / "volume-out.nii.gz", str(tmp_path / "run"), "b2a")
    harmonized = read_image(tmp_path / "volume-out.nii.gz")
    assert harmonized.shape == volume.shape
    np.testing.assert_allclose(np.flip(harmonized.data.numpy()[:, :, 1].T, 0), result.data.numpy(), atol=1e-5)


def test_harmonize_refuses_unknown_models_and_bad_input(scanner_folders: Path, tmp_path: Path) -> None:
    source = scanner_folders / "b" / "subj000_slice000.nii.gz"
    assert main(["harmonize", str(source), "-o", str(tmp_path / "x.nii.gz"), "--model", "no-such-model"]) == 2
    broken = tmp_path / "broken.nii.gz"
    broken.write_bytes(b"not nifti")
    config = write_config(tmp_path / "hm.yaml", "histogram-matching", scanner_folders, tmp_path / "run")
    main(["train", "--config", str(config)])
    assert main(["harmonize", str(broken), "-o", str(tmp_path / "y.nii.gz"), "--model", str(tmp_path / "run")]) == 2


def test_bad_harmonization_config_names_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="method"):
        harmonization_config_from_mapping({"method": "magic", "data": {"scanner_a_dir": "a", "scanner_b_dir": "b"}}, "x.yaml", None)
    with pytest.raises(ConfigError, match="atomz"):
        harmonization_config_from_mapping(
            {"method": "coupled-dictionary", "data": {"scanner_a_dir": "a", "scanner_b_dir": "b"}, "options": {"atomz": 3}}, "x.yaml", None
        )


def test_cyclegan_training_resumes_exactly(scanner_folders: Path, tmp_path: Path) -> None:
    straight = write_config(tmp_path / "s.yaml", "cyclegan", scanner_folders, tmp_path / "straight", epochs=2)
    assert main(["train", "--config", str(straight)]) == 0
    split = write_config(tmp_path / "p.yaml", "cyclegan", scanner_folders, tmp_path / "split", epochs=1)
    main(["train", "--config", str(split)])
    resumed = write_config(tmp_path / "p.yaml", "cyclegan", scanner_folders, tmp_path / "split", epochs=2)
    assert main(["train", "--config", str(resumed), "--resume"]) == 0
    first = torch.load(tmp_path / "straight" / "last.pt", weights_only=True)["model"]["state_dict"]
    second = torch.load(tmp_path / "split" / "last.pt", weights_only=True)["model"]["state_dict"]
    assert all(torch.equal(first[key], second[key]) for key in first)
    history = json.loads((tmp_path / "straight" / "history.json").read_text())["epochs"]
    assert len(history) == 2 and all(np.isfinite(row["generator_loss"]) for row in history)
    harmonizer, _ = resolve_harmonizer(str(tmp_path / "straight"), "a2b")
    slices = load_harmonizer(tmp_path / "straight" / "last.pt").harmonize(torch.rand(2, 32, 32), "a2b")
    assert slices.shape == (2, 32, 32) and harmonizer.name == "cyclegan"


def test_cyclegan_trainer_reads_its_folders(scanner_folders: Path, tmp_path: Path) -> None:
    config = harmonization_config_from_mapping(
        yaml.safe_load(write_config(tmp_path / "c.yaml", "cyclegan", scanner_folders, tmp_path / "run").read_text()), "c.yaml", None
    )
    trainer = CycleGANTrainer(config)
    assert trainer.slices_a.shape == (4, 32, 32) and trainer.slices_b.shape == (4, 32, 32)


def test_zoo_cyclegan_maps_both_directions() -> None:
    from medrestore.zoo import list_cards

    names = {card.name for card in list_cards()}
    if "cyclegan-sim-b2a" not in names:
        pytest.skip("the cyclegan-sim zoo models are not installed")
    slices = torch.from_numpy(np.stack([brain_like(64, 0), brain_like(64, 1)]))
    for direction in ("a2b", "b2a"):
        harmonizer, label = resolve_harmonizer("cyclegan-sim", direction)
        output = harmonizer.harmonize(slices, direction)
        assert label == f"zoo:cyclegan-sim-{direction}" and output.shape == slices.shape
        assert bool(torch.isfinite(output).all())
    with pytest.raises(Exception, match="maps b2a, not a2b"):
        resolve_harmonizer("cyclegan-sim-b2a", "a2b")


class _Square(torch.nn.Module):
    """A non-linear stand-in network: ``x ↦ x²``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * x


def test_intensity_reference_makes_harmonisation_unit_free_and_grid_keeps_identity() -> None:
    from medrestore.models.harmonizers import NetworkHarmonizer
    from medrestore.tasks.harmonize import harmonize_image, harmonize_on_grid

    slice_ = torch.from_numpy(brain_like(40, 3))
    harmonizer = NetworkHarmonizer("square", {"b2a": _Square()})
    harmonizer.intensity_reference = {"a": 1.0, "b": 1.0}  # type: ignore[attr-defined]
    image = Image.from_array(slice_.numpy(), spacing=(1.0, 1.0))
    scaled = Image.from_array((250.0 * slice_).numpy(), spacing=(1.0, 1.0))
    first = harmonize_image(image, harmonizer, "b2a").data
    second = harmonize_image(scaled, harmonizer, "b2a").data
    torch.testing.assert_close(second, 250.0 * first, rtol=1e-4, atol=1e-3)
    identity = NetworkHarmonizer("identity", {"b2a": torch.nn.Identity()})
    stack = torch.from_numpy(np.stack([brain_like(36, 4)[:, :30]]))
    torch.testing.assert_close(harmonize_on_grid(stack, identity, "b2a", 16), stack)
