"""Loss terms as pure functions of tensors. Per-sample terms have shape ``(B,)``, in nats."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

_LOG_2PI = math.log(2 * math.pi)


def gaussian_kl_elements(mu_q: Tensor, logvar_q: Tensor, mu_p: Tensor | None = None,
                         logvar_p: Tensor | None = None) -> Tensor:
    """KL(q || p) between diagonal Gaussians in closed form, per latent element: the shape of ``mu_q``, nats.

    ``p`` defaults to N(0, I), where the KL is ``0.5 * (sigma^2 + mu^2 - 1 - log sigma^2)``; otherwise
    ``0.5 * (logvar_p - logvar_q + (sigma_q^2 + (mu_q - mu_p)^2) / sigma_p^2 - 1)``.

    Args:
        mu_q, logvar_q: the posterior's means and log-variances ``(B, *latent)`` (a vector or a spatial latent).
        mu_p, logvar_p: the prior's, same shape (None: the standard normal).
    """
    if mu_p is None:
        return 0.5 * (logvar_q.exp() + mu_q.square() - 1.0 - logvar_q)
    return 0.5 * (logvar_p - logvar_q + (logvar_q.exp() + (mu_q - mu_p) ** 2) / logvar_p.exp() - 1)


def gaussian_kl(mu_q: Tensor, logvar_q: Tensor, mu_p: Tensor | None = None, logvar_p: Tensor | None = None) -> Tensor:
    """KL(q || p) between diagonal Gaussians (:func:`gaussian_kl_elements`), summed over all but the batch axis:
    ``(B,)`` nats."""
    return gaussian_kl_elements(mu_q, logvar_q, mu_p, logvar_p).flatten(1).sum(1)


def bernoulli_nll(logits: Tensor, target: Tensor) -> Tensor:
    """Binary cross-entropy summed over every non-batch dimension, per sample.

    Takes the decoder's logits rather than probabilities: ``BCE(sigmoid(l), x)`` computed stably
    (``log(1 + e^l) - x*l``), identical in value and without the log(0) clamp of ``F.binary_cross_entropy``.

    Args:
        logits: decoder outputs before the sigmoid ``(B, *shape)``.
        target: intensities in [0, 1], same shape.

    Returns:
        ``(B,)`` negative log-likelihood in nats.
    """
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    return bce.flatten(1).sum(dim=1)


def log_normal(x: Tensor, mu: Tensor, logvar: Tensor) -> Tensor:
    """Log-density of a diagonal Gaussian, summed over the last dimension."""
    return -0.5 * torch.sum(_LOG_2PI + logvar + (x - mu).square() * torch.exp(-logvar), dim=-1)


def log_standard_normal(x: Tensor) -> Tensor:
    """Log-density of N(0, I), summed over the last dimension."""
    return -0.5 * torch.sum(_LOG_2PI + x.square(), dim=-1)


def gaussian_pixel_nll(mean: Tensor, logvar: Tensor | float, target: Tensor) -> Tensor:
    """Per-pixel Gaussian negative log-likelihood ``0.5 * (log 2 pi + logvar + (x - mean)^2 / e^logvar)``, in nats,
    the shape of ``target`` (``logvar``: per pixel, a decoder's learned log-variance, or one number)."""
    logvar = torch.as_tensor(logvar, dtype=mean.dtype, device=mean.device)
    return 0.5 * (_LOG_2PI + logvar + (target - mean).square() * torch.exp(-logvar))


def gaussian_nll(mean: Tensor, target: Tensor, sigma: float) -> Tensor:
    """Gaussian negative log-likelihood with a fixed standard deviation, summed per sample.

    ``sum((x - mean)^2) / (2 sigma^2) + n log(sigma sqrt(2 pi))``: a scaled MSE, in nats.

    Args:
        mean: decoder means ``(B, *shape)``.
        target: images, same shape.
        sigma: the likelihood's standard deviation (in image units; images are in [0, 1]).

    Returns:
        ``(B,)`` negative log-likelihood in nats.
    """
    n = target[0].numel()
    sq = (mean - target).square().flatten(1).sum(dim=1)
    return sq / (2 * sigma**2) + n * (math.log(sigma) + 0.5 * _LOG_2PI)


def kl_weight(beta: float, epoch: int, warmup_epochs: int) -> float:
    """The KL term's weight in epoch ``epoch`` (0-based): ``beta``, ramped linearly over ``warmup_epochs``."""
    if warmup_epochs <= 0:
        return beta
    return beta * min(1.0, (epoch + 1) / warmup_epochs)


def feature_matching(real_features: list[Tensor], fake_features: list[Tensor]) -> Tensor:
    """Mean absolute difference between a discriminator's intermediate features on real and fake images
    (Larsen et al. 2016's learned similarity), averaged over layers; a scalar."""
    terms = [F.l1_loss(fake, real.detach()) for real, fake in zip(real_features, fake_features)]
    return torch.stack(terms).mean()
