"""Architecture-specific checks: closed-form parameter counts, receptive fields, residual paths, padding."""

from __future__ import annotations

import pytest
import torch

from medrestore.core.errors import ConfigError, InputError
from medrestore.core.random import make_generator
from medrestore.models import DnCNN, DnCNNConfig, SRCNN, SRCNNConfig, UNet, UNetConfig, create_model
from medrestore.models.blocks import crop_spatial, pad_to_multiple

torch.set_num_threads(1)


def count_parameters(model: torch.nn.Module, suffix: str = "") -> int:
    return sum(p.numel() for name, p in model.named_parameters() if name.endswith(suffix))


def unet_parameter_count(in_channels: int, out_channels: int, base: int, depth: int) -> int:
    """fastMRI U-Net with instance norm: bias-free 3×3 conv blocks, 2×2 transposed convs, 1×1 head with bias."""

    def conv_block(cin: int, cout: int) -> int:
        return 9 * cin * cout + 9 * cout * cout

    total = conv_block(in_channels, base)
    channels = base
    for _ in range(depth - 1):
        total += conv_block(channels, 2 * channels)
        channels *= 2
    total += conv_block(channels, 2 * channels)
    for _ in range(depth):
        total += 4 * (2 * channels) * channels + conv_block(2 * channels, channels)
        channels //= 2
    return total + base * out_channels + out_channels


def impulse_support(model: torch.nn.Module, size: int) -> torch.Tensor:
    """Where the response to a centred unit impulse differs from the response to zeros."""
    zeros = torch.zeros(1, 1, size, size)
    impulse = zeros.clone()
    impulse[0, 0, size // 2, size // 2] = 1.0
    with torch.no_grad():
        difference = model(impulse) - model(zeros)
    return difference[0, 0].abs() > 1e-7


def make_positive(model: torch.nn.Module) -> None:
    """Positive convolution weights (0.1), unit norm scales, zero biases: no ReLU switches a path off."""
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name.endswith("bias"):
                parameter.fill_(0.0)
            else:
                parameter.fill_(0.1 if parameter.ndim > 1 else 1.0)


# -- U-Net ---------------------------------------------------------------------------------------


def test_unet_default_parameter_count_matches_fastmri_closed_form() -> None:
    model = UNet()
    assert count_parameters(model) == unet_parameter_count(1, 1, 32, 4) == 7_756_097


def test_unet_residual_is_identity_when_weights_are_zero() -> None:
    torch.manual_seed(0)
    model = create_model("unet", {"base_channels": 4, "depth": 2, "residual": True, "in_channels": 2, "out_channels": 2})
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.zero_()
    image = torch.randn(3, 2, 21, 30, generator=make_generator(3))
    assert torch.equal(model(image), image)
    plain = create_model("unet", {"base_channels": 4, "depth": 2})
    with torch.no_grad():
        for parameter in plain.parameters():
            parameter.zero_()
    assert torch.equal(plain(image[:, :1]), torch.zeros_like(image[:, :1]))


def test_unet_residual_adds_the_leading_input_channels() -> None:
    """Extra input channels are conditioning (a σ map): the residual adds the first ``out_channels`` ones."""
    with pytest.raises(ConfigError, match="in_channels >= out_channels"):
        UNetConfig(in_channels=1, out_channels=2, residual=True)
    model = create_model("unet", {"in_channels": 2, "out_channels": 1, "base_channels": 4, "depth": 2, "residual": True})
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.zero_()
    image = torch.rand(1, 2, 16, 16)
    torch.testing.assert_close(model(image), image[:, :1])  # a zero network returns the image channel


@pytest.mark.parametrize("spatial_shape", [(37, 45), (5, 3), (1, 17), (16, 32)])
def test_unet_handles_any_size(spatial_shape: tuple[int, int]) -> None:
    torch.manual_seed(0)
    model = create_model("unet", {"base_channels": 4, "depth": 3, "norm": "none"})
    assert model(torch.randn(1, 1, *spatial_shape)).shape == (1, 1, *spatial_shape)


def test_unet_instance_norm_needs_two_bottleneck_samples() -> None:
    model = UNet(UNetConfig(base_channels=2, depth=3))
    assert model(torch.zeros(1, 1, 8, 9)).shape == (1, 1, 8, 9)  # padded to 8 × 16: bottleneck 1 × 2
    with pytest.raises(InputError, match=r"reduces \(8, 8\) to \(1, 1\)"):
        model(torch.zeros(1, 1, 8, 8))


@pytest.mark.parametrize("spatial_shape", [(37, 45), (9, 11, 13), (5, 2), (16, 16)])
def test_pad_to_multiple_then_crop_recovers_the_input(spatial_shape: tuple[int, ...]) -> None:
    image = torch.randn(2, 3, *spatial_shape, generator=make_generator(0))
    padded, start = pad_to_multiple(image, 8, len(spatial_shape))
    assert all(size % 8 == 0 for size in padded.shape[2:])
    assert all(0 <= before < 8 for before in start)
    assert torch.equal(crop_spatial(padded, start, spatial_shape), image)


def test_pad_to_multiple_reflects_and_replicates_when_too_short() -> None:
    image = torch.arange(5.0).reshape(1, 1, 1, 5).expand(1, 1, 8, 5)  # width 5 → 8: one before, two after
    padded, start = pad_to_multiple(image, 8, 2)
    assert start == (0, 1)
    assert padded[0, 0, 0].tolist() == [1.0, 0.0, 1.0, 2.0, 3.0, 4.0, 3.0, 2.0]
    short = torch.tensor([[[[1.0, 2.0]]]])  # 1 × 2 → 4 × 4 cannot reflect 1 sample: replicate
    padded, start = pad_to_multiple(short, 4, 2)
    assert start == (1, 1)
    assert padded[0, 0].tolist() == [[1.0, 1.0, 2.0, 2.0]] * 4


def test_unet_batch_norm_and_dropout_options() -> None:
    torch.manual_seed(0)
    model = create_model("unet", {"base_channels": 4, "depth": 2, "norm": "batch", "dropout": 0.5})
    names = {type(module).__name__ for module in model.modules()}
    assert {"BatchNorm2d", "Dropout2d"} <= names
    model.eval()
    image = torch.randn(2, 1, 12, 12, generator=make_generator(0))
    assert torch.equal(model(image), model(image))  # dropout is off in eval mode


def test_unet_3d_uses_3d_layers() -> None:
    model = UNet(UNetConfig(spatial_ndim=3, base_channels=2, depth=1))
    names = {type(module).__name__ for module in model.modules()}
    assert {"Conv3d", "ConvTranspose3d", "InstanceNorm3d"} <= names
    assert "Conv2d" not in names


# -- DnCNN ---------------------------------------------------------------------------------------


def test_dncnn_default_parameter_count_matches_paper_layout() -> None:
    # first conv with bias + 15 × (conv without bias + batch-norm scale/shift) + last conv without bias
    expected = (9 * 64 + 64) + 15 * (9 * 64 * 64 + 2 * 64) + 9 * 64
    assert count_parameters(DnCNN()) == expected == 556_096


def test_dncnn_receptive_field_is_two_depth_plus_one() -> None:
    model = DnCNN(DnCNNConfig(depth=5, width=4, residual=False)).eval()
    make_positive(model)
    support = impulse_support(model, 31)
    rows, columns = torch.nonzero(support, as_tuple=True)
    assert int(rows.max() - rows.min() + 1) == 11 and int(columns.max() - columns.min() + 1) == 11
    assert int(support.sum()) == 11 * 11


def test_dncnn_residual_subtracts_the_predicted_noise() -> None:
    torch.manual_seed(0)
    residual = DnCNN(DnCNNConfig(depth=3, width=4, residual=True)).eval()
    plain = DnCNN(DnCNNConfig(depth=3, width=4, residual=False)).eval()
    plain.load_state_dict(residual.state_dict())
    noisy = torch.randn(2, 1, 15, 16, generator=make_generator(1))
    with torch.no_grad():
        assert torch.allclose(residual(noisy), noisy - plain(noisy), atol=1e-6)


def test_dncnn_without_batch_norm_has_biases() -> None:
    model = DnCNN(DnCNNConfig(depth=4, width=8, batch_norm=False))
    assert not any(isinstance(module, torch.nn.BatchNorm2d) for module in model.modules())
    assert count_parameters(model, "bias") == 8 + 2 * 8  # first layer and the two hidden layers


# -- SRCNN ---------------------------------------------------------------------------------------


def test_srcnn_weight_count_is_8032_as_in_the_paper() -> None:
    model = SRCNN()
    assert count_parameters(model, "weight") == 9 * 9 * 64 + 64 * 32 + 5 * 5 * 32 == 8032
    assert count_parameters(model) == 8032 + 64 + 32 + 1


def test_srcnn_receptive_field_is_13_with_an_impulse() -> None:
    model = SRCNN()
    assert model.config.receptive_field == 13
    make_positive(model)
    support = impulse_support(model, 41)
    rows, columns = torch.nonzero(support, as_tuple=True)
    assert (int(rows.min()), int(rows.max())) == (20 - 6, 20 + 6)
    assert (int(columns.min()), int(columns.max())) == (20 - 6, 20 + 6)
    assert int(support.sum()) == 13 * 13


def test_srcnn_keeps_the_size_with_reflect_padding() -> None:
    torch.manual_seed(0)
    model = SRCNN(SRCNNConfig(features=(4, 4)))
    layers = [module for module in model.modules() if isinstance(module, torch.nn.Conv2d)]
    assert [layer.padding_mode for layer in layers] == ["reflect"] * 3
    assert model(torch.randn(1, 1, 5, 30)).shape == (1, 1, 5, 30)
    with pytest.raises(InputError, match="spatial size"):
        model(torch.randn(1, 1, 4, 30))


def test_srcnn_config_checks() -> None:
    with pytest.raises(ConfigError, match="kernel_sizes needs"):
        SRCNNConfig(features=(8,), kernel_sizes=(9, 1, 5))
    with pytest.raises(ConfigError, match="odd"):
        SRCNNConfig(kernel_sizes=(9, 2, 5))


def test_unet_ensemble_is_the_mean_of_its_members() -> None:
    from medrestore.models.ensemble import UNetEnsemble

    torch.manual_seed(0)
    members = [create_model("unet", {"base_channels": 4, "depth": 2, "residual": True}) for _ in range(3)]
    ensemble = UNetEnsemble.from_members(members).eval()
    image = torch.rand(2, 1, 20, 24, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = sum(member.eval()(image) for member in members) / 3
        torch.testing.assert_close(ensemble(image), expected)
    assert ensemble.config.members == 3 and ensemble.members[0].config == members[0].config
    with pytest.raises(Exception, match="sharing one UNetConfig"):
        UNetEnsemble.from_members([members[0], create_model("unet", {"base_channels": 8, "depth": 2})])


def test_resunet_ensemble_is_the_mean_of_its_members_and_keeps_the_input_mean() -> None:
    from medrestore.models.ensemble import ResUNetEnsemble, mean_ensemble

    torch.manual_seed(0)
    options = {"widths": [4, 8], "blocks": [1, 1], "preserve_mean": True}
    members = [create_model("resunet", options).eval() for _ in range(2)]
    ensemble = mean_ensemble(members).eval()
    assert isinstance(ensemble, ResUNetEnsemble) and ensemble.config.members == 2
    image = torch.rand(2, 1, 20, 24, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        output = ensemble(image)
        torch.testing.assert_close(output, (members[0](image) + members[1](image)) / 2)
        torch.testing.assert_close(output.mean(dim=(2, 3)), image.mean(dim=(2, 3)))
    rebuilt = create_model("resunet-ensemble", {**options, "members": 2})
    rebuilt.load_state_dict(ensemble.state_dict())  # one state dict: members.0.…, members.1.…
    with torch.no_grad():
        torch.testing.assert_close(rebuilt.eval()(image), output)
    with pytest.raises(Exception, match="sharing one ResUNetConfig"):
        mean_ensemble([members[0], create_model("resunet", {"widths": [4, 8], "blocks": [1, 2]})])
    with pytest.raises(Exception, match="no ensemble for SRCNN"):
        mean_ensemble([create_model("srcnn", {})])
