"""PyTorch users differentiate through the functions: autograd of ours equals autograd of
torch's own (at 0, at -inf logits, at saturated ones), and a tensor that requires grad passes
through without a warning."""

from __future__ import annotations

import warnings

import pytest

from softmax_xp import cross_entropy, log_softmax, logsumexp, sigmoid, softmax

torch = pytest.importorskip("torch")

INF = float("inf")
POINTS = [[0.0, -INF, 1.0], [2.0, 2.0, 2.0], [1e4, 0.0, -1e4], [-0.5, 0.0, 0.5]]
PAIRS = [
    (softmax, lambda x: torch.softmax(x, -1)),
    (log_softmax, lambda x: torch.log_softmax(x, -1)),
    (logsumexp, lambda x: torch.logsumexp(x, -1)),
    (sigmoid, torch.sigmoid),
]


@pytest.mark.parametrize(("ours", "theirs"), PAIRS, ids=[p[0].__name__ for p in PAIRS])
def test_autograd_matches_torch(ours, theirs):
    x0 = torch.tensor(POINTS, dtype=torch.float64)
    weights = torch.linspace(-1.0, 2.0, theirs(x0).numel(), dtype=torch.float64)
    grads = []
    for f in (ours, theirs):
        x = x0.clone().requires_grad_(True)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            (f(x).reshape(-1) * weights).sum().backward()
        grads.append(x.grad)
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-12, atol=1e-12)


def test_cross_entropy_gradient_matches_torch():
    z0 = torch.randn(6, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    y = torch.tensor([0, 1, 2, 3, 0, 1])
    z, z_ref = z0.clone().requires_grad_(True), z0.clone().requires_grad_(True)
    cross_entropy(z, y).backward()
    torch.nn.functional.cross_entropy(z_ref, y).backward()
    torch.testing.assert_close(z.grad, z_ref.grad, rtol=1e-12, atol=1e-12)
