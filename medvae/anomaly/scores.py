"""Per-image anomaly scores and per-pixel maps from any medvae VAE, every one "higher = more anomalous".

For images ``x`` and ``L`` latent samples ``z_l ~ q(z | x)`` (seeded; each one decoded):

* ``recon_prob``: An & Cho's reconstruction probability, as a negative log: ``-log (1/L) sum_l p(x | z_l)``
  (computed with logsumexp). With a decoder that learns a per-pixel variance (``--likelihood gaussian-learned``)
  it weighs each pixel's error by how variable the model expects that pixel to be; with a Bernoulli or
  fixed-variance decoder it is, up to scale, an error.
* ``neg_elbo``: ``-(1/L) sum_l log p(x | z_l) + KL(q(z | x) || p(z))`` (KL in closed form).
* ``iwae``: the negative importance-weighted bound (Burda et al.), ``-log (1/L) sum_l p(x | z_l) p(z_l) / q(z_l | x)``.
* ``recon_error``: the squared error of the decoded posterior mean, ``sum (x - E[x | z = mu])^2``.
* the map: the per-pixel ``-log p(x | z)`` averaged over the ``L`` samples, ``(B, C, *spatial)``.

Scores are in nats per image (``recon_error`` in squared intensity units), comparable between images of one size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from medvae.errors import check_positive
from medvae.losses import gaussian_kl, log_standard_normal

#: the scores, in the order reports list them
SCORES = ("recon_prob", "neg_elbo", "iwae", "recon_error")


@dataclass
class AnomalyScores:
    """Scores ``{name: (B,)}`` (see :data:`SCORES`) and the per-pixel map ``(B, C, *spatial)`` of a batch."""

    scores: dict[str, Tensor]
    pixel_map: Tensor


@torch.no_grad()
def anomaly_scores(model, x: Tensor, samples: int = 16, seed: int = 0) -> AnomalyScores:
    """Score images ``x`` ``(B, C, *spatial)`` in [0, 1] with a VAE (``encode``, ``decode``, ``pixel_nll``,
    ``mean_image``), drawing ``samples`` latents per image from a generator seeded with ``seed``.

    Raises:
        UsageError: ``samples`` is not a positive integer.
    """
    check_positive("samples", samples)
    generator = torch.Generator(device=x.device).manual_seed(int(seed))
    mu, logvar = model.encode(x)
    std = torch.exp(0.5 * logvar)
    log_px, log_w = [], []
    pixel = torch.zeros_like(x)
    for _ in range(samples):
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        z = mu + std * eps
        nll = model.pixel_nll(model.decode(z), x)  # (B, C, *spatial)
        pixel += nll
        log_p = -nll.flatten(1).sum(1)
        log_px.append(log_p)
        # log q(z | x) from eps itself: (z - mu)^2 / sigma^2 is eps^2, which stays finite where a collapsed
        # posterior's sigma^2 underflows
        log_q = -0.5 * (math.log(2 * math.pi) + logvar + eps.square()).sum(-1)
        log_w.append(log_p + log_standard_normal(z) - log_q)
    log_px, log_w = torch.stack(log_px), torch.stack(log_w)  # (L, B)
    log_l = math.log(samples)
    mean_image = model.mean_image(model.decode(mu))
    scores = {
        "recon_prob": -(torch.logsumexp(log_px, 0) - log_l),
        "neg_elbo": -log_px.mean(0) + gaussian_kl(mu, logvar),
        "iwae": -(torch.logsumexp(log_w, 0) - log_l),
        "recon_error": (x - mean_image).square().flatten(1).sum(1),
    }
    return AnomalyScores(scores, pixel / samples)


def score_images(model, images: Tensor, samples: int = 16, seed: int = 0, batch_size: int = 64,
                 maps: bool = False, progress: bool = False) -> tuple[dict[str, Tensor], Tensor | None]:
    """:func:`anomaly_scores` over ``images`` ``(N, C, *spatial)`` in batches; ``(scores {name: (N,)}, maps or
    None)``. Batch ``k`` draws with seed ``seed + k``: the same images, seed and batch size give the same scores."""
    device = next(model.parameters()).device
    parts: dict[str, list[Tensor]] = {name: [] for name in SCORES}
    map_parts = []
    starts = range(0, len(images), batch_size)
    if progress and len(starts) > 1:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc="scoring", unit="batch", leave=False)
    for k, start in enumerate(starts):
        out = anomaly_scores(model, images[start:start + batch_size].to(device), samples, seed + k)
        for name in SCORES:
            parts[name].append(out.scores[name].cpu())
        if maps:
            map_parts.append(out.pixel_map.cpu())
    return {name: torch.cat(v) for name, v in parts.items()}, torch.cat(map_parts) if maps else None
