import pytest
import torch
import torch.nn.functional as F

from selfsup.config import ParameterError, PretrainingParams, validate
from selfsup.models import BACKBONES, build_encoder
from selfsup.models.vit import sincos_position_embedding

SMALL = {
    "small_cnn": {"widths": [8, 16]},
    "vit_tiny": {"depth": 2, "patch_size": 2},
    "vit_small": {"depth": 2, "patch_size": 2},
}
FEATURE_DIMS = {"small_cnn": 16, "resnet18": 512, "resnet50": 2048, "vit_tiny": 192, "vit_small": 384}


def encoder_for(backbone: str, channels: int = 1, image_size=(8, 8), **overrides):
    params = getattr(PretrainingParams(), backbone).model_dump(mode="json")
    params.update(SMALL.get(backbone, {}), **overrides)
    config = {
        "backbone": backbone,
        "in_channels": channels,
        "image_size": list(image_size),
        "backbone_params": params,
        "mean": [0.5] * channels,
        "std": [0.25] * channels,
    }
    return build_encoder(config)


def test_every_backbone_is_registered():
    assert set(BACKBONES) == {"small_cnn", "resnet18", "resnet50", "vit_tiny", "vit_small"}


@pytest.mark.parametrize("backbone", sorted(FEATURE_DIMS))
@pytest.mark.parametrize("channels", [1, 3, 5])
def test_features_have_the_backbone_width_for_any_channel_count(backbone, channels):
    torch.manual_seed(0)
    encoder = encoder_for(backbone, channels).eval()
    with torch.no_grad():
        features = encoder(torch.rand(3, channels, 8, 8))
    assert features.shape == (3, FEATURE_DIMS[backbone]) == (3, encoder.feature_dim)
    assert torch.isfinite(features).all()


def _layer4_size(encoder, size: int) -> tuple[int, int]:
    seen = {}
    encoder.backbone.net.layer4.register_forward_hook(lambda module, args, out: seen.update(shape=out.shape[-2:]))
    with torch.no_grad():
        encoder.eval()(torch.rand(1, 3, size, size))
    return tuple(seen["shape"])


@pytest.mark.parametrize("backbone", ["resnet18", "resnet50"])
def test_small_image_stem_keeps_resolution(backbone):
    small = encoder_for(backbone, 3, (32, 32))
    conv = small.backbone.net.conv1
    assert (conv.kernel_size, conv.stride, conv.in_channels) == ((3, 3), (1, 1), 3)
    assert isinstance(small.backbone.net.maxpool, torch.nn.Identity)
    assert isinstance(small.backbone.net.fc, torch.nn.Identity)
    assert _layer4_size(small, 32) == (4, 4)

    imagenet = encoder_for(backbone, 3, (32, 32), small_image_stem=False)
    assert (imagenet.backbone.net.conv1.kernel_size, imagenet.backbone.net.conv1.stride) == ((7, 7), (2, 2))
    assert _layer4_size(imagenet, 32) == (1, 1)


def test_vit_sizes_its_grid_from_the_encoder_image_size():
    encoder = encoder_for("vit_tiny", 1, (8, 12))
    assert encoder.backbone.grid == (4, 6)
    assert encoder.backbone.pos_embed.shape == (1, 1 + 24, 192)
    assert encoder(torch.rand(2, 1, 8, 12)).shape == (2, 192)


def test_vit_position_embeddings_are_interpolated_bicubically_for_another_size():
    torch.manual_seed(0)
    vit = encoder_for("vit_tiny").backbone
    assert vit.position_embedding((4, 4)) is vit.pos_embed

    resized = vit.position_embedding((6, 5))
    grid = vit.pos_embed[:, 1:].reshape(1, 4, 4, 192).permute(0, 3, 1, 2)
    expected = F.interpolate(grid, size=(6, 5), mode="bicubic", align_corners=False)
    assert resized.shape == (1, 1 + 30, 192)
    assert torch.equal(resized[:, 0], vit.pos_embed[:, 0])
    assert torch.allclose(resized[0, 1:].reshape(6, 5, 192), expected[0].permute(1, 2, 0))

    with torch.no_grad():
        vit.pos_embed.fill_(0.25)  # a constant field stays constant
        assert torch.allclose(vit.position_embedding((7, 9)), torch.full((1, 64, 192), 0.25))
    assert encoder_for("vit_tiny")(torch.rand(2, 1, 12, 10)).shape == (2, 192)


def test_vit_position_embeddings_start_from_sine_cosine():
    vit = encoder_for("vit_tiny", 1, (8, 12)).backbone
    assert torch.allclose(vit.pos_embed, sincos_position_embedding((4, 6), 192))
    table = vit.pos_embed[0]
    assert torch.equal(table[0], torch.zeros(192))
    assert torch.cdist(table[1:], table[1:]).add(torch.eye(24)).min() > 0.1  # every patch position distinct
    assert table[1, 0].item() == 0.0 and table[1, 48].item() == 1.0  # sin and cos of row 0


def test_vit_pools_the_mean_patch_token_or_the_cls_token():
    torch.manual_seed(0)
    mean = encoder_for("vit_tiny").eval()
    torch.manual_seed(0)
    cls = encoder_for("vit_tiny", pool="cls").eval()
    x = torch.rand(2, 1, 8, 8)
    with torch.no_grad():
        vit = mean.backbone
        positions = vit.position_embedding(vit.grid)
        tokens = torch.cat(
            [
                (vit.cls_token + positions[:, :1]).expand(2, -1, -1),
                vit.patch_tokens(mean.normalise(x)) + positions[:, 1:],
            ],
            dim=1,
        )
        hidden = vit.transform(tokens)
        assert torch.allclose(mean(x), hidden[:, 1:].mean(dim=1), atol=1e-6)
        assert torch.allclose(cls(x), hidden[:, 0], atol=1e-6)


def test_patch_larger_than_the_image_names_the_parameter():
    with pytest.raises(ValueError, match=r"pretraining\.vit_tiny\.patch_size=16"):
        encoder_for("vit_tiny", patch_size=16)
    encoder = encoder_for("vit_small", 1, (16, 16), patch_size=8)
    with pytest.raises(ValueError, match=r"pretraining\.vit_small\.patch_size=8 .* 4×6 images"):
        encoder(torch.rand(1, 1, 4, 6))


@pytest.mark.parametrize(
    "values, fragment",
    [
        ({"vit_tiny": {"patch_size": 0}}, "pretraining.vit_tiny.patch_size=0"),
        ({"vit_small": {"pool": "max"}}, "pretraining.vit_small.pool='max'"),
        ({"resnet18": {"small_image_stem": "maybe"}}, "pretraining.resnet18.small_image_stem='maybe'"),
        ({"backbone": "vgg"}, "pretraining.backbone='vgg'"),
    ],
)
def test_wrong_backbone_parameters_are_named(values, fragment):
    with pytest.raises(ParameterError) as error:
        validate(PretrainingParams, "pretraining", values)
    assert fragment in str(error.value)
