"""The generative (MAE, BEiT, denoising AE) and predictive (RotNet, Jigsaw) methods."""

import itertools

import numpy as np
import pytest
import torch

from selfsup.config import (
    BEiTParams,
    DenoisingAEParams,
    JigsawParams,
    MAEParams,
    ParameterError,
    PretrainingParams,
    RotNetParams,
    validate,
)
from selfsup.data.cached_views import CachedViews
from selfsup.losses import masked_mse, masked_token_cross_entropy
from selfsup.methods import METHODS, build_method
from selfsup.methods.beit import BEiT, tokenize
from selfsup.methods.denoising_ae import DenoisingAE
from selfsup.methods.jigsaw import Jigsaw, cut_tiles, permutation_set
from selfsup.methods.mae import MAE, standardise_patches
from selfsup.methods.masked_image import block_mask, masked_count, random_mask
from selfsup.methods.rotnet import RotNet, rotations
from selfsup.models import build_encoder
from selfsup.models.vit import patchify
from selfsup.tokenizer import fit_codebook, sample_patches, tokenizer_codebook


def encoder(backbone: str = "vit_tiny", channels: int = 1, size=(8, 8)):
    params = {"vit_tiny": {"depth": 1, "patch_size": 2}, "small_cnn": {"widths": [8, 16]}}[backbone]
    return build_encoder(
        {
            "backbone": backbone,
            "in_channels": channels,
            "image_size": list(size),
            "backbone_params": params,
            "mean": [0.3] * channels,
            "std": [0.4] * channels,
        }
    )


def test_the_five_methods_are_registered():
    assert {"mae", "beit", "denoising_ae", "rotnet", "jigsaw"} <= set(METHODS)


# --- losses against slow references -------------------------------------------------------


def reference_masked_mse(prediction, target, mask):
    total, count = 0.0, 0
    for b in range(prediction.shape[0]):
        for n in range(prediction.shape[1]):
            if mask[b, n]:
                total = (
                    total
                    + sum((prediction[b, n, d] - target[b, n, d]) ** 2 for d in range(prediction.shape[2]))
                    / prediction.shape[2]
                )
                count += 1
    return total / count


def reference_masked_cross_entropy(logits, tokens, mask):
    total, count = 0.0, 0
    for b in range(logits.shape[0]):
        for n in range(logits.shape[1]):
            if mask[b, n]:
                row = logits[b, n]
                total = total - (row[tokens[b, n]] - torch.log(torch.exp(row).sum()))
                count += 1
    return total / count


def test_masked_mse_matches_the_reference_in_value_and_gradient():
    torch.manual_seed(0)
    prediction = torch.randn(3, 5, 4, dtype=torch.float64, requires_grad=True)
    target = torch.randn(3, 5, 4, dtype=torch.float64)
    mask = torch.rand(3, 5) < 0.6
    mask[0, 0] = True
    fast = masked_mse(prediction, target, mask)
    (fast_grad,) = torch.autograd.grad(fast, prediction)
    slow = reference_masked_mse(prediction, target, mask)
    (slow_grad,) = torch.autograd.grad(slow, prediction)
    assert fast.item() == pytest.approx(slow.item(), rel=1e-12)
    assert torch.allclose(fast_grad, slow_grad)
    assert (fast_grad[~mask] == 0).all()


def test_masked_token_cross_entropy_matches_the_reference_in_value_and_gradient():
    torch.manual_seed(0)
    logits = torch.randn(2, 6, 7, dtype=torch.float64, requires_grad=True)
    tokens = torch.randint(0, 7, (2, 6))
    mask = torch.rand(2, 6) < 0.5
    mask[1, 2] = True
    fast = masked_token_cross_entropy(logits, tokens, mask)
    (fast_grad,) = torch.autograd.grad(fast, logits)
    slow = reference_masked_cross_entropy(logits, tokens, mask)
    (slow_grad,) = torch.autograd.grad(slow, logits)
    assert fast.item() == pytest.approx(slow.item(), rel=1e-12)
    assert torch.allclose(fast_grad, slow_grad)
    assert (fast_grad[~mask] == 0).all()


# --- masks -----------------------------------------------------------------------------------


@pytest.mark.parametrize("ratio", [0.1, 0.4, 0.75, 0.9])
def test_masks_hide_the_requested_share_of_patches_in_every_sample(ratio):
    torch.manual_seed(0)
    expected = masked_count(16, ratio)
    assert expected == min(15, max(1, round(16 * ratio)))
    assert (random_mask(64, 16, ratio).sum(dim=1) == expected).all()
    assert (block_mask(64, (4, 4), ratio).sum(dim=1) == expected).all()


def test_random_masks_differ_per_sample_and_block_masks_are_blocky():
    torch.manual_seed(0)
    random = random_mask(256, 64, 0.4)
    assert len({tuple(row.tolist()) for row in random}) == 256

    def adjacent_masked_pairs(mask):
        grid = mask.view(-1, 8, 8)
        return ((grid[:, 1:] & grid[:, :-1]).sum() + (grid[:, :, 1:] & grid[:, :, :-1]).sum()).item()

    assert adjacent_masked_pairs(block_mask(256, (8, 8), 0.4)) > 1.5 * adjacent_masked_pairs(random)


def test_masks_never_hide_everything_or_nothing():
    assert masked_count(4, 0.99) == 3 and masked_count(4, 0.01) == 1


# --- MAE -------------------------------------------------------------------------------------


def test_mae_loss_counts_masked_patches_only():
    torch.manual_seed(0)
    mae = MAE(encoder(), MAEParams(mask_ratio=0.75))
    images = torch.rand(4, 1, 8, 8)
    mask = random_mask(4, 16, 0.75)
    prediction, target = mae.reconstruct(images, mask)
    assert prediction.shape == target.shape == (4, 16, 4)
    loss = masked_mse(prediction, target, mask)
    changed = torch.where(mask.unsqueeze(-1), prediction, prediction + 10 * torch.randn_like(prediction))
    assert masked_mse(changed, target, mask).item() == pytest.approx(loss.item(), rel=1e-6)
    on_masked = torch.where(mask.unsqueeze(-1), prediction + torch.randn_like(prediction), prediction)
    assert masked_mse(on_masked, target, mask).item() != pytest.approx(loss.item(), rel=1e-3)


def test_mae_encoder_sees_only_the_visible_patches():
    torch.manual_seed(0)
    mae = MAE(encoder(), MAEParams(norm_pix_loss=False)).eval()
    images = torch.rand(2, 1, 8, 8)
    mask = random_mask(2, 16, 0.75)
    pixel_mask = mask.view(2, 1, 4, 1, 4, 1).expand(2, 1, 4, 2, 4, 2).reshape(2, 1, 8, 8)
    altered = torch.where(pixel_mask, torch.rand_like(images), images)
    with torch.no_grad():
        prediction, target = mae.reconstruct(images, mask)
        altered_prediction, altered_target = mae.reconstruct(altered, mask)
    assert torch.allclose(prediction, altered_prediction, atol=1e-6)
    assert not torch.allclose(target[mask], altered_target[mask])
    assert torch.allclose(target[~mask], altered_target[~mask])


def test_mae_targets_are_normalised_pixel_patches():
    enc = encoder()
    images = torch.rand(2, 1, 8, 8)
    _, plain = MAE(enc, MAEParams(norm_pix_loss=False)).reconstruct(images, random_mask(2, 16, 0.5))
    assert torch.allclose(plain, patchify(enc.normalise(images), 2))
    _, standardised = MAE(enc, MAEParams(norm_pix_loss=True)).reconstruct(images, random_mask(2, 16, 0.5))
    assert torch.allclose(standardised, standardise_patches(plain))
    assert torch.allclose(standardised.mean(dim=-1), torch.zeros(2, 16), atol=1e-5)


def test_patchify_follows_the_patch_grid_row_by_row():
    image = torch.arange(2 * 4 * 6, dtype=torch.float32).view(1, 2, 4, 6)
    patches = patchify(image, 2)
    assert patches.shape == (1, 6, 8)
    assert torch.equal(patches[0, 4], image[0, :, 2:4, 2:4].reshape(-1))


def test_mae_and_beit_need_a_vit():
    with pytest.raises(ValueError, match="needs a ViT backbone.*'small_cnn'"):
        MAE(encoder("small_cnn"), MAEParams())
    with pytest.raises(ValueError, match="needs a ViT backbone"):
        tokenizer_codebook(CachedViews(np.zeros((4, 2, 1, 8, 8), np.uint8)), PretrainingParams(method="beit"))


# --- BEiT's tokenizer ---------------------------------------------------------------------


def test_tokenizer_assigns_each_patch_to_its_nearest_codeword():
    torch.manual_seed(0)
    codebook = torch.rand(20, 3, 2, 2)
    images = torch.rand(5, 3, 6, 8)
    tokens = tokenize(images, codebook)
    assert tokens.shape == (5, 12)
    for b in range(5):
        for n, patch in enumerate(patchify(images, 2)[b]):
            distances = [((patch - word.reshape(-1)) ** 2).sum().item() for word in codebook]
            assert distances[tokens[b, n]] == pytest.approx(min(distances), abs=1e-6)


def test_sampled_patches_are_patches_of_the_views():
    views = np.random.default_rng(0).integers(0, 256, (6, 2, 3, 4, 6), dtype=np.uint8)
    every_patch = patchify(torch.from_numpy(views.reshape(12, 3, 4, 6)).float() / 255, 2).reshape(-1, 12)
    known = {tuple(np.round(p, 6)) for p in every_patch.numpy()}
    sampled = sample_patches(views, 2, 20, seed=0)
    assert sampled.shape == (20, 12) and len({tuple(p) for p in sampled}) == 20
    assert all(tuple(np.round(p, 6)) in known for p in sampled)
    assert len(sample_patches(views, 2, 10_000, seed=0)) == 12 * 6


def test_codebook_finds_the_clusters_and_is_deterministic_by_seed():
    rng = np.random.default_rng(0)
    levels = np.array([0, 128, 255], dtype=np.uint8)
    views = np.repeat(np.repeat(levels[rng.integers(0, 3, (50, 2, 1, 4, 4))], 2, axis=3), 2, axis=4)
    codebook = fit_codebook(views, 2, size=3, max_patches=1000, iterations=20, seed=0)
    assert codebook.shape == (3, 1, 2, 2)
    assert sorted(np.round(codebook.mean(axis=(1, 2, 3)) * 255).tolist()) == [0, 128, 255]

    noisy = np.random.default_rng(1).integers(0, 256, (40, 2, 1, 8, 8), dtype=np.uint8)
    first = fit_codebook(noisy, 2, size=16, max_patches=2000, iterations=10, seed=3)
    assert np.array_equal(first, fit_codebook(noisy, 2, size=16, max_patches=2000, iterations=10, seed=3))
    assert not np.array_equal(first, fit_codebook(noisy, 2, size=16, max_patches=2000, iterations=10, seed=4))


def test_tokenizer_is_empty_unless_the_method_uses_one():
    views = CachedViews(np.random.default_rng(0).integers(0, 256, (40, 2, 1, 8, 8), dtype=np.uint8))
    assert tokenizer_codebook(views, PretrainingParams(method="mae", backbone="vit_tiny")).shape[0] == 0
    params = PretrainingParams(
        method="beit", backbone="vit_tiny", vit_tiny={"patch_size": 2}, beit={"codebook_size": 8}
    )
    assert tokenizer_codebook(views, params).shape == (8, 1, 2, 2)


# --- BEiT ------------------------------------------------------------------------------------


def beit(masking="block"):
    torch.manual_seed(0)
    codebook = np.random.default_rng(0).random((10, 1, 2, 2)).astype(np.float32)
    return BEiT(encoder(), BEiTParams(masking=masking, codebook_size=10, tokenizer_patches=100), codebook)


def test_beit_hides_masked_patches_behind_the_mask_token():
    method = beit().eval()
    images = torch.rand(2, 1, 8, 8)
    mask = block_mask(2, (4, 4), 0.4)
    pixel_mask = mask.view(2, 1, 4, 1, 4, 1).expand(2, 1, 4, 2, 4, 2).reshape(2, 1, 8, 8)
    altered = torch.where(pixel_mask, torch.rand_like(images), images)
    with torch.no_grad():
        logits = method.token_logits(images, mask)
        assert logits.shape == (2, 16, 10)
        assert torch.allclose(logits, method.token_logits(altered, mask), atol=1e-6)
        assert not torch.allclose(logits, method.token_logits(altered, torch.zeros_like(mask)), atol=1e-3)


@pytest.mark.parametrize("masking", ["block", "random"])
def test_beit_loss_is_cross_entropy_of_the_tokens_of_hidden_patches(masking):
    method = beit(masking)
    images = torch.rand(4, 1, 8, 8)
    torch.manual_seed(5)
    loss, logs = method.loss(images)
    torch.manual_seed(5)
    mask = method.mask(4, (4, 4), images.device)
    expected = reference_masked_cross_entropy(
        method.token_logits(images, mask), tokenize(images, method.codebook), mask
    )
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert 0 <= logs["token_accuracy"] <= 1


def test_beit_refuses_a_missing_or_mismatched_codebook():
    with pytest.raises(ValueError, match="rerun the fit_tokenizer node"):
        BEiT(encoder(), BEiTParams(), np.zeros((0, 1, 0, 0), np.float32))
    with pytest.raises(ValueError, match=r"\(K, 1, 2, 2\)"):
        BEiT(encoder(), BEiTParams(), np.zeros((8, 1, 4, 4), np.float32))
    with pytest.raises(ValueError, match="needs a tokenizer codebook"):
        build_method(encoder(), PretrainingParams(method="beit", backbone="vit_tiny"))


# --- denoising autoencoder -------------------------------------------------------------------


def test_denoising_corruption_masks_pixels_across_channels_and_stays_in_range():
    torch.manual_seed(0)
    method = DenoisingAE(encoder("small_cnn", 3), DenoisingAEParams(noise_std=0.0, mask_ratio=0.5))
    images = torch.rand(64, 3, 8, 8) * 0.5 + 0.25
    corrupted = method.corrupt(images)
    dropped = corrupted == 0
    assert (dropped.all(dim=1) == dropped.any(dim=1)).all()
    assert dropped[:, 0].float().mean().item() == pytest.approx(0.5, abs=0.03)
    assert torch.equal(corrupted[~dropped], images[~dropped])
    noisy = DenoisingAE(encoder("small_cnn", 3), DenoisingAEParams(noise_std=2.0, mask_ratio=0.0)).corrupt(images)
    assert noisy.min() >= 0 and noisy.max() <= 1 and not torch.equal(noisy, images)


def test_denoising_loss_is_pixel_mse_to_the_clean_normalised_view():
    enc = encoder("small_cnn")
    method = DenoisingAE(enc, DenoisingAEParams()).eval()
    images = torch.rand(4, 1, 8, 8)
    torch.manual_seed(1)
    loss, _ = method.loss(images)
    torch.manual_seed(1)
    reconstruction = method.decoder(enc(method.corrupt(images))).view(4, 1, 8, 8)
    target = enc.normalise(images)
    slow = sum(((reconstruction[i] - target[i]) ** 2).sum() for i in range(4)) / reconstruction.numel()
    assert loss.item() == pytest.approx(slow.item(), rel=1e-5)


# --- RotNet ----------------------------------------------------------------------------------


def test_rotnet_labels_match_the_rotations():
    images = torch.rand(3, 2, 5, 5)
    rotated, labels = rotations(images)
    assert rotated.shape == (12, 2, 5, 5) and labels.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]
    for i, label in enumerate(labels.tolist()):
        expected = images[i % 3]
        for _ in range(label):  # 90° counter-clockwise, one quarter turn at a time
            expected = expected.transpose(-2, -1).flip(-2)
        assert torch.equal(rotated[i], expected)
    quarter, _ = rotations(torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]]))
    assert quarter[1, 0].tolist() == [[2.0, 4.0], [1.0, 3.0]]


def test_rotnet_needs_square_images():
    with pytest.raises(ValueError, match="square"):
        RotNet(encoder("small_cnn", size=(8, 6)), RotNetParams())


def test_rotnet_loss_classifies_the_four_rotations():
    torch.manual_seed(0)
    method = RotNet(encoder("small_cnn"), RotNetParams(hidden_dim=16))
    images, labels = method.views(torch.rand(5, 1, 1, 8, 8))
    loss, logs = method.loss((images, labels))
    log_probabilities = torch.log_softmax(method.head(method.encoder(images)), dim=1)
    slow = -sum(log_probabilities[i, labels[i]] for i in range(20)) / 20
    assert loss.item() == pytest.approx(slow.item(), rel=1e-5)
    assert 0 <= logs["accuracy"] <= 1


# --- Jigsaw ----------------------------------------------------------------------------------


def minimum_hamming(permutations: np.ndarray) -> int:
    return min(int((a != b).sum()) for a, b in itertools.combinations(permutations, 2))


def test_jigsaw_permutations_are_distinct_and_far_apart():
    chosen = permutation_set(9, 100)
    assert chosen.shape == (100, 9)
    assert all(sorted(p) == list(range(9)) for p in chosen.tolist())
    assert len({tuple(p) for p in chosen.tolist()}) == 100
    rng = np.random.default_rng(0)
    random_sets = [np.array([rng.permutation(9) for _ in range(100)]) for _ in range(5)]
    assert minimum_hamming(chosen) >= max(minimum_hamming(r) for r in random_sets)
    assert np.array_equal(chosen, permutation_set(9, 100))


def test_every_order_of_four_tiles_can_be_used():
    chosen = permutation_set(4, 24)
    assert len({tuple(p) for p in chosen.tolist()}) == 24
    assert minimum_hamming(permutation_set(16, 30)) >= 12


def test_tiles_are_cut_row_by_row_and_resized_when_the_grid_does_not_divide():
    image = torch.arange(36, dtype=torch.float32).view(1, 1, 6, 6)
    tiles = cut_tiles(image, 3)
    assert tiles.shape == (1, 9, 1, 2, 2)
    assert torch.equal(tiles[0, 5, 0], image[0, 0, 2:4, 4:6])
    assert cut_tiles(torch.rand(2, 3, 8, 8), 3).shape == (2, 9, 3, 3, 3)


def test_jigsaw_slot_i_holds_tile_permutation_i():
    torch.manual_seed(0)
    method = Jigsaw(encoder("small_cnn", size=(6, 6)), JigsawParams(grid=3, num_permutations=10, hidden_dim=16))
    tile_values = torch.arange(9, dtype=torch.float32).view(1, 1, 3, 3) / 10
    images = tile_values.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3).expand(4, 1, 6, 6)
    tiles, labels = method.views(images.unsqueeze(1))
    assert tiles.shape == (4, 9, 1, 6, 6)  # each tile resized to the view's size
    for b in range(4):
        expected = method.permutations[labels[b]].float() / 10
        assert torch.allclose(tiles[b].mean(dim=(1, 2, 3)), expected, atol=1e-6)
    loss, logs = method.loss((tiles, labels))
    assert loss.ndim == 0 and 0 <= logs["accuracy"] <= 1


# --- parameters ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "values, fragment",
    [
        ({"mae": {"mask_ratio": 1.0}}, "pretraining.mae.mask_ratio=1.0"),
        ({"mae": {"mask_ratio": 0}}, "pretraining.mae.mask_ratio=0"),
        ({"mae": {"decoder_dim": 100, "decoder_heads": 3}}, "decoder_dim=100 must be divisible"),
        ({"mae": {"decoder_dim": 130, "decoder_heads": 2}}, "and by 4"),
        ({"beit": {"mask_ratio": 1.5}}, "pretraining.beit.mask_ratio=1.5"),
        ({"beit": {"masking": "grid"}}, "pretraining.beit.masking='grid'"),
        ({"beit": {"codebook_size": 512, "tokenizer_patches": 100}}, "tokenizer_patches=100 must be at least"),
        ({"denoising_ae": {"noise_std": 0, "mask_ratio": 0}}, "would not be corrupted"),
        ({"denoising_ae": {"mask_ratio": 1}}, "pretraining.denoising_ae.mask_ratio=1"),
        ({"jigsaw": {"grid": 2, "num_permutations": 25}}, "exceeds the 24 orders"),
        ({"jigsaw": {"grid": 1}}, "pretraining.jigsaw.grid=1"),
        ({"rotnet": {"hidden_dim": 0}}, "pretraining.rotnet.hidden_dim=0"),
    ],
)
def test_nonsense_method_parameters_are_refused(values, fragment):
    with pytest.raises(ParameterError) as error:
        validate(PretrainingParams, "pretraining", values)
    assert fragment in str(error.value)
