"""Self-supervised losses as pure functions of embeddings.

In a distributed run (``selfsup.distributed``) the batch-level losses see the
global batch: negatives (NT-Xent, in-batch InfoNCE) and batch statistics
(Barlow Twins, VICReg) are taken over every rank's rows, gathered with
gradients. Per-anchor losses average over this rank's anchors; DDP's gradient
average then equals the gradient of one process on the whole batch. Outside a
process group the gather is the identity.

Every loss runs in float32 (or float64), also inside a bf16 autocast region: the networks may
compute in bf16, but sums of squares, covariances and log-sum-exps over a batch
lose too much with 8 bits of mantissa.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from selfsup.distributed import gather, local_rows


def _float32(value):
    if isinstance(value, torch.Tensor):
        return value.float() if value.dtype in (torch.bfloat16, torch.float16) else value
    if isinstance(value, (list, tuple)):
        return type(value)(_float32(v) for v in value)
    return value


def _device_type(values) -> str:
    for value in values:
        if isinstance(value, torch.Tensor):
            return value.device.type
        if isinstance(value, (list, tuple)) and value:
            return _device_type(value)
    return "cpu"


def in_float32(loss):
    """``loss`` with autocast off and its half-precision tensor arguments in float32."""

    @functools.wraps(loss)
    def wrapper(*args, **kwargs):
        with torch.autocast(_device_type([*args, *kwargs.values()]), enabled=False):
            return loss(*_float32(args), **{k: _float32(v) for k, v in kwargs.items()})

    return wrapper


@in_float32
def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """NT-Xent of SimCLR (Chen et al., 2020), averaged over all 2N anchors.

    For anchor i among the 2N views, the positive is the other view of the same
    image and the denominator runs over the 2N − 1 other views, with cosine
    similarity divided by ``temperature``. Distributed: this rank's anchors
    against the views of the global batch.
    """
    z1, z2 = F.normalize(z1, dim=1), F.normalize(z2, dim=1)
    n = len(z1)
    candidates = torch.cat([gather(z1), gather(z2)])
    n_global = len(candidates) // 2
    own = local_rows(n, z1.device)
    own = torch.cat([own, own + n_global])  # each anchor's own column
    positives = torch.cat([own[n:], own[:n]])
    logits = torch.cat([z1, z2]) @ candidates.T / temperature
    # each anchor's own column set in place: a (2N × 2N) one-hot mask cost a fifth of the loss at N = 1,024
    anchors = torch.arange(len(own), device=own.device)
    logits.index_put_((anchors, own), logits.new_tensor(float("-inf")))
    return F.cross_entropy(logits, positives)


@in_float32
def info_nce(
    query: torch.Tensor, key: torch.Tensor, temperature: float, negatives: torch.Tensor | None = None
) -> torch.Tensor:
    """InfoNCE of MoCo (He et al., 2020; Chen et al., 2021), averaged over the queries.

    Query i's positive is key i. Its negatives are the rows of ``negatives`` (MoCo v2's
    queue) when given, else the other keys of the batch (MoCo v3; distributed: of
    the global batch). Similarities are cosines divided by ``temperature``.
    """
    q = F.normalize(query, dim=1)
    k = F.normalize(key, dim=1)
    if negatives is None:
        logits = q @ gather(k).T
        targets = local_rows(len(q), q.device)
    else:
        positives = (q * k).sum(dim=1, keepdim=True)
        logits = torch.cat([positives, q @ F.normalize(negatives, dim=1).T], dim=1)
        targets = torch.zeros(len(q), dtype=torch.long, device=q.device)
    return F.cross_entropy(logits / temperature, targets)


@in_float32
def normalized_mse(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """BYOL's loss (Grill et al., 2020): mean ‖p/‖p‖ − z/‖z‖‖² = 2 − 2 cos(p, z); z is constant."""
    difference = F.normalize(prediction, dim=1) - F.normalize(target.detach(), dim=1)
    return difference.pow(2).sum(dim=1).mean()


@in_float32
def negative_cosine(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """SimSiam's D(p, stopgrad(z)) (Chen & He, 2021): −cos(p, z) averaged, no gradient into z."""
    return -(F.normalize(prediction, dim=1) * F.normalize(target.detach(), dim=1)).sum(dim=1).mean()


@in_float32
def barlow_twins(z1: torch.Tensor, z2: torch.Tensor, off_diagonal_weight: float) -> torch.Tensor:
    """Barlow Twins (Zbontar et al., 2021): Σ_i (1 − c_ii)² + λ Σ_{i≠j} c_ij².

    ``c`` is the cross-correlation matrix of the two views' embeddings, each
    standardised over the (global) batch; λ is ``off_diagonal_weight``.
    """
    z1, z2 = gather(z1), gather(z2)
    n = z1.shape[0]
    a, b = _standardise(z1), _standardise(z2)
    c_diagonal = (a * b).sum(dim=0) / n
    off_diagonal = _off_diagonal_squared_sum(a, b) / n**2
    return (1 - c_diagonal).pow(2).sum() + off_diagonal_weight * off_diagonal


def _standardise(z: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    # BatchNorm without affine parameters, as in the paper's code: biased variance, eps 1e-5.
    return (z - z.mean(dim=0)) / torch.sqrt(z.var(dim=0, unbiased=False) + eps)


@in_float32
def vicreg(
    z1: torch.Tensor,
    z2: torch.Tensor,
    invariance_weight: float = 25.0,
    variance_weight: float = 25.0,
    covariance_weight: float = 1.0,
    gamma: float = 1.0,
    eps: float = 1e-4,
) -> torch.Tensor:
    """VICReg (Bardes et al., 2022): invariance, variance and covariance terms, weighted.

    Invariance: mean squared distance between the views. Variance, per view: the mean
    hinge max(0, γ − sqrt(Var z_j + ε)) over dimensions, averaged over the two views.
    Covariance, per view: the sum of squared off-diagonal covariances / d, summed over views.
    All three over the (global) batch.
    """
    z1, z2 = gather(z1), gather(z2)
    invariance = F.mse_loss(z1, z2)
    variance = (_variance_hinge(z1, gamma, eps) + _variance_hinge(z2, gamma, eps)) / 2
    covariance = _covariance_penalty(z1) + _covariance_penalty(z2)
    return invariance_weight * invariance + variance_weight * variance + covariance_weight * covariance


def _variance_hinge(z: torch.Tensor, gamma: float, eps: float) -> torch.Tensor:
    return F.relu(gamma - torch.sqrt(z.var(dim=0) + eps)).mean()


def _covariance_penalty(z: torch.Tensor) -> torch.Tensor:
    n, d = z.shape
    centred = z - z.mean(dim=0)
    return _off_diagonal_squared_sum(centred, centred) / (n - 1) ** 2 / d


def _off_diagonal_squared_sum(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Σ_{i≠j} (aᵀb)_ij² for (n, d) ``a`` and ``b``, without the d × d product when the batch is narrow.

    Wide batch: the d × d product with its diagonal zeroed before squaring, so that a small
    penalty is not the difference of two large sums (in float32 a true 2.3e-7 came out -9.5e-7).
    Narrow batch: ‖aᵀb‖²_F = Σ (a aᵀ) ∘ (b bᵀ) costs n²d multiply-adds per n × n Gram matrix
    against nd² for aᵀb (4× fewer for a 2,048-wide embedding on 512 rows), minus the diagonal.
    That difference does not cancel: aᵀb has rank n < d, so with unit columns the off-diagonal
    part is at least d²/n - d, the same order as the total.
    """
    n, d = a.shape
    if (n < d) if a is b else (2 * n < d):
        gram_a = a @ a.T
        total = (gram_a * (gram_a if a is b else b @ b.T)).sum()
        return total - (a * b).sum(dim=0).pow(2).sum()
    product = a.T @ b
    return product.pow(2).masked_fill(torch.eye(d, dtype=torch.bool, device=a.device), 0.0).sum()


@in_float32
def dino_cross_entropy(
    student_logits: Sequence[torch.Tensor],
    teacher_logits: Sequence[torch.Tensor],
    center: torch.Tensor,
    student_temperature: float,
    teacher_temperature: float,
) -> torch.Tensor:
    """DINO's loss (Caron et al., 2021), averaged over every pair of different views.

    For each pair, the cross-entropy −Σ_k P_t(k) log P_s(k) between the teacher's
    centred, sharpened distribution softmax((t − center)/τ_t), a constant, and the
    student's softmax(s/τ_s). ``teacher_logits[i]`` and ``student_logits[i]`` come from
    the same view; student views beyond the teacher's (local crops) pair with every teacher view.
    """
    targets = [F.softmax((t.detach() - center) / teacher_temperature, dim=1) for t in teacher_logits]
    log_probabilities = [F.log_softmax(s / student_temperature, dim=1) for s in student_logits]
    terms = [
        -(target * log_p).sum(dim=1).mean()
        for i, target in enumerate(targets)
        for j, log_p in enumerate(log_probabilities)
        if i != j
    ]
    return torch.stack(terms).mean()


@torch.no_grad()
@in_float32
def sinkhorn(scores: torch.Tensor, epsilon: float = 0.05, iterations: int = 3) -> torch.Tensor:
    """SwAV's codes (Caron et al., 2020): Sinkhorn–Knopp on exp(scores / ε), (B, K) → (B, K).

    Alternately normalises prototypes (columns) to B/K samples each and samples
    (rows) to one; after the last iteration each row sums to 1 and each column to about B/K.
    Distributed: the partition is balanced over the global batch; this rank gets its own rows.
    """
    n_local = len(scores)
    scores = gather(scores)
    # Subtracting each prototype's own maximum changes nothing after the first prototype
    # normalisation and keeps exp finite; one global maximum would underflow a far prototype
    # to 0 at a small epsilon, and 0 / 0 makes the codes NaN.
    q = torch.exp((scores - scores.max(dim=0, keepdim=True).values) / epsilon).T
    q /= q.sum()
    k, b = q.shape
    for _ in range(iterations):
        q /= q.sum(dim=1, keepdim=True) * k
        q /= q.sum(dim=0, keepdim=True) * b
    return (q * b).T[local_rows(n_local, scores.device)]


@in_float32
def swapped_prediction(
    scores1: torch.Tensor, scores2: torch.Tensor, codes1: torch.Tensor, codes2: torch.Tensor, temperature: float
) -> torch.Tensor:
    """SwAV's swapped prediction: each view's codes are the (constant) target of the other view's scores.

    ℓ(z_t, q_s) = −Σ_k q_s(k) log softmax(z_t·c / τ)(k), averaged over the batch and the two swaps.
    """
    return multi_crop_swapped_prediction([scores1, scores2], [codes1, codes2], temperature)


@in_float32
def multi_crop_swapped_prediction(
    scores: Sequence[torch.Tensor], codes: Sequence[torch.Tensor], temperature: float
) -> torch.Tensor:
    """SwAV's swapped prediction over multi-crop views (Caron et al., 2020).

    ``codes[i]`` are the codes of view i (the global views come first; local views get none);
    each is the (constant) target of the scores of every other view, ℓ averaged over those
    views, then over the coded views.
    """

    def cross_entropy(target: torch.Tensor, view_scores: torch.Tensor) -> torch.Tensor:
        return -(target.detach() * F.log_softmax(view_scores / temperature, dim=1)).sum(dim=1).mean()

    per_code = [
        sum(cross_entropy(target, s) for v, s in enumerate(scores) if v != i) / (len(scores) - 1)
        for i, target in enumerate(codes)
    ]
    return sum(per_code) / len(codes)


@in_float32
def masked_mse(prediction: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """MAE's loss (He et al., 2022): squared error per patch, averaged over the hidden patches only.

    ``prediction`` and ``target`` are (B, N, D) patches, ``mask`` bool (B, N), True where hidden.
    """
    per_patch = (prediction - target).pow(2).mean(dim=-1)
    weights = mask.to(per_patch.dtype)
    return (per_patch * weights).sum() / weights.sum().clamp(min=1.0)  # no hidden patch: 0, not 0 / 0


@in_float32
def masked_token_cross_entropy(logits: torch.Tensor, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """BEiT's loss (Bao et al., 2022): cross-entropy of the visual tokens of the hidden patches only.

    ``logits`` (B, N, K), ``tokens`` long (B, N), ``mask`` bool (B, N), True where hidden.
    """
    if not mask.any():  # no hidden patch: 0 with a zero gradient, not the mean of nothing
        return logits.sum() * 0.0
    return F.cross_entropy(logits[mask], tokens[mask])
