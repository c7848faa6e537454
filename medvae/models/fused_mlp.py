"""The MLP VAE's training loss with a hand-written backward pass, for speed on the CPU.

Why: the demo network is tiny (470k parameters), so at batch 64 a step of ordinary autograd spends more
time dispatching ~100 small operators than multiplying matrices. This function computes the negative
ELBO and its gradients (exact in float32) in a handful of matrix products. It is a ``torch.autograd.Function`` that
takes the parameters as inputs and returns their gradients, so autograd, gradient accumulation, hooks
and DistributedDataParallel all behave as usual.

With ``low_precision`` the two big layers (input -> first hidden, last hidden -> output) multiply in
bfloat16, the rest stays float32, as do the weights, gradients and optimizer. The training loop enables
it only on CPUs with native bfloat16 arithmetic (AVX512-BF16 or AMX), where those products run about
twice as fast. ``tests/test_fused_mlp.py`` checks every gradient against autograd.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional as F

_BF16 = torch.bfloat16


def _relu_backward(grad: Tensor, out: Tensor) -> Tensor:
    """Gradient through ``out = relu(pre)``: ``grad`` where ``out > 0``, else 0 (in place, one kernel)."""
    return torch.ops.aten.threshold_backward.grad_input(grad, out, 0.0, grad_input=grad)


class FusedMLPVAELoss(torch.autograd.Function):
    """Negative ELBO (Bernoulli reconstruction + closed-form KL) of an MLP VAE, summed over the batch / B.

    Inputs: ``x`` (B, D) in [0, 1]; ``eps`` (B, L) standard normal noise; ``low_precision``; ``n_enc`` and
    ``n_dec`` (number of encoder and decoder Linear layers); then the parameters in order: encoder (W, b)
    pairs, the mu head (W, b), the log-variance head (W, b), decoder (W, b) pairs.

    Returns ``(loss, recon, kl)``: scalars, batch means; only ``loss`` is differentiable.
    """

    @staticmethod
    def forward(ctx, x: Tensor, eps: Tensor, low_precision: bool, n_enc: int, n_dec: int, *params: Tensor):
        dt = _BF16 if low_precision else x.dtype  # dtype of the two big products
        with torch.autocast("cpu", enabled=False):
            enc = [(params[2 * i], params[2 * i + 1]) for i in range(n_enc)]
            w_mu, b_mu, w_lv, b_lv = params[2 * n_enc : 2 * n_enc + 4]
            dec = [(params[2 * n_enc + 4 + 2 * i], params[2 * n_enc + 5 + 2 * i]) for i in range(n_dec)]
            b = x.shape[0]
            # first encoder layer, in dt; keep x in dt for its weight gradient
            x_lo = x.to(dt)
            h = torch.mm(x_lo, enc[0][0].to(dt).t()).float().add_(enc[0][1]).relu_()
            acts = [h]  # outputs of the encoder layers (the input of the next layer)
            for w, bias in enc[1:]:
                h = torch.addmm(bias, h, w.t()).relu_()
                acts.append(h)
            w_head, b_head = torch.cat([w_mu, w_lv]), torch.cat([b_mu, b_lv])
            head = torch.addmm(b_head, h, w_head.t())  # (B, 2L): mu | logvar
            mu, logvar = head.chunk(2, dim=1)
            std = torch.exp(0.5 * logvar)
            z = torch.addcmul(mu, std, eps)
            g = z
            dec_in = [z]  # inputs of the decoder layers
            for w, bias in dec[:-1]:
                g = torch.addmm(bias, g, w.t()).relu_()
                dec_in.append(g)
            # last decoder layer, in dt; keep its input and weight in dt for the backward pass
            g_lo, w_out_lo = g.to(dt), dec[-1][0].to(dt)
            logits = torch.mm(g_lo, w_out_lo.t()).float().add_(dec[-1][1])  # (B, D)
            recon = F.softplus(logits).sum() - torch.dot(x.reshape(-1), logits.reshape(-1))
            kl = 0.5 * (std.square().sum() + mu.square().sum() - logvar.sum()) - 0.5 * mu.numel()
            loss = (recon + kl) / b
            recon, kl = recon / b, kl / b
        ctx.save_for_backward(x, x_lo, *acts, w_head, mu, std, eps, *dec_in, g_lo, w_out_lo, logits, *params)
        ctx.n = (n_enc, n_dec, b)
        ctx.mark_non_differentiable(recon, kl)
        return loss, recon, kl

    @staticmethod
    def backward(ctx, grad_loss: Tensor, _g_recon=None, _g_kl=None):
        n_enc, n_dec, b = ctx.n
        saved = ctx.saved_tensors
        x, x_lo = saved[:2]
        acts = saved[2 : 2 + n_enc]
        w_head, mu, std, eps = saved[2 + n_enc : 6 + n_enc]
        dec_in = saved[6 + n_enc : 6 + n_enc + n_dec]
        g_lo, w_out_lo, logits = saved[6 + n_enc + n_dec : 9 + n_enc + n_dec]
        params = saved[9 + n_enc + n_dec :]
        dec0 = 2 * n_enc + 4  # index of the first decoder weight in params
        c = grad_loss / b
        grads: list[Tensor | None] = [None] * len(params)
        with torch.autocast("cpu", enabled=False):
            # last decoder layer: d loss / d logits = (sigmoid(logits) - x) / B, products in the forward's dtype
            d = torch.sigmoid(logits).sub_(x).mul_(c)
            d_lo = d.to(g_lo.dtype)
            grads[dec0 + 2 * (n_dec - 1)] = d_lo.t().mm(g_lo).float()
            grads[dec0 + 2 * (n_dec - 1) + 1] = d.sum(0)
            d = d_lo.mm(w_out_lo).float()
            for i in reversed(range(n_dec - 1)):
                d = _relu_backward(d, dec_in[i + 1])  # through the ReLU that made layer i's output
                grads[dec0 + 2 * i] = d.t().mm(dec_in[i])
                grads[dec0 + 2 * i + 1] = d.sum(0)
                d = d.mm(params[dec0 + 2 * i])
            # d is d loss / d z; the reparametrisation z = mu + std * eps and the KL give the heads' gradient
            d_mu = d + c * mu
            d_logvar = 0.5 * (d * eps * std + c * (std.square() - 1.0))
            d_head = torch.cat([d_mu, d_logvar], dim=1)  # (B, 2L)
            g_head_w = d_head.t().mm(acts[-1])
            g_head_b = d_head.sum(0)
            latent = mu.shape[1]
            grads[2 * n_enc], grads[2 * n_enc + 2] = g_head_w[:latent], g_head_w[latent:]
            grads[2 * n_enc + 1], grads[2 * n_enc + 3] = g_head_b[:latent], g_head_b[latent:]
            d = d_head.mm(w_head)
            for i in reversed(range(1, n_enc)):
                d = _relu_backward(d, acts[i])
                grads[2 * i] = d.t().mm(acts[i - 1])
                grads[2 * i + 1] = d.sum(0)
                d = d.mm(params[2 * i])
            d = _relu_backward(d, acts[0])
            grads[0] = d.to(x_lo.dtype).t().mm(x_lo).float()
            grads[1] = d.sum(0)
        return (None, None, None, None, None, *grads)
