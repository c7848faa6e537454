import math

import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Normal, kl_divergence

from medvae.losses import bernoulli_nll, gaussian_kl, log_normal, log_standard_normal


@pytest.mark.parametrize("latent_dim", [1, 2, 16])
def test_closed_form_kl_matches_monte_carlo(latent_dim):
    g = torch.Generator().manual_seed(latent_dim)
    mu = torch.randn(4, latent_dim, generator=g)
    logvar = torch.randn(4, latent_dim, generator=g) * 0.5
    std = torch.exp(0.5 * logvar)
    z = mu + std * torch.randn(200_000, 4, latent_dim, generator=g)  # samples from q
    mc = (log_normal(z, mu, logvar) - log_standard_normal(z)).mean(0)  # E_q[log q - log p]
    closed = gaussian_kl(mu, logvar)
    assert closed.shape == (4,)
    torch.testing.assert_close(closed, mc, atol=0.03 * latent_dim, rtol=0.02)


def test_kl_matches_torch_distributions_and_is_zero_at_prior():
    mu, logvar = torch.randn(5, 3), torch.randn(5, 3)
    ref = kl_divergence(Normal(mu, torch.exp(0.5 * logvar)), Normal(0.0, 1.0)).sum(1)
    torch.testing.assert_close(gaussian_kl(mu, logvar), ref)
    assert torch.all(gaussian_kl(torch.zeros(2, 4), torch.zeros(2, 4)) == 0)


def test_bernoulli_nll_is_bce_of_sigmoid_summed_over_pixels():
    logits, x = torch.randn(3, 1, 5, 5), torch.rand(3, 1, 5, 5)
    ref = torch.stack([F.binary_cross_entropy(torch.sigmoid(logits[i]), x[i], reduction="sum") for i in range(3)])
    torch.testing.assert_close(bernoulli_nll(logits, x), ref, rtol=1e-5, atol=1e-4)


def test_log_normal_matches_torch_distributions():
    x, mu, logvar = torch.randn(6, 2), torch.randn(6, 2), torch.randn(6, 2)
    ref = Normal(mu, torch.exp(0.5 * logvar)).log_prob(x).sum(-1)
    torch.testing.assert_close(log_normal(x, mu, logvar), ref)
    torch.testing.assert_close(log_standard_normal(x), Normal(0.0, 1.0).log_prob(x).sum(-1))
    assert math.isclose(log_standard_normal(torch.zeros(1, 1)).item(), -0.5 * math.log(2 * math.pi), rel_tol=1e-6)
