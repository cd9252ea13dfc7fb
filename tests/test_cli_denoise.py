"""``medrestore denoise``: zoo models and checkpoints, 8/16-bit and float TIFFs, stacks, frames, tiling, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image as PILImage

from medrestore.cli.main import main
from medrestore.data.normalisation import FixedRange
from medrestore.data.oct import align_frames
from medrestore.metrics import evaluate
from medrestore.models import create_model
from medrestore.tasks import denoise as denoise_task
from medrestore.tasks.denoise import DEFAULT_MODELS, DEFAULT_MULTIFRAME_MODELS, denoise_file
from medrestore.zoo import load_pretrained, save_to_zoo

torch.set_num_threads(1)
TRAINING_RECORD = {"data": "synthetic", "split": "none", "command": "test", "seed": 0, "epochs": 0, "duration_s": 0.0}


def publish(zoo: Path, name: str, architecture: str, options: dict[str, object]) -> torch.nn.Module:
    torch.manual_seed(0)
    model = create_model(architecture, options)
    save_to_zoo(
        model, name=name, task="denoise", modality="oct", normalisation=FixedRange(scale=255.0).record(),
        training=TRAINING_RECORD, metrics={"convention": "none"}, licence="Apache-2.0", description="test", zoo_dir=zoo,
    )  # fmt: skip
    return model.eval()


@pytest.fixture()
def zoo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, torch.nn.Module]:
    folder = tmp_path / "zoo"
    monkeypatch.setenv("MEDRESTORE_ZOO", str(folder))
    return {
        "tiny-oct": publish(folder, "tiny-oct", "resunet", {"widths": [4, 8], "blocks": [1, 1]}),
        "tiny-oct-b": publish(folder, "tiny-oct-b", "resunet", {"widths": [6, 8], "blocks": [1, 1], "residual": False}),
        "tiny-frames": publish(folder, "tiny-frames", "multiframe", {"frames": 3, "widths": [4, 8], "blocks": [1, 1]}),
    }


def bscan(seed: int, shape: tuple[int, ...] = (40, 56)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=shape).astype(np.uint8)


def expected_eight_bit(model: torch.nn.Module, frames: np.ndarray) -> np.ndarray:
    """``round(clip(255 · model(x / 255), 0, 255))`` for ``frames (F, H, W)`` on 0–255."""
    with torch.no_grad():
        output = model(torch.from_numpy(frames.astype(np.float32) / 255.0)[None])[0, 0] * 255.0
    return np.rint(output.clamp(0, 255).numpy()).astype(np.uint8)


def test_denoise_eight_bit_tiff_with_a_zoo_model(tmp_path: Path, zoo: dict[str, torch.nn.Module], capsys: pytest.CaptureFixture[str]) -> None:
    noisy = bscan(1)
    tifffile.imwrite(tmp_path / "in.tif", noisy)
    code = main(["denoise", "--modality", "oct", str(tmp_path / "in.tif"), "-o", str(tmp_path / "out.tif"), "--model", "tiny-oct"])
    assert code == 0
    assert "tiny-oct" in capsys.readouterr().out
    output = tifffile.imread(tmp_path / "out.tif")
    assert output.dtype == np.uint8 and output.shape == noisy.shape
    difference = np.abs(output.astype(int) - expected_eight_bit(zoo["tiny-oct"], noisy[None]).astype(int))
    assert difference.max() <= 1 and np.mean(difference == 0) > 0.99
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "in.tif"), noisy)


def test_sixteen_bit_and_float_inputs_keep_their_dtype_and_range(tmp_path: Path, zoo: dict[str, torch.nn.Module]) -> None:
    noisy = bscan(2)
    tifffile.imwrite(tmp_path / "in8.tif", noisy)
    tifffile.imwrite(tmp_path / "in16.tif", noisy.astype(np.uint16) * 257)
    tifffile.imwrite(tmp_path / "in01.tif", noisy.astype(np.float32) / 255.0)
    for name in ("in8", "in16", "in01"):
        denoise_file(tmp_path / f"{name}.tif", tmp_path / f"{name}-out.tif", "oct", model="tiny-oct")
    eight = tifffile.imread(tmp_path / "in8-out.tif").astype(np.float64)
    sixteen = tifffile.imread(tmp_path / "in16-out.tif")
    unit = tifffile.imread(tmp_path / "in01-out.tif")
    assert sixteen.dtype == np.uint16 and unit.dtype == np.float32
    assert np.abs(sixteen / 257.0 - eight).max() <= 0.51
    assert 0.0 <= unit.min() and unit.max() <= 1.0
    assert np.abs(unit * 255.0 - eight).max() <= 0.51


def test_multipage_stack_is_denoised_page_by_page(tmp_path: Path, zoo: dict[str, torch.nn.Module]) -> None:
    pages = np.stack([bscan(seed) for seed in (3, 4, 5)])
    tifffile.imwrite(tmp_path / "stack.tif", pages, photometric="minisblack")
    result = denoise_file(tmp_path / "stack.tif", tmp_path / "stack-out.tif", "oct", model="tiny-oct")
    assert result.images == 3 and result.frames == 1
    output = tifffile.imread(tmp_path / "stack-out.tif")
    assert output.shape == pages.shape and output.dtype == np.uint8
    for page in range(3):
        difference = np.abs(output[page].astype(int) - expected_eight_bit(zoo["tiny-oct"], pages[page][None]).astype(int))
        assert difference.max() <= 1


def test_frames_feed_a_multi_frame_model(tmp_path: Path, zoo: dict[str, torch.nn.Module], capsys: pytest.CaptureFixture[str]) -> None:
    frames = [bscan(seed) for seed in (6, 7, 8)]
    paths = [tmp_path / f"{index}.tif" for index in range(3)]
    for path, frame in zip(paths, frames):
        tifffile.imwrite(path, frame)
    arguments = ["denoise", "--modality", "oct", str(paths[0]), "-o", str(tmp_path / "out.png"), "--model", "tiny-frames"]
    assert main([*arguments, "--frames", str(paths[1]), str(paths[2])]) == 0
    output = np.array(PILImage.open(tmp_path / "out.png"))
    aligned = align_frames(torch.from_numpy(np.stack(frames).astype(np.float32))).numpy()  # neighbours moved onto the input
    difference = np.abs(output.astype(int) - expected_eight_bit(zoo["tiny-frames"], aligned).astype(int))
    assert difference.max() <= 1
    assert main([*arguments, "--frames", str(paths[1])]) == 2
    assert "takes 3 frame(s)" in capsys.readouterr().err
    tifffile.imwrite(tmp_path / "small.tif", bscan(9, (20, 56)))
    assert main([*arguments, "--frames", str(paths[1]), str(tmp_path / "small.tif")]) == 2
    assert "small.tif" in capsys.readouterr().err


def test_large_images_are_tiled(tmp_path: Path, zoo: dict[str, torch.nn.Module], monkeypatch: pytest.MonkeyPatch) -> None:
    noisy = bscan(10, (96, 128))
    tifffile.imwrite(tmp_path / "in.tif", noisy)
    denoise_file(tmp_path / "in.tif", tmp_path / "whole.tif", "oct", model="tiny-oct")
    monkeypatch.setattr(denoise_task, "WHOLE_IMAGE_PIXELS", 1000)
    monkeypatch.setattr(denoise_task, "TILE", (64, 64))
    denoise_file(tmp_path / "in.tif", tmp_path / "tiled.tif", "oct", model="tiny-oct")
    whole, tiled = (tifffile.imread(tmp_path / f"{name}.tif").astype(int) for name in ("whole", "tiled"))
    assert whole.shape == tiled.shape
    assert np.mean(np.abs(whole - tiled)) < 2.0


def test_a_model_ensemble_averages_its_members(
    tmp_path: Path, zoo: dict[str, torch.nn.Module], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    noisy = bscan(13)
    tifffile.imwrite(tmp_path / "in.tif", noisy)
    assert main(["denoise", "--modality", "oct", str(tmp_path / "in.tif"), "-o", str(tmp_path / "out.tif"), "--model", "tiny-oct+tiny-oct-b"]) == 0
    assert "tiny-oct+tiny-oct-b" in capsys.readouterr().out
    with torch.no_grad():
        x = torch.from_numpy(noisy.astype(np.float32) / 255.0)[None, None]
        mean = (zoo["tiny-oct"](x) + zoo["tiny-oct-b"](x))[0, 0] * 255.0 / 2.0
    expected = np.rint(mean.clamp(0, 255).numpy()).astype(int)
    output = tifffile.imread(tmp_path / "out.tif").astype(int)
    assert np.abs(output - expected).max() <= 1 and np.mean(output == expected) > 0.99
    singles = [expected_eight_bit(zoo[name], noisy[None]).astype(int) for name in ("tiny-oct", "tiny-oct-b")]
    assert all(np.mean(output != single) > 0.5 for single in singles)  # neither member alone
    result = denoise_file(tmp_path / "in.tif", tmp_path / "api.tif", "oct", model="tiny-oct+tiny-oct-b")
    assert result.model == "tiny-oct+tiny-oct-b"
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "api.tif"), output.astype(np.uint8))
    monkeypatch.setattr(denoise_task, "WHOLE_IMAGE_PIXELS", 1000)  # each member is tiled
    monkeypatch.setattr(denoise_task, "TILE", (32, 32))
    denoise_file(tmp_path / "in.tif", tmp_path / "tiled.tif", "oct", model="tiny-oct+tiny-oct-b")
    assert np.mean(np.abs(tifffile.imread(tmp_path / "tiled.tif").astype(int) - output)) < 2.0


def test_a_model_ensemble_refuses_members_of_different_frame_counts(
    tmp_path: Path, zoo: dict[str, torch.nn.Module], capsys: pytest.CaptureFixture[str]
) -> None:
    tifffile.imwrite(tmp_path / "in.tif", bscan(14))
    arguments = ["denoise", "--modality", "oct", str(tmp_path / "in.tif"), "-o", str(tmp_path / "out.tif")]
    assert main([*arguments, "--model", "tiny-oct+tiny-frames"]) == 2
    assert "tiny-oct takes 1, tiny-frames takes 3" in capsys.readouterr().err
    assert main([*arguments, "--model", "tiny-oct+no-such-model"]) == 2
    assert "no-such-model" in capsys.readouterr().err
    assert not (tmp_path / "out.tif").exists()


def test_a_training_checkpoint_can_be_the_model(tmp_path: Path, zoo: dict[str, torch.nn.Module]) -> None:
    checkpoint = {
        "model": {"name": "resunet", "options": {"widths": [4, 8], "blocks": [1, 1]}, "state_dict": zoo["tiny-oct"].state_dict()},
        "normalisation": FixedRange(scale=255.0).record(),
        "inference": {"window": None, "overlap": 0.25, "blend": "gaussian", "batch_size": 1},
    }
    torch.save(checkpoint, tmp_path / "last.pt")
    tifffile.imwrite(tmp_path / "in.tif", bscan(11))
    denoise_file(tmp_path / "in.tif", tmp_path / "a.tif", "oct", model=str(tmp_path / "last.pt"))
    denoise_file(tmp_path / "in.tif", tmp_path / "b.tif", "oct", model="tiny-oct")
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "a.tif"), tifffile.imread(tmp_path / "b.tif"))


def test_errors_are_reported_without_tracebacks(tmp_path: Path, zoo: dict[str, torch.nn.Module], capsys: pytest.CaptureFixture[str]) -> None:
    tifffile.imwrite(tmp_path / "in.tif", bscan(12))
    base = ["denoise", "--modality", "oct", str(tmp_path / "in.tif")]
    assert main([*base, "-o", str(tmp_path / "out.tif"), "--model", "no-such-model"]) == 2
    assert "no-such-model" in capsys.readouterr().err
    assert main([*base, "-o", str(tmp_path / "in.tif"), "--model", "tiny-oct"]) == 2
    assert "input" in capsys.readouterr().err
    assert main(["denoise", "--modality", "oct", str(tmp_path / "missing.tif"), "-o", str(tmp_path / "o.tif")]) == 2
    assert "missing.tif" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*base, "-o", str(tmp_path / "out.tif"), "--modality", "ct"])
    with pytest.raises(Exception, match="modality 'ct'"):
        denoise_file(tmp_path / "in.tif", tmp_path / "out.tif", "ct")
    with pytest.raises(Exception, match="--method"):  # MRI takes a method, not an OCT model
        denoise_file(tmp_path / "in.tif", tmp_path / "out.tif", "mri", model="tiny-oct")


# -- the shipped models on the real data ---------------------------------------------------------
def test_shipped_models_load_and_record_their_validation_scores() -> None:
    for name in (DEFAULT_MODELS["oct"], DEFAULT_MULTIFRAME_MODELS["oct"], "resunet-oct-duke", "srcnn-oct-duke", "cae-oct-duke"):
        model, card = load_pretrained(name)
        assert card.modality == "oct" and card.task == "denoise"
        assert "9-12" in card.training["split"] and card.metric_values["psnr"] > 26.0
    _, default = load_pretrained(DEFAULT_MODELS["oct"])
    assert default.architecture == "resunet-ensemble" and default.options["members"] == 2
    # the best published peers on 9-12 reach 26.60 dB (MIFCN) and SSIM 0.673
    assert default.metric_values["psnr"] >= 26.60 + 0.3 and default.metric_values["ssim"] >= 0.673 + 0.009
    assert default.metric_values["seconds_per_bscan"] <= 1.0


def test_default_model_beats_the_published_peers_on_the_validation_eyes(shared_data: Path, tmp_path: Path) -> None:
    scores = []
    for subject in ("9", "10", "11", "12"):
        folder = shared_data / "oct-duke-bioptigen" / subject
        denoise_file(folder / "test.tif", tmp_path / f"{subject}.tif", "oct")
        scores.append(evaluate(tifffile.imread(tmp_path / f"{subject}.tif"), tifffile.imread(folder / "average.tif"), convention="oct"))
    psnr, ssim = np.mean([score["psnr"] for score in scores]), np.mean([score["ssim"] for score in scores])
    _, card = load_pretrained(DEFAULT_MODELS["oct"])
    assert psnr == pytest.approx(card.metric_values["psnr"], abs=0.02) and ssim == pytest.approx(card.metric_values["ssim"], abs=0.002)
    assert psnr > 26.60 + 0.3 and ssim > 0.673 + 0.009  # MIFCN, the best published peer: 26.60 dB / 0.673


def test_default_model_on_real_subject_nine(shared_data: Path, tmp_path: Path) -> None:
    folder = shared_data / "oct-duke-bioptigen" / "9"
    average = tifffile.imread(folder / "average.tif")
    result = denoise_file(folder / "test.tif", tmp_path / "out.tif", "oct")
    assert result.model == DEFAULT_MODELS["oct"]
    output = tifffile.imread(tmp_path / "out.tif")
    assert output.dtype == np.uint8 and output.shape == average.shape == (401, 900)
    scores = evaluate(output, average, convention="oct")
    noisy = evaluate(tifffile.imread(folder / "test.tif"), average, convention="oct")
    assert scores["psnr"] > noisy["psnr"] + 7.0 and scores["ssim"] > 0.6
    tifffile.imwrite(tmp_path / "in16.tif", tifffile.imread(folder / "test.tif").astype(np.uint16) * 257)
    denoise_file(tmp_path / "in16.tif", tmp_path / "out16.tif", "oct")
    sixteen = tifffile.imread(tmp_path / "out16.tif")
    assert sixteen.dtype == np.uint16
    assert np.abs(sixteen / 257.0 - output).max() <= 0.51
    frames = [folder / f"{index}.tif" for index in range(1, 5)]
    multi = denoise_file(folder / "test.tif", tmp_path / "multi.tif", "oct", frames=frames)
    assert multi.frames == 5 and multi.model == DEFAULT_MULTIFRAME_MODELS["oct"]
    multi_scores = evaluate(tifffile.imread(tmp_path / "multi.tif"), average, convention="oct")
    assert multi_scores["psnr"] > noisy["psnr"] + 7.0 and multi_scores["ssim"] > 0.6
