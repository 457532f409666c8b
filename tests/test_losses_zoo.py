"""The zoo's losses against slow references written element by element from each paper's formula."""

from __future__ import annotations

import math

import pytest
import torch

from selfsup.losses import (
    barlow_twins,
    dino_cross_entropy,
    info_nce,
    masked_mse,
    masked_token_cross_entropy,
    multi_crop_swapped_prediction,
    negative_cosine,
    normalized_mse,
    sinkhorn,
    swapped_prediction,
    vicreg,
)

BATCHES = [2, 3, 8, 16]


def randn(*shape, seed: int, scale: float = 1.0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return (scale * torch.randn(*shape, generator=generator, dtype=torch.float64)).requires_grad_(True)


def assert_same_values_and_gradients(fast, slow, inputs):
    torch.testing.assert_close(fast, slow)
    fast_grads = torch.autograd.grad(fast, inputs)
    slow_grads = torch.autograd.grad(slow, inputs)
    for fast_grad, slow_grad in zip(fast_grads, slow_grads):
        torch.testing.assert_close(fast_grad, slow_grad)


def assert_no_gradient(loss, tensor):
    assert torch.autograd.grad(loss, tensor, retain_graph=True, allow_unused=True)[0] is None


def cosine(a, b):
    return torch.dot(a, b) / (torch.linalg.norm(a) * torch.linalg.norm(b))


def unit(a):
    return a / torch.linalg.norm(a)


# --- InfoNCE (MoCo) -----------------------------------------------------------


def info_nce_reference(q, k, temperature, negatives=None):
    """−log exp(q·k₊/τ) / (exp(q·k₊/τ) + Σ_neg exp(q·k₋/τ)), cosines, averaged over queries."""
    n = len(q)
    total = 0.0
    for i in range(n):
        positive = torch.exp(cosine(q[i], k[i]) / temperature)
        others = [k[j] for j in range(n) if j != i] if negatives is None else list(negatives)
        denominator = positive + sum(torch.exp(cosine(q[i], other) / temperature) for other in others)
        total = total - torch.log(positive / denominator)
    return total / n


@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("temperature", [0.07, 0.2, 1.0])
def test_info_nce_with_in_batch_negatives(batch, temperature):
    q, k = randn(batch, 6, seed=batch), randn(batch, 6, seed=batch + 100)
    fast = info_nce(q, k, temperature)
    assert_same_values_and_gradients(fast, info_nce_reference(q, k, temperature), (q, k))


@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("queue", [1, 7, 32])
def test_info_nce_with_a_queue_of_negatives(batch, queue):
    q, k = randn(batch, 6, seed=batch), randn(batch, 6, seed=batch + 100)
    negatives = randn(queue, 6, seed=queue + 200)
    fast = info_nce(q, k, 0.2, negatives)
    slow = info_nce_reference(q, k, 0.2, negatives)
    assert_same_values_and_gradients(fast, slow, (q, k, negatives))


def test_info_nce_is_low_when_each_query_matches_its_own_key():
    keys = torch.eye(4, dtype=torch.float64)
    assert info_nce(keys, keys.clone(), 0.1) < info_nce(keys, keys.roll(1, dims=0), 0.1)
    # Positive at cosine 1, three negatives at cosine 0.
    assert info_nce(keys, keys.clone(), 0.1).item() == pytest.approx(-math.log(math.exp(10) / (math.exp(10) + 3)))


# --- BYOL and SimSiam ---------------------------------------------------------


def normalized_mse_reference(p, z):
    """Σ_k (p_k/‖p‖ − z_k/‖z‖)², z a constant, averaged over the batch."""
    total = 0.0
    for p_i, z_i in zip(p, z.detach()):
        p_hat, z_hat = unit(p_i), unit(z_i)
        total = total + sum((p_hat[k] - z_hat[k]) ** 2 for k in range(len(p_i)))
    return total / len(p)


def negative_cosine_reference(p, z):
    """−p·z/(‖p‖‖z‖), z a constant, averaged over the batch."""
    return -sum(cosine(p_i, z_i) for p_i, z_i in zip(p, z.detach())) / len(p)


@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize(
    "loss, reference", [(normalized_mse, normalized_mse_reference), (negative_cosine, negative_cosine_reference)]
)
def test_prediction_losses_match_reference_and_stop_the_target_gradient(batch, loss, reference):
    p, z = randn(batch, 5, seed=batch), randn(batch, 5, seed=batch + 1)
    fast = loss(p, z)
    assert_no_gradient(fast, z)
    assert_same_values_and_gradients(fast, reference(p, z), (p,))


def test_normalized_mse_is_two_minus_two_cosine():
    p, z = randn(8, 5, seed=0), randn(8, 5, seed=1)
    torch.testing.assert_close(normalized_mse(p, z), 2 + 2 * negative_cosine(p, z))


# --- Barlow Twins -------------------------------------------------------------


def standardised_columns(z, eps=1e-5):
    n, d = z.shape
    columns = []
    for j in range(d):
        mean = sum(z[b, j] for b in range(n)) / n
        variance = sum((z[b, j] - mean) ** 2 for b in range(n)) / n
        columns.append([(z[b, j] - mean) / torch.sqrt(variance + eps) for b in range(n)])
    return columns  # columns[j][b]


def barlow_twins_reference(z1, z2, weight):
    """C_ij = Σ_b ẑ1_bi ẑ2_bj / N; Σ_i (1 − C_ii)² + λ Σ_{i≠j} C_ij²."""
    n, d = z1.shape
    a, b = standardised_columns(z1), standardised_columns(z2)
    loss = 0.0
    for i in range(d):
        for j in range(d):
            c = sum(a[i][s] * b[j][s] for s in range(n)) / n
            loss = loss + ((1 - c) ** 2 if i == j else weight * c**2)
    return loss


@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("weight", [0.005, 0.25])
def test_barlow_twins_matches_reference(batch, weight):
    z1, z2 = randn(batch, 4, seed=batch, scale=3.0), randn(batch, 4, seed=batch + 1)
    fast = barlow_twins(z1, z2, weight)
    assert_same_values_and_gradients(fast, barlow_twins_reference(z1, z2, weight), (z1, z2))


def test_barlow_twins_is_zero_for_identical_decorrelated_views():
    z = torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]], dtype=torch.float64)
    assert barlow_twins(z, z.clone(), 1.0).item() == pytest.approx(0.0, abs=1e-5)


# --- VICReg -------------------------------------------------------------------


def vicreg_reference(z1, z2, wi, wv, wc, gamma, eps):
    n, d = z1.shape
    invariance = sum((z1[b, j] - z2[b, j]) ** 2 for b in range(n) for j in range(d)) / (n * d)

    def means(z):
        return [sum(z[b, j] for b in range(n)) / n for j in range(d)]

    def covariance(z, i, j, m):
        return sum((z[b, i] - m[i]) * (z[b, j] - m[j]) for b in range(n)) / (n - 1)

    variance, cov = 0.0, 0.0
    for z in (z1, z2):
        m = means(z)
        hinges = [torch.clamp(gamma - torch.sqrt(covariance(z, j, j, m) + eps), min=0) for j in range(d)]
        variance = variance + sum(hinges) / d / 2
        cov = cov + sum(covariance(z, i, j, m) ** 2 for i in range(d) for j in range(d) if i != j) / d
    return wi * invariance + wv * variance + wc * cov


@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("weights", [(25.0, 25.0, 1.0, 1.0), (1.0, 2.0, 3.0, 0.5)])
def test_vicreg_matches_reference(batch, weights):
    wi, wv, wc, gamma = weights
    # Half-scale embeddings put some standard deviations under γ, so the hinge is active.
    z1, z2 = randn(batch, 4, seed=batch, scale=0.5), randn(batch, 4, seed=batch + 1, scale=1.5)
    fast = vicreg(z1, z2, wi, wv, wc, gamma=gamma, eps=1e-4)
    slow = vicreg_reference(z1, z2, wi, wv, wc, gamma, 1e-4)
    assert_same_values_and_gradients(fast, slow, (z1, z2))


@pytest.mark.parametrize("batch", [3, 4])
def test_wide_embeddings_match_references(batch):
    """Batches narrower than the embedding go through n × n Gram matrices: same values, same gradients."""
    z1, z2 = randn(batch, 9, seed=batch, scale=0.5), randn(batch, 9, seed=batch + 1, scale=1.5)
    assert_same_values_and_gradients(barlow_twins(z1, z2, 0.25), barlow_twins_reference(z1, z2, 0.25), (z1, z2))
    fast = vicreg(z1, z2, 25.0, 25.0, 1.0, gamma=1.0, eps=1e-4)
    assert_same_values_and_gradients(fast, vicreg_reference(z1, z2, 25.0, 25.0, 1.0, 1.0, 1e-4), (z1, z2))


def test_gram_path_is_accurate_in_float32_at_training_size():
    """A 2,048-wide expander on 512 rows: the float32 Gram path against the float64 d × d product."""
    z1 = torch.randn(512, 2048, generator=torch.Generator().manual_seed(0)) * 3
    z2 = z1 + torch.randn(512, 2048, generator=torch.Generator().manual_seed(1))

    def direct(z1, z2):
        def standardise(z):
            return (z - z.mean(0)) / torch.sqrt(z.var(0, unbiased=False) + 1e-5)

        c = standardise(z1).T @ standardise(z2) / len(z1)
        barlow = (1 - c.diagonal()).pow(2).sum() + (c.pow(2).sum() - c.diagonal().pow(2).sum()) / 2048
        centred = z1 - z1.mean(0)
        covariance = centred.T @ centred / (len(z1) - 1)
        return barlow, (covariance.pow(2).sum() - covariance.diagonal().pow(2).sum()) / 2048

    for float32, float64 in zip(
        (barlow_twins(z1, z2, 1 / 2048), vicreg(z1, z1, 0.0, 0.0, 0.5)), direct(z1.double(), z2.double())
    ):
        assert float32.dtype == torch.float32
        torch.testing.assert_close(float32.double(), float64, rtol=1e-4, atol=0)


def walsh_columns(n: int, d: int) -> torch.Tensor:
    """(n, d) columns of ±1, each of mean 0 and variance 1, exactly orthogonal to each other."""
    rows = torch.arange(n)[:, None]
    bits = torch.tensor([1 << j for j in range(d)])
    return 1.0 - 2.0 * ((rows & bits) != 0).float()


def test_small_off_diagonal_penalties_keep_their_digits_in_float32():
    """Nearly decorrelated embeddings: a penalty of about 1e-7 is computed, not lost to the
    cancellation of two sums of about d each."""
    rows, width = 4096, 8
    z = walsh_columns(rows, width) + 3e-3 * torch.randn(rows, width, generator=torch.Generator().manual_seed(0))

    def penalties(z):
        n, d = z.shape
        a = (z - z.mean(0)) / torch.sqrt(z.var(0, unbiased=False) + 1e-5)
        c = a.T @ a / n
        barlow = (1 - c.diagonal()).pow(2).sum() + (c - torch.diag(c.diagonal())).pow(2).sum()
        centred = z - z.mean(0)
        covariance = centred.T @ centred / (n - 1)
        return barlow, 2 * (covariance - torch.diag(covariance.diagonal())).pow(2).sum() / d

    barlow64, covariance64 = penalties(z.double())
    assert 1e-8 < covariance64 < 1e-6
    torch.testing.assert_close(barlow_twins(z, z.clone(), 1.0).double(), barlow64, rtol=1e-3, atol=0)
    torch.testing.assert_close(vicreg(z, z, 0.0, 0.0, 1.0).double(), covariance64, rtol=1e-3, atol=0)


# --- DINO ---------------------------------------------------------------------


def dino_reference(students, teachers, center, student_t, teacher_t):
    """Mean over view pairs i ≠ j and samples of −Σ_k P_t(k) log P_s(k)."""
    terms = []
    for i, teacher in enumerate(teachers):
        for j, student in enumerate(students):
            if i == j:
                continue
            total = 0.0
            for t, s in zip(teacher.detach(), student):
                t_exp = [torch.exp((t[k] - center[0, k]) / teacher_t) for k in range(len(t))]
                s_exp = [torch.exp(s[k] / student_t) for k in range(len(s))]
                t_sum, s_sum = sum(t_exp), sum(s_exp)
                total = total - sum(t_exp[k] / t_sum * torch.log(s_exp[k] / s_sum) for k in range(len(s)))
            terms.append(total / len(teacher))
    return sum(terms) / len(terms)


@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("n_students", [2, 4])
def test_dino_matches_reference_with_centering_and_local_views(batch, n_students):
    dim = 6
    students = [randn(batch, dim, seed=batch * 10 + v) for v in range(n_students)]
    teachers = [randn(batch, dim, seed=batch * 10 + 50 + v) for v in range(2)]
    center = randn(1, dim, seed=99).detach()
    fast = dino_cross_entropy(students, teachers, center, 0.1, 0.04)
    slow = dino_reference(students, teachers, center, 0.1, 0.04)
    for teacher in teachers:
        assert_no_gradient(fast, teacher)
    assert_same_values_and_gradients(fast, slow, students)


# --- SwAV ---------------------------------------------------------------------


def sinkhorn_reference(scores, epsilon, iterations):
    """Algorithm 1 of SwAV, entry by entry: Q is K×B, rows to 1/K, columns to 1/B, then Q·B."""
    b, k = scores.shape
    q = [[math.exp(scores[s, p].item() / epsilon) for s in range(b)] for p in range(k)]
    total = sum(map(sum, q))
    q = [[value / total for value in row] for row in q]
    for _ in range(iterations):
        for p in range(k):
            row_sum = sum(q[p])
            q[p] = [value / row_sum / k for value in q[p]]
        for s in range(b):
            column_sum = sum(q[p][s] for p in range(k))
            for p in range(k):
                q[p][s] = q[p][s] / column_sum / b
    return torch.tensor([[q[p][s] * b for p in range(k)] for s in range(b)], dtype=torch.float64)


@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("iterations", [1, 3, 10])
def test_sinkhorn_matches_reference_and_is_a_constant(batch, iterations):
    scores = torch.tanh(randn(batch, 5, seed=batch))  # cosines, as prototype scores are
    codes = sinkhorn(scores, 0.05, iterations)
    assert not codes.requires_grad
    torch.testing.assert_close(codes, sinkhorn_reference(scores, 0.05, iterations))


def swapped_prediction_reference(scores1, scores2, codes1, codes2, temperature):
    def cross_entropy(codes, scores):
        total = 0.0
        for q, z in zip(codes.detach(), scores):
            exps = [torch.exp(z[k] / temperature) for k in range(len(z))]
            total = total - sum(q[k] * torch.log(exps[k] / sum(exps)) for k in range(len(z)))
        return total / len(scores)

    return (cross_entropy(codes1, scores2) + cross_entropy(codes2, scores1)) / 2


@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("temperature", [0.1, 0.5])
def test_swapped_prediction_matches_reference(batch, temperature):
    scores1, scores2 = randn(batch, 5, seed=batch), randn(batch, 5, seed=batch + 1)
    codes1 = torch.softmax(randn(batch, 5, seed=batch + 2), dim=1).detach()
    codes2 = torch.softmax(randn(batch, 5, seed=batch + 3), dim=1).detach()
    fast = swapped_prediction(scores1, scores2, codes1, codes2, temperature)
    slow = swapped_prediction_reference(scores1, scores2, codes1, codes2, temperature)
    assert_same_values_and_gradients(fast, slow, (scores1, scores2))


def test_sinkhorn_keeps_a_prototype_far_from_every_sample_finite_at_a_small_epsilon():
    """At ε = 0.01 a prototype 2 below the best score underflows exp in float32 after one global
    maximum is subtracted; each prototype's own maximum gives the same codes, finite."""
    scores = 0.5 + 0.5 * torch.rand(16, 5, generator=torch.Generator().manual_seed(0))
    scores[:, 4] = -1.0
    codes = sinkhorn(scores, 0.01, 3)
    assert torch.isfinite(codes).all()
    torch.testing.assert_close(codes.double(), sinkhorn_reference(scores.double(), 0.01, 3), rtol=1e-4, atol=1e-6)


# --- Masked losses --------------------------------------------------------------


def test_masked_losses_without_a_hidden_patch_are_zero_with_a_zero_gradient():
    prediction = torch.randn(2, 4, 3, requires_grad=True)
    logits = torch.randn(2, 4, 5, requires_grad=True)
    nothing_hidden = torch.zeros(2, 4, dtype=torch.bool)
    for loss, inputs in (
        (masked_mse(prediction, torch.randn(2, 4, 3), nothing_hidden), prediction),
        (masked_token_cross_entropy(logits, torch.randint(0, 5, (2, 4)), nothing_hidden), logits),
    ):
        assert loss.item() == 0.0
        (gradient,) = torch.autograd.grad(loss, inputs)
        assert torch.equal(gradient, torch.zeros_like(gradient))


def multi_crop_swapped_prediction_reference(scores, codes, temperature):
    """Σ over coded views i of the mean over views v ≠ i of ℓ(z_v, q_i), divided by the coded views."""

    def cross_entropy(q_rows, z_rows):
        total = 0.0
        for q, z in zip(q_rows.detach(), z_rows):
            exps = [torch.exp(z[k] / temperature) for k in range(len(z))]
            total = total - sum(q[k] * torch.log(exps[k] / sum(exps)) for k in range(len(z)))
        return total / len(z_rows)

    total = 0.0
    for i in range(len(codes)):
        others = [v for v in range(len(scores)) if v != i]
        total = total + sum(cross_entropy(codes[i], scores[v]) for v in others) / len(others)
    return total / len(codes)


@pytest.mark.parametrize("batch", [2, 8])
@pytest.mark.parametrize("n_views", [2, 3, 6])
def test_multi_crop_swapped_prediction_matches_reference(batch, n_views):
    """Codes of the two global views, predicted from every other view; two views are SwAV's plain swap."""
    scores = [randn(batch, 5, seed=batch * 10 + v) for v in range(n_views)]
    codes = [torch.softmax(randn(batch, 5, seed=batch * 10 + 50 + v), dim=1).detach() for v in range(2)]
    fast = multi_crop_swapped_prediction(scores, codes, 0.1)
    slow = multi_crop_swapped_prediction_reference(scores, codes, 0.1)
    assert_same_values_and_gradients(fast, slow, scores)
    if n_views == 2:
        assert torch.equal(fast, swapped_prediction(*scores, *codes, 0.1))
