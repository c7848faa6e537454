"""The optimiser every medvae model trains with: Adam (fused where torch has it) over one flat buffer of
parameters, so a small model's step is one kernel on one tensor."""

from __future__ import annotations

import torch
from torch import nn


def flatten_parameters(model: nn.Module) -> list[nn.Parameter]:
    """Move every trainable parameter, and its gradient, into one contiguous buffer.

    Each parameter becomes a view into a flat ``master`` parameter and each ``.grad`` a view into the
    master's gradient, so the optimizer updates the whole model with one kernel on one tensor (a small
    model's step is otherwise dominated by per-tensor overhead). Autograd accumulates into the views in
    place. Returns ``[master]`` for the optimizer, or the parameters unchanged when they differ in dtype
    or device.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    if not params or len({(p.dtype, p.device) for p in params}) != 1:
        return params
    with torch.no_grad():
        flat = torch.cat([p.detach().reshape(-1) for p in params])
    grad = torch.zeros_like(flat)
    offset = 0
    for p in params:
        n = p.numel()
        p.data = flat[offset : offset + n].view_as(p)
        p.grad = grad[offset : offset + n].view_as(p)
        offset += n
    master = nn.Parameter(flat)
    master.grad = grad
    return [master]


def adam(params, lr: float, device: torch.device, betas=(0.9, 0.999)) -> torch.optim.Optimizer:
    # The fused kernel updates every parameter in one call; it exists on CPU and CUDA in current torch.
    try:
        return torch.optim.Adam(params, lr=lr, betas=betas, fused=device.type in ("cpu", "cuda"))
    except (RuntimeError, TypeError):
        return torch.optim.Adam(params, lr=lr, betas=betas)
