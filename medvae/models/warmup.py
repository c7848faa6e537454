"""The warm-up ramp every model uses to bring a loss term in gradually.

:func:`warmup` is the one linear ramp: the KL weight of :class:`~medvae.models.conv_vae.ConvVAE`
(``beta * warmup(epoch + 1, kl_warmup_epochs)``: already ``beta / N`` in epoch 0) and the adversarial
weight of :class:`~medvae.models.vae_gan.VAEGAN` and :class:`~medvae.models.synthesis.SynthesisModel`
(``warmup(epoch, adv_warmup_epochs)``: off in epoch 0) are both read from it, epochs counted from 0.
"""

from __future__ import annotations


def warmup(epoch: float, epochs: float) -> float:
    """``min(1, epoch / epochs)``: a linear ramp from 0 to 1 over ``epochs``; 1.0 throughout when ``epochs`` <= 0."""
    return 1.0 if epochs <= 0 else min(1.0, epoch / epochs)
