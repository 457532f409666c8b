"""E-SimCLR: SimCLR with the four-fold rotation prediction term (``pretraining.simclr.rotation_weight``)."""

import pytest
import torch
import torch.nn.functional as F

from selfsup.config import SimCLRParams
from selfsup.losses import nt_xent
from selfsup.methods.rotnet import rotations
from selfsup.methods.simclr import SimCLR
from selfsup.models import build_encoder


def encoder(size=(8, 8)):
    return build_encoder(
        {
            "backbone": "small_cnn",
            "in_channels": 1,
            "image_size": list(size),
            "backbone_params": {"widths": [8, 16]},
            "mean": [0.3],
            "std": [0.4],
        }
    )


def test_the_loss_adds_the_weighted_rotation_cross_entropy_of_the_resized_first_view():
    torch.manual_seed(0)
    method = SimCLR(encoder(), SimCLRParams(hidden_dim=16, projection_dim=8, rotation_weight=0.4, rotation_scale=0.5))
    x1, x2 = method.views(torch.rand(6, 2, 1, 8, 8))
    loss, logs = method.loss((x1, x2))

    z1, z2 = method.projector(method.encoder(torch.cat([x1, x2]))).chunk(2)
    small = F.avg_pool2d(x1, 2)  # 8×8 at scale 0.5: the mean of each 2×2 block
    images, labels = rotations(small)
    assert images.shape == (24, 1, 4, 4)
    rotation = F.cross_entropy(method.rotation_head(method.encoder(images)), labels)
    assert loss.item() == pytest.approx((nt_xent(z1, z2, method.temperature) + 0.4 * rotation).item(), rel=1e-5)
    assert logs["rotation_loss"] == pytest.approx(rotation.item(), rel=1e-5)
    assert 0 <= logs["rotation_accuracy"] <= 1


def test_the_rotation_term_trains_its_head_and_the_encoder():
    torch.manual_seed(0)
    method = SimCLR(encoder(), SimCLRParams(hidden_dim=16, projection_dim=8, rotation_weight=1.0, rotation_scale=1.0))
    loss, _ = method(torch.rand(4, 2, 1, 8, 8))
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in method.rotation_head.parameters())


def test_weight_zero_is_plain_simclr_without_a_rotation_head():
    torch.manual_seed(0)
    method = SimCLR(encoder(), SimCLRParams(hidden_dim=16, projection_dim=8))
    assert not hasattr(method, "rotation_head")
    x1, x2 = method.views(torch.rand(4, 2, 1, 8, 8))
    loss, logs = method.loss((x1, x2))
    z1, z2 = method.projector(method.encoder(torch.cat([x1, x2]))).chunk(2)
    assert logs == {} and loss.item() == pytest.approx(nt_xent(z1, z2, method.temperature).item(), rel=1e-6)


def test_rotations_need_square_views_and_say_which_parameter_asked():
    with pytest.raises(ValueError, match=r"rotation_weight > 0 rotates by 90°.*square.*8×6"):
        SimCLR(encoder(size=(8, 6)), SimCLRParams(rotation_weight=0.4))
    SimCLR(encoder(size=(8, 6)), SimCLRParams())  # plain SimCLR takes any shape
