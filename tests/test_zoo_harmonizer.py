"""Fitted harmonisers in the zoo: the shipped coupled dictionaries, saving, loading and refusals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from medrestore.cli.main import main
from medrestore.core.errors import InputError, MedrestoreError
from medrestore.models.harmonizers import CoupledDictionary, CoupledDictionaryConfig, HistogramMatching
from medrestore.tasks.harmonize import resolve_harmonizer, zoo_harmonizer_names
from medrestore.zoo import (
    find_in_zoo,
    is_harmonizer_card,
    load_pretrained,
    load_pretrained_harmonizer,
    read_card,
    save_to_zoo,
)

torch.set_num_threads(1)

SHIPPED = "coupled-dictionary-sim"
REFERENCE = Path(__file__).parent / "reference" / "coupled_dictionary_sim.npz"
TRAINING = {"data": "d", "split": "s", "command": "c", "seed": 0, "epochs": 2, "duration_s": 0.1}


@pytest.fixture(scope="module")
def reference() -> dict[str, np.ndarray]:
    """Outputs of the fitted object on a fixed 32×32 slice, stored when the model was published."""
    with np.load(REFERENCE) as stored:
        return {key: stored[key] for key in stored.files}


def _small_fitted() -> CoupledDictionary:
    generator = torch.Generator().manual_seed(3)
    slices_a = torch.rand(2, 16, 16, generator=generator)
    slices_b = 1.5 * slices_a**2 + 0.1
    harmonizer = CoupledDictionary(CoupledDictionaryConfig(patch_size=3, atoms=8, iterations=2, coding_iterations=10, training_patches=200))
    harmonizer.fit(slices_a, slices_b, seed=0)
    return harmonizer


def _save(harmonizer: CoupledDictionary | HistogramMatching, folder: Path, name: str = "test-cd") -> None:
    save_to_zoo(
        harmonizer,
        name=name,
        task="harmonize",
        modality="mri",
        normalisation={"kind": "none"},
        training=TRAINING,
        metrics={"convention": "test"},
        licence="Apache-2.0",
        description="test",
        zoo_dir=folder,
    )


@pytest.mark.parametrize("direction", ["a2b", "b2a"])
def test_shipped_coupled_dictionary_reproduces_the_fitted_object(reference: dict[str, np.ndarray], direction: str) -> None:
    harmonizer, card = load_pretrained_harmonizer(SHIPPED)
    assert isinstance(harmonizer, CoupledDictionary) and card.architecture == "coupled-dictionary"
    output = harmonizer.harmonize(torch.from_numpy(reference["input"])[None], direction)[0].numpy()
    np.testing.assert_allclose(output, reference[direction], rtol=0, atol=1e-5)
    assert float(np.abs(output - reference["input"]).max()) > 0.05  # it changes the slice


def test_harmonize_model_name_resolves_to_the_shipped_dictionaries_in_both_directions() -> None:
    assert SHIPPED in zoo_harmonizer_names()
    for direction in ("a2b", "b2a"):
        harmonizer, label = resolve_harmonizer(SHIPPED, direction)
        assert label == f"zoo:{SHIPPED}" and set(harmonizer.intensity_reference) == {"a", "b"}  # type: ignore[attr-defined]


def test_harmonize_command_with_the_shipped_model_matches_the_fitted_object(
    reference: dict[str, np.ndarray], tmp_path: Path
) -> None:
    source = tmp_path / "slice.npy"
    np.save(source, reference["input"] * 250.0)  # raw units: rescaled by the card's intensity reference and back
    before = source.read_bytes()
    assert main(["harmonize", str(source), "-o", str(tmp_path / "out.npy"), "--model", SHIPPED, "--direction", "b2a"]) == 0
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), reference["b2a_units"], rtol=1e-5, atol=1e-4)
    assert source.read_bytes() == before
    assert json.loads((tmp_path / "out.npy.json").read_text())["harmonization"]["model"] == f"zoo:{SHIPPED}"


def test_shipped_model_is_listed_by_medrestore_models(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "--task", "harmonize"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith(f"  {SHIPPED} "))
    assert row.split()[1:4] == ["harmonize", "mri", "coupled-dictionary"]


def test_shipped_card_states_data_command_and_limits() -> None:
    entry = find_in_zoo(SHIPPED)
    card = entry.card
    assert is_harmonizer_card(card)
    assert "harmonize-data simulate" in str(card.training["data"])
    assert "configs/harmonize-coupled-dictionary-sim.yaml" in str(card.training["command"])
    assert "not validated on real scans" in card.description
    assert entry.weights_path.stat().st_size < 100_000


def test_saved_harmonizer_loads_with_identical_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDRESTORE_ZOO", str(tmp_path))
    fitted = _small_fitted()
    _save(fitted, tmp_path)
    loaded, card = load_pretrained_harmonizer("test-cd")
    assert card.options["patch_size"] == 3 and read_card(tmp_path / "cards" / "test-cd.json") == card
    image = torch.rand(1, 12, 10, generator=torch.Generator().manual_seed(5))
    for direction in ("a2b", "b2a"):
        assert torch.equal(loaded.harmonize(image, direction), fitted.harmonize(image, direction))


def test_networks_and_harmonisers_are_not_loaded_by_the_other_loader(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDRESTORE_ZOO", str(tmp_path))
    _save(_small_fitted(), tmp_path)
    with pytest.raises(MedrestoreError, match="'test-cd' is a fitted coupled-dictionary harmoniser.*load_pretrained_harmonizer"):
        load_pretrained("test-cd")
    with pytest.raises(MedrestoreError, match="'cyclegan-sim-a2b' is a unet-ensemble network, not a fitted harmoniser"):
        load_pretrained_harmonizer("cyclegan-sim-a2b")


def test_weights_of_another_harmoniser_are_refused_naming_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDRESTORE_ZOO", str(tmp_path))
    _save(_small_fitted(), tmp_path)
    card_path = tmp_path / "cards" / "test-cd.json"
    fitted_histogram = HistogramMatching()
    fitted_histogram.fit(torch.rand(1, 16, 16), torch.rand(1, 16, 16))
    _save(fitted_histogram, tmp_path, "test-hm")
    card = json.loads(card_path.read_text())
    other = json.loads((tmp_path / "cards" / "test-hm.json").read_text())
    card.update(weights_file=other["weights_file"], sha256=other["sha256"])
    card_path.write_text(json.dumps(card))
    with pytest.raises(InputError, match=r"test-hm\.pt.*do not fit harmoniser 'coupled-dictionary'.*missing \['curve_a2b'"):
        load_pretrained_harmonizer("test-cd")


def test_unregistered_harmoniser_is_refused_before_writing(tmp_path: Path) -> None:
    class Custom(CoupledDictionary):
        name = "custom"

    with pytest.raises(MedrestoreError, match="Custom \\(custom\\) is not a registered harmoniser class"):
        _save(Custom(), tmp_path)
    assert not (tmp_path / "cards").exists() and not (tmp_path / "weights").exists()
