import pytest
import torch

from toposeg.models import UNet, build_model
from toposeg.models.unet import group_count


def _hand_count_2d_paper_unet() -> int:
    """Parameters of the official network, 2D, 1 input / 1 output channel, written out by hand
    from its layer list (norm before each bias-free 3x3 conv; GroupNorm has 2 * C affine params):

        encoder 1:  GN(1)   conv 1->16    GN(16)  conv 16->32
        encoder 2:  GN(32)  conv 32->32   GN(32)  conv 32->64      (first conv: max(64 // 2, 32))
        encoder 3:  GN(64)  conv 64->64   GN(64)  conv 64->128
        decoder 2:  GN(192) conv 192->64  GN(64)  conv 64->64      (concat 64 skip + 128 upsampled)
        decoder 1:  GN(96)  conv 96->32   GN(32)  conv 32->32      (concat 32 skip + 64 upsampled)
        head:       conv 1x1 32->1 with bias
    """
    convs = [(1, 16), (16, 32), (32, 32), (32, 64), (64, 64), (64, 128), (192, 64), (64, 64), (96, 32), (32, 32)]
    conv_params = sum(cin * cout * 9 for cin, cout in convs)
    norm_params = sum(2 * cin for cin, _ in convs)
    head = 32 * 1 + 1
    return conv_params + norm_params + head


def test_paper_unet_parameter_count_2d():
    expected = _hand_count_2d_paper_unet()
    assert expected == 328_531  # "about 0.33 M"
    model = UNet(spatial_dims=2, in_channels=1, out_channels=1)
    assert sum(p.numel() for p in model.parameters()) == expected


def test_paper_unet_layer_list():
    model = UNet(spatial_dims=2)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels) for c in convs if c.kernel_size == (3, 3)] == [
        (1, 16), (16, 32), (32, 32), (32, 64), (64, 64), (64, 128), (192, 64), (64, 64), (96, 32), (32, 32)]
    assert all(c.bias is None for c in convs if c.kernel_size == (3, 3))
    assert convs[-1].kernel_size == (1, 1) and convs[-1].bias is not None
    norms = [m for m in model.modules() if isinstance(m, torch.nn.GroupNorm)]
    # 8 groups, 1 group below 8 channels; each norm normalises the next conv's input
    assert [(n.num_groups, n.num_channels) for n in norms] == [
        (1, 1), (8, 16), (8, 32), (8, 32), (8, 64), (8, 64), (8, 192), (8, 64), (8, 96), (8, 32)]
    assert sum(isinstance(m, torch.nn.MaxPool2d) for m in model.modules()) == 1  # one module, used twice
    assert not any(isinstance(m, (torch.nn.ConvTranspose2d, torch.nn.BatchNorm2d)) for m in model.modules())


def test_two_poolings_and_nearest_upsampling():
    # the deepest encoder level works at 1/4 of the input size (2 poolings, not 3)
    model = UNet(spatial_dims=2, features=(4, 8, 16))
    seen = []
    model.encoders[2].register_forward_hook(lambda m, i, o: seen.append(tuple(o.shape[2:])))
    model(torch.randn(1, 1, 32, 24))
    assert seen == [(8, 6)]


@pytest.mark.parametrize("shape", [(2, 1, 64, 64), (1, 1, 37, 50), (1, 1, 8, 9)])
def test_unet_2d_output_shape(shape):
    model = build_model("unet", spatial_dims=2, in_channels=1, out_channels=1, features=(4, 8, 16))
    assert model(torch.randn(shape)).shape == shape


@pytest.mark.parametrize("shape", [(1, 2, 16, 16, 16), (2, 2, 9, 20, 13)])
def test_unet_3d_output_shape(shape):
    model = UNet(spatial_dims=3, in_channels=2, out_channels=3, features=(2, 4, 8))
    assert model(torch.randn(shape)).shape == (shape[0], 3, *shape[2:])


def test_unet_3d_trains_with_batch_of_one():
    # GroupNorm: a single 3D volume per batch gives a finite, non-degenerate training step
    torch.manual_seed(0)
    model = UNet(spatial_dims=3, features=(8, 16, 32)).train()
    x = torch.randn(1, 1, 12, 16, 16)
    out = model(x)
    assert out.shape == (1, 1, 12, 16, 16) and torch.isfinite(out).all()
    out.mean().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    convs3d = [m for m in model.modules() if isinstance(m, torch.nn.Conv3d)]
    assert convs3d[0].kernel_size == (3, 3, 3) and convs3d[-1].kernel_size == (1, 1, 1)


@pytest.mark.parametrize("norm, cls", [("group", torch.nn.GroupNorm), ("batch", torch.nn.BatchNorm2d),
                                       ("instance", torch.nn.InstanceNorm2d)])
def test_norm_choice(norm, cls):
    model = UNet(spatial_dims=2, features=(8, 16, 32), norm=norm)
    norms = [m for m in model.modules() if isinstance(m, cls)]
    assert len(norms) == 10
    assert model(torch.randn(2, 1, 16, 16)).shape == (2, 1, 16, 16)


def test_group_count():
    assert [group_count(c) for c in (1, 3, 7, 8, 12, 16, 96)] == [1, 1, 1, 8, 6, 8, 8]


def test_build_model_unknown_name():
    with pytest.raises(KeyError, match="unknown model 'vnet'; valid: \\['unet'\\]"):
        build_model("vnet")


@pytest.mark.parametrize(
    "kwargs, match",
    [({"spatial_dims": 4}, "spatial_dims must be 2 or 3, got 4"),
     ({"norm": "layer"}, r"norm must be one of \['group', 'batch', 'instance'\], got 'layer'"),
     ({"features": (8,)}, r"features must be two or more positive channel counts \(one per level\), got \(8,\)"),
     ({"features": (8, 0)}, "got \\(8, 0\\)"),
     ({"in_channels": 0}, "in_channels must be an int >= 1, got 0")],
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
    with pytest.raises(ValueError, match=r"needs spatial sizes >= 4, got shape \(1, 1, 3, 16\)"):
        model(torch.randn(1, 1, 3, 16))
