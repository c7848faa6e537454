"""Anomaly scores: the Monte-Carlo estimates against a linear-Gaussian model's closed forms, "higher = more
anomalous" on a planted outlier, and the learned-variance decoder."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from medvae.anomaly.scores import SCORES, anomaly_scores, score_images
from medvae.errors import UsageError
from medvae.losses import gaussian_pixel_nll
from medvae.models import ConvVAE, ConvVAEConfig, VAEGANConfig


class LinearGaussian(nn.Module):
    """x = W z + b + noise(sigma^2 I), z ~ N(0, I), with W's columns orthogonal, so the exact posterior is diagonal
    and ``encode`` returns it."""

    def __init__(self, d: int = 12, k: int = 3, sigma: float = 0.3) -> None:
        super().__init__()
        torch.manual_seed(0)
        q, _ = torch.linalg.qr(torch.randn(d, k, dtype=torch.float64))
        self.W = q * torch.tensor([2.0, 1.0, 0.5], dtype=torch.float64)[:k]
        self.b = torch.randn(d, dtype=torch.float64) * 0.1
        self.sigma, self.d, self.k = sigma, d, k
        self.dummy = nn.Parameter(torch.zeros(1, dtype=torch.float64))

    def encode(self, x):
        s2 = (self.W ** 2).sum(0)  # the squared column norms: W^T W is diagonal
        var = 1 / (1 + s2 / self.sigma ** 2)
        mu = (x.flatten(1) - self.b) @ self.W * var / self.sigma ** 2
        return mu, torch.log(var).expand_as(mu)

    def decode(self, z):
        return (z @ self.W.T + self.b).view(-1, 1, self.d)

    def mean_image(self, logits):
        return logits

    def pixel_nll(self, logits, x):
        return gaussian_pixel_nll(logits, 2 * math.log(self.sigma), x)

    def log_px(self, x):
        cov = self.W @ self.W.T + self.sigma ** 2 * torch.eye(self.d, dtype=torch.float64)
        return torch.distributions.MultivariateNormal(self.b, cov).log_prob(x.flatten(1))

    def expected_nll(self, x):  # E_q[-log p(x | z)] in closed form
        mu, logvar = self.encode(x)
        resid = x.flatten(1) - mu @ self.W.T - self.b
        trace = (torch.exp(logvar) * (self.W ** 2).sum(0)).sum(1)
        return 0.5 * ((resid ** 2).sum(1) + trace) / self.sigma ** 2 + 0.5 * self.d * math.log(2 * math.pi * self.sigma ** 2)


def test_the_iwae_bound_is_exact_with_the_true_posterior_and_the_mc_elbo_converges_to_its_closed_form():
    model = LinearGaussian()
    x = (torch.randn(5, 3, dtype=torch.float64) @ model.W.T + model.b + 0.3 * torch.randn(5, 12, dtype=torch.float64))
    x = x.view(5, 1, 12)
    out = anomaly_scores(model, x, samples=4000, seed=1)
    exact = -model.log_px(x)
    assert torch.allclose(out.scores["iwae"], exact, atol=1e-6)  # the weights are p(x) for every z
    assert torch.allclose(out.scores["neg_elbo"], exact, rtol=2e-3, atol=0.05)  # KL gap 0: the ELBO is log p(x)
    from medvae.losses import gaussian_kl

    mu, logvar = model.encode(x)
    closed = model.expected_nll(x) + gaussian_kl(mu, logvar)
    assert torch.allclose(out.scores["neg_elbo"], closed, rtol=2e-3, atol=0.05)
    # Jensen: -log E[p(x|z)] <= E[-log p(x|z)]
    assert torch.all(out.scores["recon_prob"] <= model.expected_nll(x) + 1e-6)
    assert out.pixel_map.shape == x.shape
    assert torch.allclose(out.pixel_map.flatten(1).sum(1), model.expected_nll(x), rtol=5e-3, atol=0.1)


def test_each_sample_is_drawn_and_the_seed_repeats_them():
    model = LinearGaussian()
    x = torch.randn(3, 1, 12, dtype=torch.float64)
    a, b = anomaly_scores(model, x, samples=8, seed=3), anomaly_scores(model, x, samples=8, seed=3)
    c = anomaly_scores(model, x, samples=8, seed=4)
    assert all(torch.equal(a.scores[k], b.scores[k]) for k in SCORES)
    assert not torch.equal(a.scores["neg_elbo"], c.scores["neg_elbo"])
    with pytest.raises(UsageError, match="samples"):
        anomaly_scores(model, x, samples=0)


def _blobs(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    grid = torch.stack(torch.meshgrid(torch.arange(16.0), torch.arange(16.0), indexing="ij"))
    centres = 5 + 6 * torch.rand(n, 2, 1, 1, generator=g)
    return torch.exp(-((grid[None] - centres) ** 2).sum(1, keepdim=True) / 8)


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian-learned"])
def test_a_planted_outlier_scores_higher_than_every_normal_image(likelihood):
    from medvae.data.datasets import TensorBatches
    from medvae.train.config import TrainConfig
    from medvae.train.loop import fit

    torch.manual_seed(0)
    model = ConvVAE(ConvVAEConfig(in_shape=(1, 16, 16), channels=(8, 16), strides=(2, 2), latent_dim=4,
                                  likelihood=likelihood))
    fit(model, TensorBatches({"image": _blobs(256, 0)}), None, TrainConfig(epochs=8, batch_size=32, lr=3e-3,
                                                                           progress=False, device="cpu"))
    model.eval()
    normal = _blobs(20, 1)
    outlier = (torch.arange(16)[:, None] + torch.arange(16)[None]) % 2  # a checkerboard
    scores, _ = score_images(model, torch.cat([normal, outlier[None, None].float()]), samples=8)
    for name in SCORES:
        assert scores[name][-1] > scores[name][:-1].max(), name


def test_the_learned_variance_decoder_has_a_mean_and_a_variance_per_pixel():
    model = ConvVAE(ConvVAEConfig(in_shape=(1, 16, 16), channels=(8, 16), strides=(2, 2), latent_dim=4,
                                  likelihood="gaussian-learned"))
    z = torch.randn(2, 4)
    logits = model.decode(z)
    assert logits.shape == (2, 2, 16, 16)
    assert model.generate(z).shape == (2, 1, 16, 16)
    x = torch.rand(2, 1, 16, 16)
    nll = model.pixel_nll(logits, x)
    assert nll.shape == x.shape and torch.isfinite(nll).all()
    assert torch.allclose(model.recon_nll(logits, x), nll.flatten(1).sum(1))
    with pytest.raises(UsageError, match="likelihood must be one of"):
        ConvVAEConfig(likelihood="poisson")
    with pytest.raises(UsageError, match="gaussian-learned is for 'train vae'"):
        VAEGANConfig(likelihood="gaussian-learned")


def test_a_collapsed_posterior_still_gives_finite_scores():
    class Collapsed(LinearGaussian):
        def encode(self, x):  # sigma^2 = e^-300: (z - mu)^2 / sigma^2 would overflow
            return torch.zeros(x.shape[0], self.k, dtype=torch.float64), \
                torch.full((x.shape[0], self.k), -300.0, dtype=torch.float64)

    out = anomaly_scores(Collapsed(), torch.randn(3, 1, 12, dtype=torch.float64), samples=4)
    for name in SCORES:
        assert torch.isfinite(out.scores[name]).all(), name
