"""OCT data: the Duke/Bioptigen and noisy/clean layouts, 8/16-bit and multi-page files, pairs, crops, configs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
import yaml
from PIL import Image as PILImage

from medrestore.core.errors import ConfigError, InputError
from medrestore.data.normalisation import NoNormalisation
from medrestore.data.oct import (
    DUKE_NOISY_FRAMES,
    FrameGroup,
    OCTDataConfig,
    OCTPairs,
    align_frames,
    detect_layout,
    eight_bit_scale,
    estimate_shift,
    oct_sources,
    read_bscans,
    read_duke_subject,
    read_noisy_clean_folders,
    shift_image,
    tone_gain,
)
from medrestore.data.paired import PairedPatchDataset, PatchSampling
from medrestore.data.patches import count_grid_positions
from medrestore.training import load_config
from medrestore.training.experiment import build_sources

SHAPE = (24, 40)


def frame_values(subject: int, frame: int) -> np.ndarray:
    """A distinct, recognisable 8-bit image per (subject, frame): frame 0 is test, 5 the average."""
    rows, cols = np.meshgrid(np.arange(SHAPE[0]), np.arange(SHAPE[1]), indexing="ij")
    return ((rows * 3 + cols * 2 + 17 * subject + 40 * frame) % 256).astype(np.uint8)


def make_duke(root: Path, subjects: range = range(1, 5)) -> Path:
    for subject in subjects:
        folder = root / str(subject)
        folder.mkdir(parents=True)
        for index, name in enumerate((*DUKE_NOISY_FRAMES, "average")):
            tifffile.imwrite(folder / f"{name}.tif", frame_values(subject, index))
    return root


def test_duke_subject_frames_in_order_with_average(tmp_path: Path) -> None:
    make_duke(tmp_path)
    group = read_duke_subject(tmp_path / "2")
    assert group.frame_names == ("test", "1", "2", "3", "4")
    assert group.frames.shape == (5, *SHAPE) and group.frames.dtype == torch.float32
    for index in range(5):
        np.testing.assert_array_equal(group.frames[index].numpy(), frame_values(2, index))
    assert group.reference is not None
    np.testing.assert_array_equal(group.reference.numpy(), frame_values(2, 5))
    assert detect_layout(tmp_path) == "duke"


def test_duke_missing_files(tmp_path: Path) -> None:
    make_duke(tmp_path, range(1, 2))
    (tmp_path / "1" / "3.tif").unlink()
    assert read_duke_subject(tmp_path / "1").frame_names == ("test", "1", "2", "4")
    (tmp_path / "1" / "test.tif").unlink()
    with pytest.raises(InputError, match="test.tif"):
        read_duke_subject(tmp_path / "1")
    (tmp_path / "1" / "average.tif").unlink()
    with pytest.raises(InputError, match="average.tif"):
        read_duke_subject(tmp_path / "1", frames=("1", "2"))


def test_png_frames_are_read_too(tmp_path: Path) -> None:
    folder = tmp_path / "7"
    folder.mkdir()
    for index, name in enumerate((*DUKE_NOISY_FRAMES, "average")):
        PILImage.fromarray(frame_values(7, index)).save(folder / f"{name}.png")
    group = read_duke_subject(folder)
    np.testing.assert_array_equal(group.frames[3].numpy(), frame_values(7, 3))


def test_sixteen_bit_is_mapped_to_the_eight_bit_scale(tmp_path: Path) -> None:
    values = np.array([[0, 257, 65535], [1000, 2570, 32896]], dtype=np.uint16)
    tifffile.imwrite(tmp_path / "scan.tif", values)
    stack, image, scale = read_bscans(tmp_path / "scan.tif")
    assert scale == pytest.approx(255 / 65535)
    assert image.metadata["dtype"] == "uint16"
    np.testing.assert_allclose(stack[0].numpy(), values * 255.0 / 65535.0, rtol=1e-6)
    assert eight_bit_scale("uint8", 255.0) == 1.0
    assert eight_bit_scale("float32", 0.8) == 255.0
    assert eight_bit_scale("float32", 200.0) == 1.0
    assert eight_bit_scale("float32", 510.0) == 0.5


def test_noisy_clean_folders_with_stacks(tmp_path: Path) -> None:
    (tmp_path / "noisy").mkdir()
    (tmp_path / "clean").mkdir()
    repeated = np.stack([frame_values(1, index) for index in range(3)])
    tifffile.imwrite(tmp_path / "noisy" / "eye.tif", repeated, photometric="minisblack")  # 3 repeated frames, one average
    tifffile.imwrite(tmp_path / "clean" / "eye.tif", frame_values(1, 5))
    volume = np.stack([frame_values(2, index) for index in range(4)])
    tifffile.imwrite(tmp_path / "noisy" / "vol.tif", volume, photometric="minisblack")  # 4 B-scans, 4 clean B-scans
    tifffile.imwrite(tmp_path / "clean" / "vol.tif", volume // 2, photometric="minisblack")
    groups = read_noisy_clean_folders(tmp_path)
    assert detect_layout(tmp_path) == "folders"
    assert [group.frames.shape[0] for group in groups] == [3, 1, 1, 1, 1]
    assert groups[0].frame_names == ("0", "1", "2")
    np.testing.assert_array_equal(groups[3].reference.numpy(), volume[2] // 2)
    assert len(OCTPairs(groups)) == 3 + 4
    with pytest.raises(InputError, match="missing"):
        (tmp_path / "clean" / "vol.tif").unlink()
        read_noisy_clean_folders(tmp_path)


def test_pairs_single_stacked_and_noise2noise(tmp_path: Path) -> None:
    make_duke(tmp_path, range(1, 3))
    groups = [read_duke_subject(tmp_path / "1"), read_duke_subject(tmp_path / "2")]
    generator = torch.Generator()

    single = OCTPairs(groups)
    assert len(single) == 10
    noisy, clean = single.pair(7, generator)  # subject 2, frame "2"
    np.testing.assert_array_equal(noisy[0].numpy(), frame_values(2, 2))
    np.testing.assert_array_equal(clean[0].numpy(), frame_values(2, 5))
    assert single.name(7).endswith(":2->average")

    stacked = OCTPairs(groups, frames=("test", "3"), stack=3)
    assert len(stacked) == 4
    noisy, _ = stacked.pair(1, generator)  # subject 1, frame "3" then its first two neighbours
    assert noisy.shape == (3, *SHAPE)
    for channel, frame in enumerate((3, 0, 1)):
        np.testing.assert_array_equal(noisy[channel].numpy(), frame_values(1, frame))

    pairs = OCTPairs(groups, frames=("1", "2", "3"), target="noise2noise")
    assert len(pairs) == 2 * 3 * 2
    noisy, target = pairs.pair(1, generator)  # subject 1: frame "1" → frame "3"
    np.testing.assert_array_equal(noisy[0].numpy(), frame_values(1, 1))
    np.testing.assert_array_equal(target[0].numpy(), frame_values(1, 3))

    first = OCTPairs(groups, first_only=True)
    assert len(first) == 2 and first.name(1).endswith(":test->average")
    with pytest.raises(ConfigError, match="stack"):
        OCTPairs(groups, stack=6)


def test_subject_split_is_disjoint_and_validates_on_the_test_frame(tmp_path: Path) -> None:
    make_duke(tmp_path, range(1, 6))
    training, validation = oct_sources(OCTDataConfig(root=str(tmp_path), validation_subjects=("4", "5")))
    assert len(training) == 3 * 5
    assert validation is not None and len(validation) == 2
    assert {Path(group.name).name for group in training.groups} == {"1", "2", "3"}
    assert [validation.name(i).split(":")[1] for i in range(2)] == ["test->average", "test->average"]
    with pytest.raises(ConfigError, match="also training"):
        OCTDataConfig(root=str(tmp_path), subjects=("1", "2"), validation_subjects=("2",))
    with pytest.raises(ConfigError, match="stack"):
        OCTDataConfig(root=str(tmp_path), target="noise2noise", stack=2)


def test_training_config_with_the_oct_layout(tmp_path: Path) -> None:
    make_duke(tmp_path / "duke", range(1, 4))
    config_path = tmp_path / "configs" / "run.yaml"
    config_path.parent.mkdir()
    config = {
        "data": {
            "layout": "oct",
            "oct": {"root": "../duke", "subjects": ["1", "2"], "validation_subjects": ["3"], "frames": ["test", "1"]},
            "patch_size": [16, 16],
        },
        "model": {"name": "resunet"},
    }
    config_path.write_text(yaml.safe_dump(config))
    loaded = load_config(config_path)
    assert loaded.data.oct is not None and loaded.data.oct.root == str((tmp_path / "duke").resolve())
    sources = build_sources(loaded.data, seed=0)
    assert len(sources.training) == 4 and sources.validation is not None and len(sources.validation) == 1
    config["data"]["pairs"] = [["a.tif", "b.tif"]]
    config_path.write_text(yaml.safe_dump(config))
    with pytest.raises(ConfigError, match="oct"):
        load_config(config_path)


def test_seed_recipe_crops_hold_the_patch_grid(tmp_path: Path) -> None:
    make_duke(tmp_path, range(1, 3))
    source = OCTPairs([read_duke_subject(tmp_path / "1"), read_duke_subject(tmp_path / "2")], frames=("test",))
    sampling = PatchSampling((5, 5), stride=(3, 3), crop_size=(11, 13), crops_per_image=4)
    dataset = PairedPatchDataset(source, NoNormalisation(), sampling, seed=3)
    per_crop = count_grid_positions((11, 13), (5, 5), (3, 3))
    assert per_crop == 3 * 4 and len(dataset) == 2 * 4 * per_crop
    image = source.pair(0, torch.Generator())[0][0]
    for crop in range(4):
        starts = [dataset.grid_start(0, SHAPE, crop * per_crop + index) for index in range(per_crop)]
        corner = starts[0]
        assert {(r - corner[0], c - corner[1]) for r, c in starts} == {(r, c) for r in (0, 3, 6) for c in (0, 3, 6, 8)}
        assert 0 <= corner[0] <= SHAPE[0] - 11 and 0 <= corner[1] <= SHAPE[1] - 13
    patch, _ = dataset.item(epoch=5, index=per_crop + 2)
    start = dataset.grid_start(0, SHAPE, per_crop + 2)
    torch.testing.assert_close(patch[0], image[start[0] : start[0] + 5, start[1] : start[1] + 5])
    assert dataset.grid_start(0, SHAPE, 7) == PairedPatchDataset(source, NoNormalisation(), sampling, seed=3).grid_start(0, SHAPE, 7)
    with pytest.raises(ConfigError, match="stride"):
        PatchSampling((5, 5), crop_size=(11, 13))


def layered_scene(shape: tuple[int, int] = (96, 128)) -> torch.Tensor:
    """Bright layers and blobs: structure in both directions, so both shift components are identifiable."""
    rows, cols = torch.meshgrid(torch.arange(shape[0], dtype=torch.float32), torch.arange(shape[1], dtype=torch.float32), indexing="ij")
    scene = 60 + 90 * torch.exp(-(((rows - 30 - 0.2 * cols) / 4.0) ** 2))
    for row, col, height in ((50, 30, 90), (70, 90, 70), (20, 100, 80), (75, 50, 60)):
        scene = scene + height * torch.exp(-((rows - row) ** 2 + (cols - col) ** 2) / 40.0)
    return scene


def speckled(clean: torch.Tensor, seed: int) -> torch.Tensor:
    """Multiplicative gamma speckle of mean 1 (4 looks)."""
    return clean * torch.from_numpy(np.random.default_rng(seed).gamma(4.0, 0.25, size=tuple(clean.shape)).astype(np.float32))


def test_shift_image_moves_values_without_blending() -> None:
    image = torch.arange(20.0).reshape(4, 5)
    moved = shift_image(image, (1, -2))
    torch.testing.assert_close(moved[1:, :3], image[:3, 2:])
    torch.testing.assert_close(moved[0, :3], image[0, 2:])  # the top edge row repeats
    torch.testing.assert_close(moved[1:, 3], image[:3, 4])  # the right edge column repeats
    assert shift_image(image, (0, 0)) is image


@pytest.mark.parametrize("shift", [(3, -2), (-5, 0), (0, 4), (0, 0)])
def test_estimate_shift_finds_an_integer_translation_under_speckle(shift: tuple[int, int]) -> None:
    clean = layered_scene()
    moved = speckled(shift_image(clean, (-shift[0], -shift[1])), seed=1)
    assert estimate_shift(speckled(clean, seed=2), moved) == shift
    assert estimate_shift(clean, moved) == shift


def test_registered_pairs_align_the_target_and_neighbours_with_the_frame() -> None:
    clean = layered_scene()
    offsets = [(0, 0), (4, 0), (0, -3), (-2, 2)]  # frame f shows the scene moved by offsets[f]
    frames = torch.stack([speckled(shift_image(clean, offset), seed=10 + f) for f, offset in enumerate(offsets)])
    group = FrameGroup("eye", frames, ("0", "1", "2", "3"), clean)
    pairs = OCTPairs([group], register="pairs")
    inputs, target = pairs.pair(1, torch.Generator())
    torch.testing.assert_close(inputs[0], frames[1])  # the restored frame is never moved
    torch.testing.assert_close(target[0][8:-8, 8:-8], shift_image(clean, offsets[1])[8:-8, 8:-8])
    stacked = OCTPairs([group], stack=3, register="pairs")
    inputs, _ = stacked.pair(2, torch.Generator())  # frame 2, then frames 0 and 1 moved onto it
    assert [stacked.shift(0, frame, 2) for frame in (0, 1)] == [(0, -3), (-4, -3)]
    torch.testing.assert_close(inputs[2], shift_image(frames[1], (-4, -3)))
    validation = OCTPairs([group], stack=4, first_only=True, register="inputs")
    inputs, target = validation.pair(0, torch.Generator())
    torch.testing.assert_close(target[0], clean)  # the score's reference is untouched
    torch.testing.assert_close(inputs, align_frames(frames))
    noisy_estimates = [validation.shift(0, frame, 0) for frame in (1, 2, 3)]  # from two speckled frames: ±1 pixel
    for estimate, expected in zip(noisy_estimates, [(-4, 0), (0, 3), (2, -2)]):
        assert abs(estimate[0] - expected[0]) <= 1 and abs(estimate[1] - expected[1]) <= 1
    noise2noise = OCTPairs([group], frames=("0", "1"), target="noise2noise", register="pairs")
    _, target = noise2noise.pair(0, torch.Generator())  # frame 1 moved onto frame 0, never via the average
    shift = noise2noise.shift(0, 1, 0)
    assert abs(shift[0] + 4) <= 1 and abs(shift[1]) <= 1
    torch.testing.assert_close(target[0], shift_image(frames[1], shift))
    with pytest.raises(ConfigError, match="register"):
        OCTPairs([group], register="everything")


def test_matched_brightness_offsets_only_average_targets() -> None:
    clean = layered_scene()
    frames = torch.stack([speckled(clean, seed=20 + f) + 6.0 * f for f in range(3)])  # frame f is 6f grey levels brighter
    group = FrameGroup("eye", frames, ("0", "1", "2"), clean - 5.0)
    for register in ("none", "pairs"):
        matched = OCTPairs([group], register=register, match_brightness=True)
        plain = OCTPairs([group], register=register)
        for index in range(3):
            inputs, target = matched.pair(index, torch.Generator())
            _, unmatched = plain.pair(index, torch.Generator())
            assert float(target.mean()) == pytest.approx(float(inputs[0].mean()), abs=1e-3)
            torch.testing.assert_close(target - unmatched, torch.full_like(target, float(target[0, 0, 0] - unmatched[0, 0, 0])))
    noise2noise = OCTPairs([group], frames=("0", "1"), target="noise2noise", match_brightness=True)
    _, target = noise2noise.pair(0, torch.Generator())
    torch.testing.assert_close(target[0], frames[1])  # a frame target is left as it is

def test_tone_gain_is_the_slope_of_an_affine_average() -> None:
    clean = layered_scene()
    for gain, offset in ((0.8, 12.0), (1.3, -20.0)):
        assert tone_gain(clean, gain * clean + offset) == pytest.approx(gain, rel=1e-6)  # smoothing is linear: exact up to float32
    assert tone_gain(torch.full((8, 8), 5.0), clean[:8, :8]) == 1.0  # a flat frame has no slope to fit


def test_matched_contrast_gives_every_pair_the_mean_gain() -> None:
    clean = layered_scene()
    gains = (0.8, 1.0, 1.3)  # each eye's average has its own contrast against its frames
    groups = [
        FrameGroup(f"eye{g}", torch.stack([speckled(clean, seed=30 + 3 * g + f) for f in range(2)]), ("0", "1"), 100.0 + gain * (clean - 100.0))
        for g, gain in enumerate(gains)
    ]  # fmt: skip
    matched = OCTPairs(groups, match_contrast=True)
    plain = OCTPairs(groups)
    measured = [tone_gain(plain.pair(i, torch.Generator())[0][0], plain.pair(i, torch.Generator())[1][0]) for i in range(6)]
    mean_gain = float(np.mean(measured))
    for index in range(6):
        inputs, target = matched.pair(index, torch.Generator())
        _, original = plain.pair(index, torch.Generator())
        assert float(target.mean()) == pytest.approx(float(original.mean()), abs=1e-3)  # contrast only, about the mean
        assert tone_gain(inputs[0], target[0]) == pytest.approx(mean_gain, rel=1e-4)
        assert matched.contrast_scales[index] == pytest.approx(mean_gain / measured[index], rel=1e-9)
    assert matched.contrast_scales[0] > 1.15 and matched.contrast_scales[5] < 0.85  # low-contrast eye raised, high lowered
    both = OCTPairs(groups, match_contrast=True, match_brightness=True)
    inputs, target = both.pair(4, torch.Generator())
    assert float(target.mean()) == pytest.approx(float(inputs[0].mean()), abs=1e-3)
    noise2noise = OCTPairs(groups[:1], target="noise2noise", match_contrast=True)
    assert noise2noise.contrast_scales == {}  # frame targets are left as they are


def test_real_duke_subjects(shared_data: Path) -> None:
    root = shared_data / "oct-duke-bioptigen"
    group = read_duke_subject(root / "1")
    assert group.frames.shape == (5, 450, 900)
    assert float(group.frames.max()) == 255.0
    training, validation = oct_sources(OCTDataConfig(root=str(root), validation_subjects=("9", "10", "11", "12"), register=True))
    assert len(training) == 8 * 5
    assert validation is not None and validation.input_shape(0) == (401, 900)
    # subject 4: frames 1 and 4 sit about 5 pixels off its average (checked by cross-correlation)
    subject_four = [index for index, item in enumerate(training.items) if Path(training.groups[item.group].name).name == "4"]
    shifts = [training.shift(training.items[index].group, -1, training.items[index].inputs[0]) for index in subject_four]
    assert max(abs(value) for value in shifts[0]) <= 1 and abs(shifts[1][0]) >= 4 and max(abs(value) for value in shifts[4]) >= 4
