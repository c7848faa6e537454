"""The one training loop every medvae model uses.

``fit(model, train, val, config)`` handles: the device (CPU / CUDA / MPS), mixed precision on CUDA,
DistributedDataParallel when started under ``torchrun`` (gloo on CPU, NCCL on CUDA; only rank 0 writes
files), seeding, a progress bar, a checkpoint of the training state each epoch, ``resume``, TensorBoard, and a
clear stop on a non-finite loss. What it asks of the model and the data is written down as protocols in
:mod:`medvae.train.config`: a :class:`~medvae.train.config.Trainable` model (``loss(batch)``), optionally
:class:`~medvae.train.config.EpochAware` (warm-up schedules; datasets too) or
:class:`~medvae.train.config.Adversarial` (a GAN: the discriminator gets its own Adam and a step after each
generator step).

Randomness is derived from ``(seed, epoch)`` at the start of every epoch, so a run resumed after epoch k continues
exactly as the uninterrupted run would have. Under ``torchrun`` every rank is seeded alike and takes every
``world_size``-th sample of one permutation, its batch norms use the global batch's statistics
(:mod:`medvae.train.sync_norm`) and its noise is its rows of the global batch's draw
(:func:`medvae.models.base.global_batch`): N processes with batch B train as one process with batch N × B.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
from torch import Tensor, nn

from medvae.data.datasets import TensorBatches
from medvae.errors import TrainingError, UsageError
from medvae.models.base import global_batch
from medvae.train.config import Adversarial, EpochAware, Trainable, TrainConfig, TrainRecord
from medvae.train.device import _epoch_seed, _init_distributed, cpu_has_native_bf16, resolve_device, world
from medvae.train.optim import adam, flatten_parameters
from medvae.train.report import log_tensorboard, print_epoch, progress_bar, tensorboard_writer
from medvae.train.state import load_state, save_state
from medvae.train.sync_norm import sync_batch_norms

__all__ = ["fit", "evaluate_loss", "TrainConfig", "TrainRecord", "flatten_parameters"]


# ----------------------------------------------------------------------------- batches


def _loader(data, batch_size: int, shuffle: bool, seed: int, epoch: int, num_workers: int) -> Iterator[dict]:
    rank, _, world_size = world()
    if isinstance(data, TensorBatches):
        gen = torch.Generator().manual_seed(_epoch_seed(seed, epoch))  # same order on every rank
        yield from data.batches(batch_size, shuffle=shuffle, generator=gen, rank=rank, world_size=world_size)
        return
    from monai.data import DataLoader
    from torch.utils.data import DistributedSampler

    sampler = None
    if world_size > 1 or shuffle:  # one permutation, dealt out in turn: rank r's step s holds the samples
        # one process's step s would hold at places r, r + world_size, ... (its batch being world_size times)
        sampler = DistributedSampler(data, num_replicas=world_size, rank=rank, shuffle=shuffle, seed=seed)
        sampler.set_epoch(epoch)
    yield from DataLoader(data, batch_size=batch_size, sampler=sampler, num_workers=num_workers)


def _to_device(batch: dict, device: torch.device, channels_last: bool = False) -> dict:
    def move(v):
        if not isinstance(v, Tensor):
            return v
        v = v.to(device, non_blocking=True)
        return v.contiguous(memory_format=torch.channels_last) if channels_last and v.ndim == 4 else v

    return {k: move(v) for k, v in batch.items()}


class _LossModule(nn.Module):
    """Routes ``loss`` through ``forward`` so DistributedDataParallel's gradient hooks see it. ``synced`` is the
    part whose gradients DDP averages (the whole model, or a GAN's generator: the discriminator, though it takes
    part in the generator's loss, is stepped apart)."""

    def __init__(self, model: nn.Module, synced: nn.Module | None = None) -> None:
        super().__init__()
        self.synced = synced if synced is not None else model
        object.__setattr__(self, "_model", model)  # not a submodule: DDP manages only ``synced``

    def forward(self, batch):
        out = self._model.loss(batch)
        return out.loss, out.terms


# ----------------------------------------------------------------------------- the loop


def fit(
    model: nn.Module,
    train,
    val=None,
    config: TrainConfig | None = None,
    *,
    on_epoch_end: Callable[[int, nn.Module, TrainRecord], None] | None = None,
    previews: Callable[[nn.Module], dict] | None = None,
) -> TrainRecord:
    """Train ``model`` on ``train`` (a :class:`TensorBatches` or a map-style Dataset of dicts).

    Args:
        model: a medvae model (has ``loss(batch) -> LossOutput``). Trained in place.
        train: training data; batches are dicts of tensors such as ``{"image": (B, C, *spatial)}``. An
            :class:`EpochAware` dataset is told each epoch before it starts.
        val: optional validation data, evaluated after every epoch.
        config: see :class:`TrainConfig`.
        on_epoch_end: called on rank 0 after each epoch's checkpoint, with ``(epoch, model, record)``;
            medvae's tasks save the model file here.
        previews: called on rank 0 after each epoch when logging to TensorBoard, with the model in eval
            mode under ``no_grad``; returns name → image in [0, 1] (2-D grey or ``(H, W, 3)``) to log.

    Returns:
        The :class:`TrainRecord`, identical on every rank.

    Raises:
        TrainingError: the loss became NaN or infinite (names the epoch and step).
    """
    config = config or TrainConfig()
    if not isinstance(model, Trainable):
        raise UsageError(f"{type(model).__name__} cannot be trained by fit: it has no loss(batch) method")
    device = resolve_device(config.device)
    distributed = _init_distributed(device)
    rank, _, world_size = world()
    main = rank == 0
    model.to(device)
    if config.channels_last:
        model.to(memory_format=torch.channels_last)
    if distributed:  # batch statistics of the global batch, the same on every rank (CPU and CUDA)
        sync_batch_norms(model)
    gan = isinstance(model, Adversarial)  # the discriminator has its own optimiser
    opt = adam(flatten_parameters(model.generator if gan else model), config.lr, device)
    opt_d = adam(flatten_parameters(model.discriminator), config.lr, device, betas=(0.5, 0.999)) if gan else None
    record = TrainRecord(device=str(device), world_size=world_size, seed=config.seed,
                         batch_size=config.batch_size, lr=config.lr)

    start_epoch = _resume(config, model, opt, opt_d, device, record)

    step_module: nn.Module = model
    if distributed:
        from torch.nn.parallel import DistributedDataParallel as DDP

        # a GAN: DDP averages the generator's gradients; the discriminator's own step runs outside DDP and
        # averages its gradients in _discriminator_step (its instance norms keep no statistics to drift apart)
        step_module = DDP(_LossModule(model, model.generator if gan else None),
                          device_ids=[device.index] if device.type == "cuda" else None)

    amp_dtype = _amp_dtype(config, device, model)
    record.amp = str(amp_dtype).removeprefix("torch.") if amp_dtype is not None else "off"
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)
    scaler_d = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16) if gan else None
    writer = tensorboard_writer(config.tensorboard) if main else None

    def step_once(batch, epoch: int, step: int) -> tuple[Tensor, dict[str, Tensor]]:
        """One optimiser step (and the discriminator's): the detached loss and terms."""
        with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
            if distributed:
                loss, terms = step_module(batch)
            else:
                out = model.loss(batch)
                loss, terms = out.loss, out.terms
        if not torch.isfinite(loss.detach()):
            raise TrainingError(f"training stopped: the loss became {loss.item()} at epoch {epoch + 1}, step "
                                f"{step + 1}; lower --lr or check the inputs for NaN/inf values")
        opt.zero_grad(set_to_none=False)  # keep the gradients as views of the flat buffer
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        if opt_d is not None:
            terms = {**terms, **_discriminator_step(model, batch, opt_d, scaler_d, device, amp_dtype, distributed)}
        return loss.detach(), terms

    with global_batch(rank, world_size):  # each sample's noise as one process would draw it
        for epoch in range(start_epoch, config.epochs):
            torch.manual_seed(_epoch_seed(config.seed, epoch))  # the same on every rank: see global_batch
            for part in (model, train):  # warm-up schedules (KL, adversarial weight); per-epoch data
                if isinstance(part, EpochAware):
                    part.set_epoch(epoch)
            if config.lr_schedule == "cosine":
                for group in opt.param_groups:
                    group["lr"] = config.lr * 0.5 * (1 + math.cos(math.pi * epoch / config.epochs))
            model.train()
            t0 = time.perf_counter()
            sums: dict[str, Tensor] = {}
            n_seen = 0
            bar = progress_bar(train, config, epoch, enabled=config.progress and main)
            batches = _loader(train, config.batch_size, True, config.seed, epoch, config.num_workers)
            for step, batch in enumerate(batches):
                batch = _to_device(batch, device, config.channels_last)
                loss, terms = step_once(batch, epoch, step)
                b = next(iter(batch.values())).shape[0]
                n_seen += b
                _accumulate(sums, {"loss": loss, **terms}, b)
                if bar is not None:
                    bar.update(b)
                    if step % 20 == 0:
                        bar.set_postfix(loss=f"{loss.item():.2f}", refresh=False)
            train_time = time.perf_counter() - t0
            if bar is not None:
                bar.close()
            train_means, n_total = _reduce_means(sums, n_seen, device, distributed)
            record.train_samples += n_total
            record.train_seconds += train_time
            record.train_loss.append(train_means.pop("loss"))
            record.train_terms.append(train_means)
            if val is not None:
                # CPU bf16 is a training speed-up only: validate in float32 there
                val_amp = amp_dtype if device.type == "cuda" else None
                val_means = evaluate_loss(model, val, config.batch_size * 4, device, val_amp, distributed)
                record.val_loss.append(val_means.pop("loss"))
                record.val_terms.append(val_means)
            record.epochs = epoch + 1
            record.samples_per_second = record.train_samples / max(record.train_seconds, 1e-9)
            record.seconds += time.perf_counter() - t0
            if main:
                if config.state_path is not None:
                    save_state(config.state_path, epoch + 1, model, opt, record, opt_d)
                if writer is not None:
                    log_tensorboard(writer, epoch + 1, record, preview_images(model, previews))
                if config.progress:
                    print_epoch(record, config.epochs, train_time)
                if on_epoch_end is not None:
                    on_epoch_end(epoch + 1, model, record)
            if distributed:
                torch.distributed.barrier()
    if writer is not None:
        writer.close()
    if distributed:
        torch.distributed.destroy_process_group()
    return record


def _amp_dtype(config: TrainConfig, device: torch.device, model: nn.Module):
    """bfloat16 (or float16) on CUDA; bfloat16 on a CPU with native support for models that ask for it
    (``cpu_bf16 = True``: see medvae/models/fused_mlp.py); else None (float32)."""
    if config.amp and device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if config.amp and device.type == "cpu" and getattr(model, "cpu_bf16", False) and cpu_has_native_bf16():
        return torch.bfloat16
    return None


def _resume(config: TrainConfig, model, opt, opt_d, device, record: TrainRecord) -> int:
    """The epoch to start from: 0, or with ``resume`` the one the state file reached (model, optimisers and
    ``record`` restored in place)."""
    if not config.resume:
        return 0
    if config.state_path is None:
        raise UsageError("resume needs a state_path to resume from", param="resume")
    if not Path(config.state_path).is_file():
        raise UsageError(f"--resume: no training state at {config.state_path} to resume from; "
                         "run without --resume to start afresh")
    start_epoch, restored = load_state(config.state_path, model, opt, device, record, opt_d)
    restored.resumed_at_epoch = start_epoch
    return start_epoch


def preview_images(model: nn.Module, previews) -> dict:
    """``previews(model)`` in eval mode under ``no_grad`` (the model's mode restored after); {} for None."""
    if previews is None:
        return {}
    was_training = model.training
    model.eval()
    with torch.no_grad():
        images = previews(model)
    model.train(was_training)
    return images


def _discriminator_step(model, batch, opt_d, scaler_d, device, amp_dtype, distributed: bool = False
                        ) -> dict[str, Tensor]:
    """One discriminator update on the generator step's fakes; returns its loss terms. Under torchrun its
    gradients are averaged over the ranks before the step, as DDP does the generator's."""
    opt_d.zero_grad(set_to_none=False)
    with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
        out = model.discriminator_loss(batch)
    if not torch.isfinite(out.loss.detach()):
        raise TrainingError(f"training stopped: the discriminator loss became {out.loss.item()}; lower --lr")
    scaler_d.scale(out.loss).backward()
    if distributed:
        world_size = torch.distributed.get_world_size()
        for param in (p for group in opt_d.param_groups for p in group["params"] if p.grad is not None):
            torch.distributed.all_reduce(param.grad)
            param.grad /= world_size
    scaler_d.step(opt_d)
    scaler_d.update()
    return {"d_loss": out.loss.detach(), **out.terms}


@torch.no_grad()
def evaluate_loss(model, data, batch_size: int, device, amp_dtype=None, distributed: bool = False) -> dict[str, float]:
    """Mean of ``model.loss`` and its terms over ``data`` (in eval mode), per image."""
    model.eval()
    sums: dict[str, Tensor] = {}
    n = 0
    for batch in _loader(data, batch_size, False, 0, 0, 0):
        batch = _to_device(batch, device)
        with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
            out = model.loss(batch)
        b = next(iter(batch.values())).shape[0]
        n += b
        _accumulate(sums, {"loss": out.loss.detach(), **out.terms}, b)
    model.train()
    return _reduce_means(sums, n, device, distributed)[0]


def _accumulate(sums: dict[str, Tensor], values: dict[str, Tensor], weight: int) -> None:
    for k, v in values.items():
        v = v.detach().float() * weight
        sums[k] = sums[k] + v if k in sums else v


def _reduce_means(sums: dict[str, Tensor], n: int, device, distributed: bool) -> tuple[dict[str, float], int]:
    keys = sorted(sums)
    vec = torch.stack([sums[k] for k in keys] + [torch.tensor(float(n), device=device)]) if keys else \
        torch.tensor([float(n)], device=device)
    if distributed:
        torch.distributed.all_reduce(vec)
    vec = vec.cpu()
    total = int(vec[-1].item())
    return {k: float(vec[i]) / max(total, 1) for i, k in enumerate(keys)}, total
