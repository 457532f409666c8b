import numpy as np
import pytest
import torch

from selfsup.augment import augment_batch, iter_view_chunks
from selfsup.config import AugmentationParams


def images(n=16, c=1, h=12, w=12, seed=0):
    return torch.from_numpy(np.random.default_rng(seed).integers(0, 256, (n, c, h, w), dtype=np.uint8))


@pytest.mark.parametrize("channels", [1, 3, 5])
def test_views_keep_shape_and_unit_range(channels):
    params = AugmentationParams(saturation=0.4, grayscale_p=0.2, solarize_p=0.2, hflip_p=0.5)
    out = augment_batch(images(c=channels), params, torch.Generator().manual_seed(0))
    assert out.shape == (16, channels, 12, 12)
    assert out.dtype == torch.float32
    assert out.min() >= 0 and out.max() <= 1


def test_output_size_resizes():
    out = augment_batch(images(), AugmentationParams(), torch.Generator().manual_seed(0), output_size=(20, 24))
    assert out.shape == (16, 1, 20, 24)


def test_same_seed_same_views_and_other_seed_differs():
    batch, params = images(), AugmentationParams()
    first = augment_batch(batch, params, torch.Generator().manual_seed(3))
    again = augment_batch(batch, params, torch.Generator().manual_seed(3))
    other = augment_batch(batch, params, torch.Generator().manual_seed(4))
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


def test_parameters_are_random_per_sample():
    # Sixteen copies of one image: per-sample randomness gives sixteen different views.
    batch = images(n=1).repeat(16, 1, 1, 1)
    out = augment_batch(batch, AugmentationParams(noise_std=0.0), torch.Generator().manual_seed(0))
    distinct = {tuple(view.flatten().tolist()) for view in out}
    assert len(distinct) == 16


def test_identity_settings_reproduce_the_image():
    params = AugmentationParams(
        crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0), max_translate=0.0, color_jitter_p=0.0,
        blur_p=0.0, noise_std=0.0,
    )
    batch = images()
    out = augment_batch(batch, params, torch.Generator().manual_seed(0))
    torch.testing.assert_close(out, batch.float() / 255, atol=1e-5, rtol=0)


def test_view_chunks_cover_positions_deterministically():
    store = images(n=10).numpy()
    params = AugmentationParams(views_per_image=3, batch_size=4)
    positions = np.array([9, 0, 4, 5, 6])
    chunks = list(iter_view_chunks(store, positions, params))
    assert [c[0] for c in chunks] == [slice(0, 4), slice(4, 5)]
    views = np.concatenate([c[1] for c in chunks])
    assert views.shape == (5, 3, 1, 12, 12) and views.dtype == np.uint8
    again = np.concatenate([c[1] for c in iter_view_chunks(store, positions, params)])
    np.testing.assert_array_equal(views, again)


@pytest.mark.parametrize("box", [(2, 3, 20, 16), (0, 0, 24, 24), (5, 1, 9, 13)])
def test_crop_box_matches_torchvision_resized_crop(box):
    from torchvision.transforms.v2 import functional as TF

    from selfsup.augment import boxes_to_theta

    top, left, height, width = box
    image = torch.rand(1, 3, 24, 24, generator=torch.Generator().manual_seed(0))
    out_size = (8, 8)  # downsampling: every sample lies inside the box
    theta = boxes_to_theta(*(torch.tensor([float(v)]) for v in box), (24, 24))
    grid = torch.nn.functional.affine_grid(theta, [1, 3, *out_size], align_corners=False)
    ours = torch.nn.functional.grid_sample(image, grid, mode="bilinear", align_corners=False)
    reference = TF.resized_crop(image, top, left, height, width, list(out_size), antialias=False)
    torch.testing.assert_close(ours, reference, atol=1e-5, rtol=0)
