"""`medrestore models`: text and JSON listings, filters, and a clear error for a broken zoo card."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from medrestore.cli.main import main
from medrestore.models import METHODS, MODELS, create_model
from medrestore.zoo import save_to_zoo

torch.set_num_threads(1)


@pytest.fixture
def zoo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A zoo folder on MEDRESTORE_ZOO holding one OCT denoiser and one MRI reconstruction model."""
    folder = tmp_path / "zoo"
    monkeypatch.setenv("MEDRESTORE_ZOO", "")
    training = {"data": "d", "split": "s", "command": "c", "seed": 0, "epochs": 1, "duration_s": 0.1}
    torch.manual_seed(0)
    save_to_zoo(
        create_model("dncnn", {"depth": 3, "width": 4}),
        name="cli-test-oct-dncnn",
        task="denoise",
        modality="oct",
        normalisation={"method": "none"},
        training=training,
        metrics={"convention": "oct", "psnr": 30.1, "ssim": 0.85},
        licence="Apache-2.0",
        description="test",
        zoo_dir=folder,
    )
    save_to_zoo(
        create_model("unet", {"base_channels": 2, "depth": 1, "in_channels": 2, "out_channels": 2}),
        name="cli-test-mri-unet",
        task="recon",
        modality="mri",
        normalisation={"method": "none"},
        training=training,
        metrics={"convention": "fastmri-knee-val", "psnr": 35.25, "ssim": 0.912, "nmse": 0.0123},
        licence="MIT",
        description="test",
        zoo_dir=folder,
    )
    monkeypatch.setenv("MEDRESTORE_ZOO", str(folder))
    return folder


def test_text_listing(zoo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models"]) == 0
    output = capsys.readouterr().out
    for name in MODELS.names() + METHODS.names():
        assert f"\n  {name} " in output
    header = next(line for line in output.splitlines() if line.lstrip().startswith("NAME") and "KIND" in line)
    longest = max(len(name) for name in MODELS.names() + METHODS.names())
    assert header.split() == ["NAME", "KIND", "TASK", "MODALITY", "DESCRIPTION"] and header.index("KIND") == 2 + longest + 2
    lines = {line.split()[0]: line for line in output.splitlines() if line.startswith("  cli-test")}
    assert lines["cli-test-oct-dncnn"].split()[1:4] == ["denoise", "oct", "dncnn"]
    assert lines["cli-test-oct-dncnn"].endswith("PSNR 30.10 dB / SSIM 0.850 (oct)")
    assert lines["cli-test-mri-unet"].endswith("PSNR 35.25 dB / SSIM 0.912 / NMSE 0.0123 (fastmri-knee-val)")


def test_json_listing(zoo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    kinds = {entry["name"]: entry["kind"] for entry in record["entries"]}
    assert kinds == {**{name: "architecture" for name in MODELS.names()}, **{name: "method" for name in METHODS.names()}}
    assert set(record["entries"][0]) == {"name", "kind", "task", "modality", "description"}
    zoo_entries = {entry["name"]: entry for entry in record["zoo"]}
    dncnn = zoo_entries["cli-test-oct-dncnn"]
    assert (dncnn["task"], dncnn["modality"], dncnn["architecture"]) == ("denoise", "oct", "dncnn")
    assert dncnn["metric_values"] == {"psnr": 30.1, "ssim": 0.85}
    assert dncnn["metric_convention"] == "oct"
    assert dncnn["card_path"] == str(zoo / "cards" / "cli-test-oct-dncnn.json")


def test_filters(zoo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "--task", "superres", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert [entry["name"] for entry in record["entries"]] == ["unet", "srcnn", "srresnet", "vdsr"]  # unet serves any task
    assert not any(entry["name"].startswith("cli-test") for entry in record["zoo"])

    assert main(["models", "--task", "denoise", "--modality", "oct", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert [entry["name"] for entry in record["entries"]] == ["unet", "dncnn", "cae", "resunet", "multiframe", "resunet-ensemble", "median", "gaussian-filter", "nlm"]
    assert "cli-test-oct-dncnn" in [entry["name"] for entry in record["zoo"]]
    assert "cli-test-mri-unet" not in [entry["name"] for entry in record["zoo"]]

    assert main(["models", "--modality", "mri", "--task", "recon"]) == 0
    output = capsys.readouterr().out
    assert "cli-test-mri-unet" in output and "cli-test-oct-dncnn" not in output and "dncnn " not in output


def test_no_match_and_empty_zoo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("MEDRESTORE_ZOO", str(tmp_path / "empty"))
    assert main(["models", "--task", "segment"]) == 0
    output = capsys.readouterr().out
    assert "unet" in output  # serves any task
    assert "median" not in output


def test_broken_card_is_reported_with_its_file(zoo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    card_path = zoo / "cards" / "cli-test-oct-dncnn.json"
    card_path.write_text("{not json")
    assert main(["models"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("medrestore: error: ") and str(card_path) in error and "not valid JSON" in error


def test_unknown_modality_is_refused_by_the_parser(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["models", "--modality", "xray"])
    assert exit_info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
