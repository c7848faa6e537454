"""What every VAE in medvae shares: the reparametrisation, the ELBO, and the model protocol.

A medvae model is an ``nn.Module`` with a class attribute ``kind`` (its registry name), a dataclass
``config`` that rebuilds it, and a ``loss(batch)`` method returning :class:`LossOutput`: that is all
the training loop (:mod:`medvae.train`) and the model file (:mod:`medvae.checkpoint`) need.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import ClassVar

import torch
from torch import Tensor, nn

from medvae.losses import bernoulli_nll, gaussian_kl

_SHARE = (0, 1)  # (rank, world size): this process trains rows rank, rank + world size, ... of each batch


@contextmanager
def global_batch(rank: int, world_size: int) -> Iterator[None]:
    """Within it, :func:`standard_normal` draws the noise of the whole global batch and keeps this process's
    rows (``rank``, ``rank + world_size``, ...): with every rank seeded alike and batches dealt out that way (as
    medvae's training loop does under ``torchrun``), each sample gets the noise one process training the
    global batch would give it, so a 2-process run follows the 1-process run with the doubled batch."""
    global _SHARE
    saved, _SHARE = _SHARE, (rank, world_size)
    try:
        yield
    finally:
        _SHARE = saved


def global_sum(t: Tensor) -> Tensor:
    """``t`` summed over the processes that share the global batch (inside :func:`global_batch` under
    ``torchrun``; gradients flow back to every process's share), for a loss that pools its batch, such as a
    batch Dice; ``t`` itself in one process."""
    import torch.distributed as dist

    if _SHARE[1] == 1 or not dist.is_initialized():
        return t
    from torch.distributed.nn.functional import all_reduce

    return all_reduce(t)


def standard_normal(shape: tuple[int, ...], *, dtype: torch.dtype | None = None, device=None) -> Tensor:
    """``N(0, I)`` noise of ``shape`` (batch first) from torch's global generator; inside :func:`global_batch`,
    this process's rows of the global batch's draw."""
    rank, world_size = _SHARE
    if world_size == 1:
        return torch.randn(shape, dtype=dtype, device=device)
    return torch.randn((shape[0] * world_size, *shape[1:]), dtype=dtype, device=device)[rank::world_size]


def standard_normal_like(t: Tensor) -> Tensor:
    """:func:`standard_normal` shaped like ``t``."""
    return standard_normal(tuple(t.shape), dtype=t.dtype, device=t.device)


def reparameterize(mu: Tensor, logvar: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """``z = mu + sigma * eps`` with ``eps ~ N(0, I)``: a sample that gradients flow through (any shape);
    ``eps`` from ``generator`` where one is given (repeatable draws), else :func:`standard_normal_like`."""
    if generator is None:
        return mu + torch.exp(0.5 * logvar) * standard_normal_like(mu)
    eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
    return mu + torch.exp(0.5 * logvar) * eps

@dataclass
class LossOutput:
    """A training loss and its terms.

    Attributes:
        loss: scalar to minimise (mean over the batch).
        terms: named scalars for logging (batch means, detached).
    """

    loss: Tensor
    terms: dict[str, Tensor] = field(default_factory=dict)


@dataclass
class VAEOutput:
    """One pass through a VAE.

    Attributes:
        logits: decoder output before the likelihood's link, ``(B, C, *spatial)``.
        mu: posterior means ``(B, L)``.
        logvar: posterior log-variances ``(B, L)``.
        z: the latent sample decoded, ``(B, L)``.
    """

    logits: Tensor
    mu: Tensor
    logvar: Tensor
    z: Tensor


class VAE(nn.Module):
    """Base class: subclasses implement ``encode`` and ``decode``; the rest follows.

    The likelihood is Bernoulli on intensities in [0, 1] (the MNIST demo's binary cross-entropy).
    """

    kind: ClassVar[str] = ""
    latent_dim: int

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(B, C, *spatial)`` images -> posterior ``(mu, logvar)``, each ``(B, L)``."""
        raise NotImplementedError

    def decode(self, z: Tensor) -> Tensor:
        """``(B, L)`` latents -> ``(B, C, *spatial)`` logits."""
        raise NotImplementedError

    reparameterize = staticmethod(reparameterize)  # the module function, as a method of every VAE

    def forward(self, x: Tensor) -> VAEOutput:
        mu, logvar = self.encode(x)
        z = self.reparameterize(mu, logvar)
        return VAEOutput(self.decode(z), mu, logvar, z)

    def mean_image(self, logits: Tensor) -> Tensor:
        """The decoder distribution's mean, ``sigmoid(logits)``."""
        return torch.sigmoid(logits)

    def pixel_nll(self, logits: Tensor, x: Tensor) -> Tensor:
        """Per-pixel reconstruction NLL ``(B, C, *spatial)`` (Bernoulli), in nats; summed, ``recon_nll``."""
        return torch.nn.functional.binary_cross_entropy_with_logits(logits, x, reduction="none")

    def recon_nll(self, logits: Tensor, x: Tensor) -> Tensor:
        """Per-sample reconstruction NLL ``(B,)``."""
        return bernoulli_nll(logits, x)

    def elbo_terms(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Per-sample reconstruction NLL and KL, each ``(B,)``, from one posterior sample."""
        out = self(x)
        return bernoulli_nll(out.logits, x), gaussian_kl(out.mu, out.logvar)

    def loss(self, batch: dict[str, Tensor]) -> LossOutput:
        """Negative ELBO per image, averaged over the batch: BCE summed over pixels + closed-form KL."""
        recon, kl = self.elbo_terms(batch["image"])
        recon, kl = recon.mean(), kl.mean()
        return LossOutput(recon + kl, {"recon": recon.detach(), "kl": kl.detach()})

    @torch.no_grad()
    def generate(self, z: Tensor) -> Tensor:
        """Decode latents to mean images ``(B, C, *spatial)`` in [0, 1]."""
        return self.mean_image(self.decode(z))
