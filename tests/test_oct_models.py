"""OCT architectures (CAE, ResUNet, multi-frame) and a short OCT training run that lowers the loss."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch

from medrestore.core.errors import ConfigError, InputError
from medrestore.core.random import make_generator
from medrestore.models import CAE, CAEConfig, MultiFrameConfig, MultiFrameDenoiser, ResUNet, ResUNetConfig, create_model
from medrestore.training import config_from_mapping
from medrestore.training.experiment import build_trainer

torch.set_num_threads(1)


def conv_parameters(k: int, c_in: int, c_out: int, ndim: int = 2) -> int:
    return k**ndim * c_in * c_out + c_out


def resunet_parameters(
    c_in: int, c_out: int, widths: tuple[int, ...], blocks: tuple[int, ...], factor: int, ndim: int = 2
) -> int:
    """Stem conv, 2 convs per residual block (encoder + decoder, bottleneck once), 2×2(×2) down/up convs, head conv."""
    total = conv_parameters(3, c_in * factor**ndim, widths[0], ndim) + conv_parameters(3, widths[0], c_out * factor**ndim, ndim)
    for level, (width, count) in enumerate(zip(widths, blocks)):
        repeats = 1 if level == len(widths) - 1 else 2
        total += repeats * count * 2 * conv_parameters(3, width, width, ndim)
    for finer, coarser in zip(widths[:-1], widths[1:]):
        total += conv_parameters(2, finer, coarser, ndim) + conv_parameters(2, coarser, finer, ndim)
    return total


def count(model: torch.nn.Module) -> int:
    return sum(parameter.numel() for parameter in model.parameters())


def test_cae_parameter_count_and_bottleneck() -> None:
    model = CAE()
    expected = sum(conv_parameters(3, a, b) for a, b in ((1, 32), (32, 64), (64, 128)))
    expected += sum(conv_parameters(3, a, b) for a, b in ((128, 64), (64, 32), (32, 1)))
    assert count(model) == expected == 185217
    code = model.encoder(torch.zeros(1, 1, 64, 96))
    assert code.shape == (1, 128, 8, 12)
    assert model.decoder(code).shape == (1, 1, 64, 96)


@pytest.mark.parametrize("shape", [(41, 41), (37, 45), (227, 227), (8, 9)])
def test_cae_keeps_any_size(shape: tuple[int, int]) -> None:
    torch.manual_seed(0)
    model = CAE(CAEConfig(features=(4, 8, 8), output_activation="sigmoid"))
    output = model(torch.randn(2, 1, *shape))
    assert output.shape == (2, 1, *shape)
    assert float(output.detach().min()) > 0.0 and float(output.detach().max()) < 1.0


def test_resunet_parameter_count_matches_the_closed_form() -> None:
    assert count(ResUNet()) == resunet_parameters(1, 1, (32, 64, 128), (1, 1, 2), 2)
    config = ResUNetConfig(in_channels=2, out_channels=2, widths=(8, 16, 24, 32), blocks=(2, 0, 1, 3), unshuffle=4)
    assert count(ResUNet(config)) == resunet_parameters(2, 2, (8, 16, 24, 32), (2, 0, 1, 3), 4)
    config = ResUNetConfig(spatial_ndim=3, in_channels=2, out_channels=1, widths=(32, 64, 128), blocks=(2, 2, 1))
    assert count(ResUNet(config)) == resunet_parameters(2, 1, (32, 64, 128), (2, 2, 1), 2, ndim=3) == 2_176_584


@pytest.mark.parametrize("shape", [(16, 16, 16), (13, 21, 9), (3, 4, 5)])
def test_3d_resunet_keeps_any_size_and_adds_its_correction_to_the_image_channel(shape: tuple[int, int, int]) -> None:
    """A σ channel after the image: ``x̂ = x[:, :1] + r(x)``, any ``D × H × W``."""
    torch.manual_seed(0)
    model = ResUNet(ResUNetConfig(spatial_ndim=3, in_channels=2, out_channels=1, widths=(4, 8), blocks=(1, 1)))
    image = torch.randn(2, 2, *shape, generator=make_generator(3))
    with torch.no_grad():
        output = model(image)
        assert output.shape == (2, 1, *shape)
        torch.testing.assert_close(output, image[:, :1] + model.correction(image))
    with pytest.raises(InputError, match="spatial axes"):
        model(torch.zeros(1, 2, 8, 8))


def test_space_to_depth_is_pixel_unshuffle_in_2d_and_lossless_in_3d() -> None:
    from medrestore.models.blocks import DepthToSpace, SpaceToDepth

    image = torch.randn(2, 3, 8, 6, generator=make_generator(4))
    torch.testing.assert_close(SpaceToDepth(2, 2)(image), torch.nn.functional.pixel_unshuffle(image, 2))
    volume = torch.arange(2 * 3 * 4 * 6 * 8, dtype=torch.float32).reshape(2, 3, 4, 6, 8)
    blocks = SpaceToDepth(2, 3)(volume)
    assert blocks.shape == (2, 24, 2, 3, 4)
    # channel c·8 + (i·4 + j·2 + k) holds the voxels at offset (i, j, k) of every 2×2×2 block of channel c
    torch.testing.assert_close(blocks[:, 1 * 8 + 0b101], volume[:, 1, 1::2, 0::2, 1::2])
    torch.testing.assert_close(DepthToSpace(2, 3)(blocks), volume)


@pytest.mark.parametrize("shape", [(450, 900), (401, 900), (37, 45), (3, 5)])
def test_resunet_keeps_any_size(shape: tuple[int, int]) -> None:
    torch.manual_seed(0)
    model = ResUNet(ResUNetConfig(widths=(4, 8, 8), blocks=(1, 1, 1)))
    image = torch.randn(1, 1, *shape, generator=make_generator(1))
    output = model(image)
    assert output.shape == image.shape and torch.isfinite(output).all()


def test_resunet_is_the_identity_plus_its_correction() -> None:
    torch.manual_seed(0)
    model = ResUNet(ResUNetConfig(widths=(4, 8), blocks=(1, 1)))
    image = torch.randn(2, 1, 30, 34, generator=make_generator(2))
    with torch.no_grad():
        torch.testing.assert_close(model(image), image + model.correction(image))
        head = model.head[1]
        head.weight.zero_()
        head.bias.fill_(0.25)
        torch.testing.assert_close(model(image), image + 0.25)


def test_resunet_preserve_mean_matches_the_input_mean_in_evaluation_only() -> None:
    torch.manual_seed(0)
    model = ResUNet(ResUNetConfig(widths=(4, 8), blocks=(1, 1), preserve_mean=True))
    image = torch.rand(2, 1, 30, 34, generator=make_generator(5))
    with torch.no_grad():
        model.head[1].bias.fill_(0.5)
        trained = model.train()(image)
        evaluated = model.eval()(image)
    torch.testing.assert_close(trained, image + model.correction(image))
    assert float((trained.mean(dim=(2, 3)) - image.mean(dim=(2, 3))).abs().min()) > 0.3
    torch.testing.assert_close(evaluated.mean(dim=(2, 3)), image.mean(dim=(2, 3)))
    torch.testing.assert_close(evaluated, trained - trained.mean(dim=(2, 3), keepdim=True) + image.mean(dim=(2, 3), keepdim=True))


def test_resunet_config_checks() -> None:
    with pytest.raises(ConfigError, match="blocks"):
        ResUNetConfig(widths=(8, 16), blocks=(1,))
    with pytest.raises(ConfigError, match="residual"):
        ResUNetConfig(in_channels=1, out_channels=2)
    with pytest.raises(ConfigError, match="spatial_ndim"):
        ResUNetConfig(spatial_ndim=4)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="preserve_mean"):
        ResUNetConfig(in_channels=3, out_channels=1, residual=False, preserve_mean=True)
    with pytest.raises(InputError, match="channel"):
        ResUNet()(torch.zeros(1, 2, 16, 16))


def test_multiframe_is_the_frame_mean_plus_a_correction() -> None:
    torch.manual_seed(0)
    model = MultiFrameDenoiser(MultiFrameConfig(frames=3, widths=(4, 8), blocks=(1, 1)))
    frames = torch.randn(2, 3, 37, 45, generator=make_generator(4))
    assert model.in_channels == 3 and model.out_channels == 1
    with torch.no_grad():
        head = model.body.head[1]
        head.weight.zero_()
        head.bias.zero_()
        torch.testing.assert_close(model(frames), frames.mean(dim=1, keepdim=True))
    with pytest.raises(InputError, match="3 input channel"):
        model(torch.zeros(1, 2, 16, 16))
    assert count(create_model("multiframe", {"frames": 5})) == resunet_parameters(5, 1, (32, 64, 128), (1, 1, 2), 2)


def write_speckled_subjects(root: Path, subjects: int, shape: tuple[int, int]) -> None:
    """Smooth layered 'retinas' with multiplicative gamma speckle, Duke layout, 8-bit."""
    rows = np.arange(shape[0])[:, None]
    generator = np.random.default_rng(0)
    for subject in range(1, subjects + 1):
        folder = root / str(subject)
        folder.mkdir(parents=True)
        clean = 60 + 80 * np.exp(-(((rows - 10 - 2 * subject) / 5.0) ** 2)) + 0 * np.arange(shape[1])[None, :]
        tifffile.imwrite(folder / "average.tif", np.clip(clean, 0, 255).astype(np.uint8))
        for name in ("test", "1", "2", "3", "4"):
            speckle = generator.gamma(4.0, 1 / 4.0, size=shape)
            tifffile.imwrite(folder / f"{name}.tif", np.clip(clean * speckle, 0, 255).astype(np.uint8))


def speckle_config(root: Path, run_dir: Path, target: str, loss: str) -> object:
    return config_from_mapping(
        {
            "data": {
                "layout": "oct",
                "oct": {"root": str(root), "validation_subjects": ["3"], "target": target},
                "patch_size": [32, 32],
                "patches_per_image": 8 if target == "average" else 2,
                "normalisation": {"kind": "range", "scale": 255.0},
            },
            "model": {"name": "resunet", "options": {"widths": [8, 16], "blocks": [1, 1]}},
            "optim": {"lr": 3.0e-3, "schedule": "cosine", "min_lr": 3.0e-4},
            "train": {
                "epochs": 6, "batch_size": 8, "loss": loss, "output_dir": str(run_dir),
                "progress_bar": False, "data_range": 255.0, "device": "cpu",
            },
        }
    )  # fmt: skip


@pytest.mark.parametrize(("target", "loss"), [("average", "l1"), ("noise2noise", "mse")])
def test_short_oct_training_lowers_the_loss_and_beats_the_noisy_input(tmp_path: Path, target: str, loss: str) -> None:
    """Supervised (frame → average) and self-supervised (frame → other frame) training both denoise."""
    write_speckled_subjects(tmp_path / "duke", subjects=3, shape=(32, 48))
    trainer = build_trainer(speckle_config(tmp_path / "duke", tmp_path / "run", target, loss), torch.device("cpu"))
    noisy_psnr = float(np.mean([trainer_psnr(image.input * 255.0, image.target) for image in trainer.validation]))
    result = trainer.fit()
    losses = [row["train_loss"] for row in result.history]
    assert losses[-1] < 0.8 * losses[0]
    assert result.history[-1]["val_psnr"] > noisy_psnr + 2.0


def trainer_psnr(prediction: torch.Tensor, target: torch.Tensor) -> float:
    mse = float(((prediction - target) ** 2).mean())
    return 10.0 * np.log10(255.0**2 / mse)
