"""Model zoo: cards, SHA-256 verification before loading, save/load round trip, zoo folders."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
import torch

from medrestore.core.errors import InputError, MedrestoreError
from medrestore.core.files import sha256_file
from medrestore.core.random import make_generator
from medrestore.models import create_model
from medrestore.zoo import (
    PACKAGED_ZOO,
    ModelCard,
    card_from_mapping,
    list_cards,
    list_zoo,
    load_pretrained,
    read_card,
    save_to_zoo,
    zoo_dirs,
)

torch.set_num_threads(1)

TRAINING = {
    "data": "synthetic-phantoms",
    "split": "train/val 80/20, seed 0",
    "command": "medrestore train configs/test.yaml",
    "seed": 0,
    "epochs": 2,
    "duration_s": 1.5,
}
METRICS = {"convention": "oct-test", "psnr": 30.1, "ssim": 0.85}


def small_unet(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return create_model("unet", {"base_channels": 4, "depth": 2, "norm": "batch"})


def save(model: torch.nn.Module, zoo_dir: Path, name: str = "test-unet-oct", **changes: object) -> ModelCard:
    fields: dict[str, object] = {
        "name": name,
        "task": "denoise",
        "modality": "oct",
        "normalisation": {"method": "percentile", "low": 1.0, "high": 99.0},
        "training": TRAINING,
        "metrics": METRICS,
        "licence": "Apache-2.0",
        "description": "test model",
        "zoo_dir": zoo_dir,
        "created": "2025-01-31",
    }
    fields.update(changes)
    return save_to_zoo(model, **fields)  # type: ignore[arg-type]


@pytest.fixture
def zoo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "zoo"
    monkeypatch.setenv("MEDRESTORE_ZOO", str(folder))
    return folder


def test_save_then_load_gives_identical_outputs(zoo: Path) -> None:
    model = small_unet()
    with torch.no_grad():  # make the batch-norm buffers non-trivial so they must be saved too
        model.train()(torch.randn(4, 1, 16, 16, generator=make_generator(0)) * 3 + 1)
    model.eval()
    card = save(model, zoo)
    assert (zoo / "weights" / "test-unet-oct.pt").is_file()
    assert card.sha256 == sha256_file(zoo / "weights" / "test-unet-oct.pt")
    assert card.architecture == "unet" and card.options["base_channels"] == 4 and card.options["norm"] == "batch"
    assert read_card(zoo / "cards" / "test-unet-oct.json") == card

    loaded, loaded_card = load_pretrained("test-unet-oct")
    assert loaded_card == card
    assert not loaded.training
    image = torch.randn(2, 1, 21, 27, generator=make_generator(5))
    with torch.no_grad():
        assert torch.equal(loaded(image), model(image))
    assert not list(zoo.rglob(".*"))  # no temporary files left behind


def test_tampered_weights_are_refused_with_both_hashes(zoo: Path) -> None:
    card = save(small_unet(), zoo)
    weights = zoo / "weights" / "test-unet-oct.pt"
    payload = bytearray(weights.read_bytes())
    payload[len(payload) // 2] ^= 0xFF
    weights.write_bytes(bytes(payload))
    actual = hashlib.sha256(bytes(payload)).hexdigest()
    with pytest.raises(MedrestoreError) as error:
        load_pretrained("test-unet-oct")
    message = str(error.value)
    assert card.sha256 in message and actual in message and str(weights) in message


def test_missing_weights_file_is_refused(zoo: Path) -> None:
    card = save(small_unet(), zoo)
    (zoo / "weights" / "test-unet-oct.pt").unlink()
    with pytest.raises(MedrestoreError, match="missing") as error:
        load_pretrained("test-unet-oct")
    assert card.sha256 in str(error.value) and "test-unet-oct.pt" in str(error.value)


def test_weights_that_are_not_a_state_dict_are_refused(zoo: Path) -> None:
    save(small_unet(), zoo)
    weights = zoo / "weights" / "test-unet-oct.pt"
    torch.save([torch.zeros(2)], weights)
    card_path = zoo / "cards" / "test-unet-oct.json"
    record = json.loads(card_path.read_text())
    record["sha256"] = sha256_file(weights)
    card_path.write_text(json.dumps(record))
    with pytest.raises(InputError, match="state_dict"):
        load_pretrained("test-unet-oct")


def test_weights_that_do_not_fit_the_architecture_are_refused(zoo: Path) -> None:
    save(small_unet(), zoo)
    card_path = zoo / "cards" / "test-unet-oct.json"
    record = json.loads(card_path.read_text())
    record["options"]["base_channels"] = 8
    card_path.write_text(json.dumps(record))
    with pytest.raises(InputError, match="do not fit architecture 'unet'"):
        load_pretrained("test-unet-oct")


def test_card_with_a_missing_field_is_refused_naming_the_file(zoo: Path) -> None:
    save(small_unet(), zoo)
    card_path = zoo / "cards" / "test-unet-oct.json"
    record = json.loads(card_path.read_text())
    del record["licence"]
    card_path.write_text(json.dumps(record))
    with pytest.raises(InputError, match="missing field.*licence") as error:
        list_cards()
    assert str(card_path) in str(error.value)
    with pytest.raises(InputError) as error:
        load_pretrained("test-unet-oct")
    assert str(card_path) in str(error.value)


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"owner": "me"}, "unknown field"),
        ({"sha256": "abc"}, "64 lower-case hex"),
        ({"created": "31/01/2025"}, "ISO date"),
        ({"modality": "xray"}, "modality"),
        ({"architecture": "no-such-net"}, "not registered"),
        ({"options": {"depth": "two"}}, "options do not fit unet"),
        ({"metrics": {"psnr": 30.0}}, "convention"),
        ({"metrics": {"convention": "x", "psnr": "high"}}, "finite number"),
        ({"training": {"data": "x"}}, "training record is missing"),
        ({"weights_file": "../elsewhere.pt"}, "relative path inside"),
        ({"name": "other-name"}, "does not match its file name"),
    ],
)
def test_invalid_cards_are_refused_naming_the_file(tmp_path: Path, change: dict[str, object], problem: str) -> None:
    card = save(small_unet(), tmp_path / "zoo-a")
    card_path = tmp_path / "zoo-a" / "cards" / f"{card.name}.json"
    card_path.write_text(json.dumps({**card.to_dict(), **change}))
    with pytest.raises(InputError, match=problem) as error:
        read_card(card_path)
    assert str(error.value).startswith(f"{card_path}: ")


def test_card_validation_without_a_file() -> None:
    with pytest.raises(InputError, match="must be a JSON object"):
        card_from_mapping([1, 2])
    record = {
        "name": "delta",
        "task": "denoise",
        "modality": "any",
        "architecture": "dncnn",
        "options": {},
        "normalisation": {},
        "training": TRAINING,
        "metrics": METRICS,
        "licence": "CC-BY-4.0",
        "weights_file": "weights/delta.pt",
        "sha256": "0" * 64,
        "created": "2024-02-29",
        "description": "",
    }
    assert card_from_mapping(record).metric_values == {"psnr": 30.1, "ssim": 0.85}
    with pytest.raises(InputError, match="not plain JSON"):
        card_from_mapping({**record, "metrics": {"convention": "x", "psnr": float("nan")}})
    with pytest.raises(InputError, match="training.seed must be an integer"):
        card_from_mapping({**record, "training": {**TRAINING, "seed": 1.5}})


def test_invalid_fields_write_nothing(zoo: Path) -> None:
    with pytest.raises(InputError, match="convention"):
        save(small_unet(), zoo, metrics={"psnr": 30.0})
    assert not zoo.exists()


def test_zoo_dirs_and_listing_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    monkeypatch.setenv("MEDRESTORE_ZOO", "")
    save(small_unet(), first, name="alpha")
    save(small_unet(1), second, name="beta", modality="mri", metrics={"convention": "fastmri-val", "nmse": 0.01})
    monkeypatch.setenv("MEDRESTORE_ZOO", os.pathsep.join([str(first), "", str(second)]))
    assert zoo_dirs() == [PACKAGED_ZOO, first, second]
    entries = {entry.card.name: entry for entry in list_zoo()}
    assert {"alpha", "beta"} <= set(entries)
    assert entries["alpha"].zoo_dir == first and entries["beta"].zoo_dir == second
    assert {card.name for card in list_cards()} >= {"alpha", "beta"}
    assert entries["alpha"].card.metrics_summary() == "PSNR 30.10 dB / SSIM 0.850 (oct-test)"
    assert entries["beta"].card.metrics_summary() == "NMSE 0.0100 (fastmri-val)"


def test_first_folder_wins_and_names_cannot_be_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    monkeypatch.setenv("MEDRESTORE_ZOO", "")
    save(small_unet(0), first, name="gamma", description="first")
    save(small_unet(1), second, name="gamma", description="second")
    monkeypatch.setenv("MEDRESTORE_ZOO", os.pathsep.join([str(first), str(second)]))
    assert [card.description for card in list_cards() if card.name == "gamma"] == ["first"]
    _, card = load_pretrained("gamma")
    assert card.description == "first"
    with pytest.raises(MedrestoreError, match="already exists there") as error:
        save(small_unet(), second, name="gamma", overwrite=True)  # an earlier folder would shadow it
    assert str(first / "cards" / "gamma.json") in str(error.value)
    replaced = save(small_unet(2), first, name="gamma", description="replaced", overwrite=True)
    assert read_card(first / "cards" / "gamma.json") == replaced
    with pytest.raises(MedrestoreError, match="already exists"):
        save(small_unet(), first, name="gamma")


def test_unknown_names_and_unregistered_models(zoo: Path) -> None:
    with pytest.raises(MedrestoreError, match="no pretrained model 'absent'.*MEDRESTORE_ZOO"):
        load_pretrained("absent")
    with pytest.raises(MedrestoreError, match="invalid zoo name"):
        load_pretrained("../escape")
    with pytest.raises(MedrestoreError, match="not a registered architecture"):
        save(torch.nn.Conv2d(1, 1, 3), zoo)


def test_publish_checkpoint_records_the_run_and_reloads_identically(zoo: Path, tmp_path: Path) -> None:
    from medrestore.data.normalisation import ZScoreImage
    from medrestore.tasks.models import publish_checkpoint
    from medrestore.training.checkpoint import CHECKPOINT_FORMAT, save_checkpoint

    torch.manual_seed(0)
    options = {"spatial_ndim": 2, "in_channels": 1, "out_channels": 1, "depth": 3, "width": 8, "batch_norm": False, "residual": True}
    model = create_model("dncnn", options)
    history = [{"epoch": 1, "seconds": 1.25}, {"epoch": 2, "seconds": 2.5}]
    save_checkpoint(tmp_path / "last.pt", {
        "format": CHECKPOINT_FORMAT, "model": {"name": "dncnn", "options": options, "state_dict": model.state_dict()},
        "normalisation": ZScoreImage().record(), "inference": {"window": None}, "optimizer": {},
        "progress": {"global_step": 40}, "config": {}, "seed": 7, "history": history,
    })  # fmt: skip
    card = publish_checkpoint(
        tmp_path / "last.pt", name="tiny-published", task="denoise", modality="oct",
        training={"data": "generated", "split": "none", "command": "train", "epochs": 2}, metrics={"convention": "default", "psnr": 30.0},
        description="test", zoo_dir=zoo,
    )  # fmt: skip
    assert card.training == {"seed": 7, "epochs": 2, "steps": 40, "duration_s": 3.8, "data": "generated", "split": "none", "command": "train"}
    assert card.normalisation == ZScoreImage().record()
    loaded, _ = load_pretrained("tiny-published")
    image = torch.rand(1, 1, 12, 12, generator=make_generator(0))
    with torch.no_grad():
        torch.testing.assert_close(loaded.eval()(image), model.eval()(image))


def test_several_checkpoints_publish_as_one_ensemble_model(zoo: Path, tmp_path: Path) -> None:
    from medrestore.data.normalisation import FixedRange, ZScoreImage
    from medrestore.tasks.models import publish_checkpoint
    from medrestore.training.checkpoint import CHECKPOINT_FORMAT, save_checkpoint

    options = {"widths": [4, 8], "blocks": [1, 1], "preserve_mean": True}
    members = []
    for index, (seed, seconds) in enumerate(((3, 1.5), (4, 2.5))):
        torch.manual_seed(seed)
        members.append(create_model("resunet", options).eval())
        save_checkpoint(tmp_path / f"m{index}.pt", {
            "format": CHECKPOINT_FORMAT, "model": {"name": "resunet", "options": options, "state_dict": members[-1].state_dict()},
            "normalisation": FixedRange(scale=255.0).record(), "inference": {"window": None}, "optimizer": {},
            "progress": {"global_step": 10 * (index + 1)}, "config": {}, "seed": seed, "history": [{"epoch": 1, "seconds": seconds}],
        })  # fmt: skip
    card = publish_checkpoint(
        [tmp_path / "m0.pt", tmp_path / "m1.pt"], name="tiny-pair", task="denoise", modality="oct",
        training={"data": "generated", "split": "none", "command": "train twice"}, metrics={"convention": "default", "psnr": 30.0},
        description="test", zoo_dir=zoo,
    )  # fmt: skip
    assert card.architecture == "resunet-ensemble" and card.options["members"] == 2
    assert (card.training["seed"], card.training["epochs"], card.training["steps"], card.training["duration_s"]) == (3, 2, 30, 4.0)
    assert [member["seed"] for member in card.training["members"]] == [3, 4]  # type: ignore[index]
    loaded, _ = load_pretrained("tiny-pair")
    image = torch.rand(1, 1, 12, 16, generator=make_generator(0))
    with torch.no_grad():
        torch.testing.assert_close(loaded.eval()(image), (members[0](image) + members[1](image)) / 2)
    save_checkpoint(tmp_path / "other.pt", {**torch.load(tmp_path / "m1.pt", weights_only=False), "normalisation": ZScoreImage().record()})
    with pytest.raises(Exception, match="normalise their inputs differently"):
        publish_checkpoint(
            [tmp_path / "m0.pt", tmp_path / "other.pt"], name="tiny-bad", task="denoise", modality="oct",
            training={"data": "g", "split": "none", "command": "t"}, metrics={"convention": "default"}, description="", zoo_dir=zoo,
        )  # fmt: skip
