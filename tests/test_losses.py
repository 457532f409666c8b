import math

import pytest
import torch

from selfsup.losses import nt_xent


def nt_xent_reference(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """Eq. (1) of SimCLR, one anchor at a time, summed over all 2N anchors / 2N."""
    views = list(z1) + list(z2)
    n2 = len(views)
    n = n2 // 2

    def sim(a, b):
        return torch.dot(a, b) / (torch.linalg.norm(a) * torch.linalg.norm(b))

    total = 0.0
    for i in range(n2):
        positive = (i + n) % n2
        numerator = torch.exp(sim(views[i], views[positive]) / temperature)
        denominator = sum(torch.exp(sim(views[i], views[k]) / temperature) for k in range(n2) if k != i)
        total = total - torch.log(numerator / denominator)
    return total / n2


@pytest.mark.parametrize("batch", [1, 2, 5, 16])
@pytest.mark.parametrize("temperature", [0.07, 0.5, 1.0])
def test_nt_xent_matches_reference_values_and_gradients(batch, temperature):
    generator = torch.Generator().manual_seed(batch)
    z1 = torch.randn(batch, 8, generator=generator, dtype=torch.float64, requires_grad=True)
    z2 = torch.randn(batch, 8, generator=generator, dtype=torch.float64, requires_grad=True)
    fast = nt_xent(z1, z2, temperature)
    slow = nt_xent_reference(z1, z2, temperature)
    torch.testing.assert_close(fast, slow)
    fast_grads = torch.autograd.grad(fast, (z1, z2))
    slow_grads = torch.autograd.grad(nt_xent_reference(z1, z2, temperature), (z1, z2))
    for fast_grad, slow_grad in zip(fast_grads, slow_grads):
        torch.testing.assert_close(fast_grad, slow_grad)


def test_nt_xent_is_minimal_for_identical_views_far_from_others():
    z = torch.eye(4, dtype=torch.float64)
    aligned = nt_xent(z, z.clone(), 0.1)
    shuffled = nt_xent(z, z.roll(1, dims=0), 0.1)
    assert aligned < shuffled
    # Each anchor: its positive at cosine 1, the six other views at cosine 0.
    expected = -math.log(math.exp(10) / (math.exp(10) + 6))
    assert aligned.item() == pytest.approx(expected)
