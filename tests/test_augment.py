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
        crop_scale=(1.0, 1.0),
        crop_ratio=(1.0, 1.0),
        max_translate=0.0,
        color_jitter_p=0.0,
        blur_p=0.0,
        noise_std=0.0,
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


# --- each batched op against torchvision's per-image functional op -----------------------------

TF = pytest.importorskip("torchvision.transforms.v2.functional")


def rgb(n=4, h=24, w=20, seed=0):
    return torch.rand(n, 3, h, w, generator=torch.Generator().manual_seed(seed))


def per_sample(fn, images, *factors):
    return torch.stack([fn(image, *(float(f[i]) for f in factors)) for i, image in enumerate(images)])


@pytest.mark.parametrize("box", [(2, 3, 20, 16), (0, 0, 24, 24), (5, 1, 9, 13)])
def test_crop_box_matches_torchvision_resized_crop(box):
    from selfsup.augment.ops import resized_crop

    top, left, height, width = box
    image = torch.rand(1, 3, 24, 24, generator=torch.Generator().manual_seed(0))
    out_size = (8, 8)  # downsampling: every sample lies inside the box
    ours = resized_crop(image, *(torch.tensor([float(v)]) for v in box), out_size)
    reference = TF.resized_crop(image, top, left, height, width, list(out_size), antialias=False)
    torch.testing.assert_close(ours, reference, atol=1e-5, rtol=0)


def test_batched_crops_and_flips_match_per_image_resized_crop():
    from selfsup.augment.ops import resized_crop

    images = torch.from_numpy(np.random.default_rng(1).integers(0, 256, (3, 3, 24, 20), dtype=np.uint8))
    boxes = torch.tensor([[2.0, 3.0, 12.0, 9.0], [0.0, 0.0, 24.0, 20.0], [7.0, 4.0, 10.0, 15.0]])
    flip = torch.tensor([False, True, True])
    ours = resized_crop(images, *boxes.T, (30, 26), flip)
    for i, (top, left, height, width) in enumerate(boxes.int().tolist()):
        reference = TF.resized_crop(images[i].float() / 255, top, left, height, width, [30, 26], antialias=False)
        reference = TF.horizontal_flip(reference) if flip[i] else reference
        # Upsampling: torchvision clamps to the box's edge pixels, we read the neighbours
        # outside it, so the outermost output pixels differ; the inside is the same.
        torch.testing.assert_close(ours[i, :, 2:-2, 2:-2], reference[:, 2:-2, 2:-2], atol=1e-5, rtol=0)


def test_crop_outside_the_image_is_zero_padded():
    from selfsup.augment.ops import resized_crop

    image = torch.ones(1, 1, 8, 8)
    out = resized_crop(
        image, torch.tensor([-4.0]), torch.tensor([4.0]), torch.tensor([8.0]), torch.tensor([8.0]), (8, 8)
    )
    assert torch.all(out[0, 0, :3] == 0) and torch.all(out[0, 0, 5:, :3] == 1) and torch.all(out[0, 0, :, 5:] == 0)


@pytest.mark.parametrize("channels", [1, 3])
def test_blur_matches_torchvision_gaussian_blur(channels):
    from selfsup.augment.ops import gaussian_blur

    images = torch.rand(3, channels, 20, 17, generator=torch.Generator().manual_seed(2))
    sigma, radius = torch.tensor([0.1, 0.9, 2.0]), 4
    ours = gaussian_blur(images, sigma, radius)
    reference = per_sample(lambda x, s: TF.gaussian_blur(x, [2 * radius + 1] * 2, [s, s]), images, sigma)
    torch.testing.assert_close(ours, reference, atol=1e-5, rtol=0)


@pytest.mark.parametrize("channels", [1, 3])
def test_color_jitter_matches_torchvision_adjust_ops(channels):
    from selfsup.augment.ops import color_jitter

    images = torch.rand(6, channels, 16, 12, generator=torch.Generator().manual_seed(3))
    brightness = torch.tensor([0.6, 1.4, 1.0, 1.3, 0.0, 0.8])
    contrast = torch.tensor([1.4, 0.6, 1.2, 1.0, 0.7, 1.3])
    saturation = torch.tensor([0.6, 1.4, 1.0, 1.3, 0.9, 0.0])

    def reference_one(x, b, c, s):
        x = TF.adjust_contrast(TF.adjust_brightness(x, b), c)
        return TF.adjust_saturation(x, s) if channels == 3 else x

    ours = color_jitter(images.clone(), brightness, contrast, saturation)
    reference = per_sample(reference_one, images, brightness, contrast, saturation)
    # torchvision's tensor luma is 0.2989 R, PIL's (ours) 0.299 R
    torch.testing.assert_close(ours, reference, atol=2e-4, rtol=0)


def test_grayscale_and_solarize_match_torchvision():
    from selfsup.augment.ops import grayscale, solarize

    images = rgb()
    reference = TF.rgb_to_grayscale(images, num_output_channels=1)
    torch.testing.assert_close(grayscale(images), reference, atol=2e-4, rtol=0)
    torch.testing.assert_close(solarize(images), TF.solarize(images, 0.5), atol=0, rtol=0)


def _both_paths(batch, params, size, seed=5):
    """(tensor-op views, fused-kernel views) of ``batch`` from one plan and one noise draw."""
    from selfsup.augment.chunked import augment_chunked
    from selfsup.augment.fused import augment_fused
    from selfsup.augment.plan import draw

    n, c = batch.shape[:2]
    generator = torch.Generator().manual_seed(seed)
    plan = draw(n, c, tuple(batch.shape[-2:]), size, params, generator, "cpu")
    noise = torch.randn((n, c, *size), generator=generator) if params.noise_std > 0 else None
    gain = 1 / 255 if batch.dtype == torch.uint8 else 1.0
    return (
        augment_chunked(batch, plan, params, noise, gain, size),
        augment_fused(batch, plan, params, noise, gain, size),
    )


def test_chunking_and_grouping_do_not_change_the_views(monkeypatch):
    """The tensor-op path gives the same views however the batch is cut into chunks."""
    from selfsup.augment import chunked

    params = AugmentationParams(saturation=0.4, grayscale_p=0.5, solarize_p=0.3, hflip_p=0.5, blur_p=0.5, noise_std=0.0)
    batch = images(n=24, c=3)
    whole, _ = _both_paths(batch, params, (12, 12))
    monkeypatch.setattr(chunked, "CHUNK_ELEMENTS", 1)  # one sample per chunk
    single, _ = _both_paths(batch, params, (12, 12))
    torch.testing.assert_close(whole, single, atol=1e-6, rtol=0)


@pytest.mark.parametrize(
    ("channels", "shape", "size", "dtype"),
    [
        (3, (20, 18), (16, 14), torch.uint8),
        (1, (28, 28), (20, 20), torch.uint8),
        (4, (12, 12), (24, 24), torch.uint8),
        (3, (32, 32), (40, 24), torch.float32),
        (3, (7, 9), (5, 5), torch.uint8),
    ],
)
def test_fused_kernel_matches_the_tensor_operations(channels, shape, size, dtype):
    """The CPU kernel and the batched tensor operations (the CUDA path) give the same views
    for the same plan: every operation on, with noise, float and uint8, up- and downscaling."""
    params = AugmentationParams(
        saturation=0.4,
        grayscale_p=0.5,
        solarize_p=0.3,
        hflip_p=0.5,
        blur_p=0.5,
        noise_std=0.05,
        max_translate=0.1,
        crop_scale=(0.08, 1.0),
    )
    batch = images(n=40, c=channels, h=shape[0], w=shape[1])
    batch = batch if dtype == torch.uint8 else batch.float() / 255
    chunked, fused = _both_paths(batch, params, size)
    torch.testing.assert_close(fused, chunked, atol=1e-5, rtol=0)


def test_fused_views_do_not_depend_on_the_thread_count():
    params = AugmentationParams(saturation=0.4, grayscale_p=0.3, blur_p=0.5, noise_std=0.0)
    batch, before = images(n=64, c=3, h=24, w=24), torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = augment_batch(batch, params, torch.Generator().manual_seed(2))
        torch.set_num_threads(3)
        three = augment_batch(batch, params, torch.Generator().manual_seed(2))
    finally:
        torch.set_num_threads(before)
    assert torch.equal(one, three)


@pytest.mark.parametrize("channels", [1, 3])
def test_pipeline_matches_the_per_image_composition_of_torchvision_ops(channels):
    """augment_batch = crop, then adjust_brightness/contrast/saturation, rgb_to_grayscale,
    gaussian_blur per image with the same parameters (chunking, grouping, layouts, fusions)."""
    from selfsup.augment.ops import resized_crop
    from selfsup.augment.plan import blur_radius, draw, draw_crop

    params = AugmentationParams(
        saturation=0.4,
        grayscale_p=0.3,
        hflip_p=0.5,
        blur_p=0.5,
        blur_sigma=(0.1, 2.0),
        noise_std=0.0,
        crop_scale=(0.3, 1.0),
    )
    batch, size = images(n=24, c=channels, h=20, w=18), (16, 14)
    ours = augment_batch(batch, params, torch.Generator().manual_seed(7), output_size=size)
    top, left, height, width, flip = draw_crop(24, (20, 18), params, torch.Generator().manual_seed(7), "cpu")
    plan = draw(24, channels, (20, 18), size, params, torch.Generator().manual_seed(7), "cpu")
    radius = blur_radius(params, size)
    for i in range(24):
        view = resized_crop(
            batch[i : i + 1],
            top[i : i + 1],
            left[i : i + 1],
            height[i : i + 1],
            width[i : i + 1],
            size,
            flip[i : i + 1],
        )[0]
        if plan.jitter[i]:
            view = TF.adjust_contrast(TF.adjust_brightness(view, float(plan.brightness[i])), float(plan.contrast[i]))
            view = TF.adjust_saturation(view, float(plan.saturation[i])) if channels == 3 else view
        if plan.gray[i]:
            view = TF.rgb_to_grayscale(view, num_output_channels=3)
        if plan.blur[i]:
            view = TF.gaussian_blur(view, [2 * radius + 1] * 2, [float(plan.sigma[i])] * 2)
        torch.testing.assert_close(ours[i], view.clamp(0, 1), atol=5e-4, rtol=0)
