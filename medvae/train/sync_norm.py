"""Batch normalisation over the global batch under ``torchrun``, on the CPU (gloo) as on CUDA (NCCL).

PyTorch's ``SyncBatchNorm`` runs on GPUs only. :func:`sync_batch_norms` gives every batch-norm layer of a model
the statistics of the whole global batch instead of its own process's share: the channel means and variances are
summed over the processes (two all-reduces that gradients flow back through), so a ``torchrun`` run with batch
B per process normalises exactly as one process with batch ``world_size × B`` would, and the running statistics
stay the same on every rank. Outside a process group (or in eval mode) the layers are plain batch norms.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class _GlobalStatistics:
    """Mixed into a batch-norm class ahead of it (see :func:`sync_batch_norms`)."""

    def forward(self, x: Tensor) -> Tensor:  # (B, C, *spatial)
        import torch.distributed as dist

        if not (self.training and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        from torch.distributed.nn.functional import all_reduce

        self._check_input_dim(x)
        dims, shape = [0, *range(2, x.ndim)], [1, -1] + [1] * (x.ndim - 2)
        xf = x.float()
        local = torch.cat([xf.sum(dims), xf.new_tensor([xf.numel() / x.shape[1]])])
        total = all_reduce(local)  # channel sums and the count, over every process
        n, mean = total[-1], total[:-1] / total[-1]
        centred = xf - mean.view(shape)
        var = all_reduce((centred * centred).sum(dims)) / n  # biased, as batch norm normalises with
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                momentum = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.lerp_(mean.detach().to(self.running_mean.dtype), momentum)
                unbiased = var.detach() * n / torch.clamp(n - 1, min=1)
                self.running_var.lerp_(unbiased.to(self.running_var.dtype), momentum)
        y = centred * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y.to(x.dtype)


_CLASSES: dict[type, type] = {}


def sync_batch_norms(model: nn.Module) -> int:
    """Make every batch-norm layer of ``model`` normalise over the global batch (in place; its parameters and
    buffers stay the same objects, so optimisers built before or after see them, and model files do not
    change). Returns how many layers were changed."""
    changed = 0
    for module in model.modules():
        cls = type(module)
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and not isinstance(module, _GlobalStatistics):
            if cls not in _CLASSES:
                _CLASSES[cls] = type(f"Global{cls.__name__}", (_GlobalStatistics, cls), {})
            module.__class__ = _CLASSES[cls]
            changed += 1
    return changed
