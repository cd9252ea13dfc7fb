"""Super-resolution architectures: SRResNet, VDSR and SRCNN's bicubic pre-up-sampling, against closed forms."""

from __future__ import annotations

import pytest
import torch

from medrestore.core.errors import ConfigError, InputError
from medrestore.core.random import make_generator
from medrestore.models import SRCNN, VDSR, SRCNNConfig, SRResNet, SRResNetConfig, VDSRConfig, create_model
from medrestore.physics.blur import upsample

torch.set_num_threads(1)


def count_parameters(model: torch.nn.Module) -> int:
    return sum(parameter.numel() for parameter in model.parameters())


def srresnet_parameter_count(channels: int, width: int, blocks: int, factors: tuple[int, ...], batch_norm: bool) -> int:
    """Ledig et al.'s layout: 9×9 head + PReLU, blocks, trunk end, shuffle stages, 9×9 tail."""
    conv = 9 * width * width + (0 if batch_norm else width)
    norm = 2 * width if batch_norm else 0
    head = 81 * channels * width + width + width
    block = 2 * (conv + norm) + width
    trunk_end = conv + norm
    stages = sum(9 * width * width * f * f + width * f * f + width for f in factors)
    tail = 81 * width * channels + channels
    return head + blocks * block + trunk_end + stages + tail


def test_srresnet_of_the_paper_has_its_parameter_count() -> None:
    model = SRResNet()
    assert model.config.upsampling_factors == (2, 2)
    assert count_parameters(model) == srresnet_parameter_count(1, 64, 16, (2, 2), True) == 1_527_809
    without_norm = SRResNet(SRResNetConfig(width=8, blocks=2, scale=6, batch_norm=False))
    assert without_norm.config.upsampling_factors == (2, 3)
    assert count_parameters(without_norm) == srresnet_parameter_count(1, 8, 2, (2, 3), False)
    assert not any(isinstance(module, torch.nn.BatchNorm2d) for module in without_norm.modules())


@pytest.mark.parametrize("scale", [1, 2, 3, 4, 8])
def test_srresnet_enlarges_by_its_scale(scale: int) -> None:
    torch.manual_seed(0)
    model = SRResNet(SRResNetConfig(width=4, blocks=1, scale=scale, in_channels=2, out_channels=3)).eval()
    output = model(torch.randn(2, 2, 7, 9, generator=make_generator(1)))
    assert output.shape == (2, 3, 7 * scale, 9 * scale) and model.scale_factor == scale


def test_srresnet_with_zero_tail_and_skip_is_bicubic() -> None:
    torch.manual_seed(0)
    model = SRResNet(SRResNetConfig(width=4, blocks=2, upsampled_skip=True)).eval()
    with torch.no_grad():
        model.tail.weight.zero_()
        model.tail.bias.zero_()
    image = torch.rand(1, 1, 12, 10, generator=make_generator(2))
    expected = upsample(image, 4, "bicubic", 2)
    assert torch.allclose(model(image), expected, atol=1e-6)


def test_srresnet_config_checks() -> None:
    with pytest.raises(ConfigError, match="scale must be one of"):
        SRResNetConfig(scale=5)
    with pytest.raises(ConfigError, match="head_kernel"):
        SRResNetConfig(head_kernel=4)
    with pytest.raises(ConfigError, match="upsampled_skip"):
        SRResNetConfig(in_channels=1, out_channels=2, upsampled_skip=True)
    with pytest.raises(InputError, match="channel"):
        SRResNet(SRResNetConfig(width=2, blocks=0))(torch.zeros(1, 2, 8, 8))


def test_vdsr_parameter_count_and_receptive_field() -> None:
    model = VDSR()
    expected = (9 * 64 + 64) + 18 * (9 * 64 * 64 + 64) + (9 * 64 + 1)
    assert count_parameters(model) == expected == 665_921
    assert model.config.receptive_field == 41
    small = VDSR(VDSRConfig(scale=1, depth=4, width=2)).eval()
    with torch.no_grad():
        for name, parameter in small.named_parameters():
            parameter.fill_(0.0 if name.endswith("bias") else 0.1)
    impulse, zeros = torch.zeros(1, 1, 31, 31), torch.zeros(1, 1, 31, 31)
    impulse[0, 0, 15, 15] = 1.0
    with torch.no_grad():
        support = (small(impulse) - small(zeros) - impulse)[0, 0].abs() > 1e-9
    rows, columns = torch.nonzero(support, as_tuple=True)
    assert int(rows.max() - rows.min() + 1) == 9 and int(columns.max() - columns.min() + 1) == 9


def test_vdsr_with_zero_weights_is_bicubic_in_2d_and_3d() -> None:
    for spatial_ndim, shape in ((2, (9, 11)), (3, (5, 6, 7))):
        model = VDSR(VDSRConfig(spatial_ndim=spatial_ndim, scale=3, depth=3, width=4))
        with torch.no_grad():
            for parameter in model.parameters():
                parameter.zero_()
        image = torch.rand(2, 1, *shape, generator=make_generator(3))
        expected = upsample(image, 3, "bicubic", spatial_ndim)
        assert torch.equal(model(image), expected)


def test_a_folded_vdsr_is_the_same_network_on_the_image_s_blocks() -> None:
    """``fold = f``: the residual is the plain network applied to the pixel-unshuffled image, shuffled back; an image
    whose sides are not multiples of ``f`` is reflect-padded and cropped, and the network's parameters grow by the
    folded channels only."""
    folded = VDSR(VDSRConfig(scale=1, depth=3, width=5, fold=4)).eval()
    plain = VDSR(VDSRConfig(channels=16, scale=1, depth=3, width=5)).eval()
    plain.load_state_dict(folded.state_dict())
    image = torch.rand(2, 1, 16, 24, generator=make_generator(4))
    with torch.no_grad():
        residual = torch.nn.functional.pixel_shuffle(plain(torch.nn.functional.pixel_unshuffle(image, 4)) - torch.nn.functional.pixel_unshuffle(image, 4), 4)
        assert torch.allclose(folded(image) - image, residual, atol=1e-6)
        assert folded(torch.rand(1, 1, 13, 18)).shape == (1, 1, 13, 18)
    assert folded.config.receptive_field == 4 * 7
    with pytest.raises(ConfigError, match="fold applies to 2-D images"):
        VDSRConfig(spatial_ndim=3, fold=2)


def test_srcnn_scale_is_bicubic_then_the_same_network() -> None:
    torch.manual_seed(0)
    plain = SRCNN(SRCNNConfig(features=(8, 4))).eval()
    scaled = SRCNN(SRCNNConfig(features=(8, 4), scale=4)).eval()
    scaled.load_state_dict(plain.state_dict())
    image = torch.rand(1, 1, 10, 12, generator=make_generator(4))
    with torch.no_grad():
        assert torch.allclose(scaled(image), plain(upsample(image, 4, "bicubic", 2)), atol=1e-6)
    assert scaled.scale_factor == 4 and plain.scale_factor == 1
    with pytest.raises(ConfigError, match="scale"):
        create_model("srcnn", {"scale": 0})
