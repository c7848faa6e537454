"""The one training loop every medvae model uses.

``fit(model, train, val, config)`` handles: the device (CPU / CUDA / MPS), mixed precision on CUDA,
DistributedDataParallel when started under ``torchrun`` (gloo on CPU, NCCL on CUDA; only rank 0 writes
files), seeding, a progress bar, a checkpoint of the training state each epoch, ``resume``, and a clear
stop on a non-finite loss. The model only has to provide ``loss(batch) -> LossOutput``; it may add
``set_epoch(epoch)`` (warm-up schedules) and, for a GAN, a ``discriminator`` module with
``discriminator_loss(batch)``, which gets its own Adam optimiser and a step after each generator step.

Randomness is derived from ``(seed, epoch, rank)`` at the start of every epoch, so a run resumed after
epoch k continues exactly as the uninterrupted run would have.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from medvae.io.atomic import atomic_path
from medvae.data.datasets import TensorBatches
from medvae.errors import TrainingError, UsageError, check_positive
from medvae.train.device import _epoch_seed, _init_distributed, cpu_has_native_bf16, resolve_device, world


@dataclass
class TrainConfig:
    """Args:
    epochs: passes over the training data (in total, counting epochs done before a resume).
    batch_size: images per optimisation step, per process.
    lr: Adam learning rate.
    seed: fixes every random generator; the same seed gives the same result on the CPU.
    device: ``"auto"`` (CUDA, then MPS, then CPU), ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``.
    amp: mixed precision: on CUDA bfloat16 where supported, else float16 with loss scaling; on CPUs with
        native bfloat16, for models that declare ``cpu_bf16 = True`` (the MLP VAE's two big matmuls).
    state_path: where the resumable training state is written after each epoch (None: not written).
    resume: continue from ``state_path`` if it exists.
    progress: show a progress bar and one line per epoch.
    tensorboard: folder for TensorBoard logs (needs the ``tensorboard`` package).
    num_workers: DataLoader workers for datasets not held in memory.
    lr_schedule: ``"constant"``, or ``"cosine"``: the rate falls from ``lr`` to 0 along a half cosine over
        the epochs (set per epoch from the epoch number, so a resumed run continues the same curve).
    channels_last: run a 2-D model and its batches in channels-last memory order (oneDNN convolves
        batch-normalised 2-D networks about 1.5x faster so on CPUs).
    """

    epochs: int = 10
    batch_size: int = 64
    lr: float = 1e-3
    seed: int = 0
    device: str = "auto"
    amp: bool = True
    state_path: Path | None = None
    resume: bool = False
    progress: bool = True
    tensorboard: Path | None = None
    num_workers: int = 0
    lr_schedule: str = "constant"
    channels_last: bool = False

    def __post_init__(self) -> None:
        if self.lr_schedule not in ("constant", "cosine"):
            raise UsageError(f"lr_schedule must be constant or cosine, got {self.lr_schedule!r}", param="lr_schedule")
        check_positive("epochs", self.epochs)
        check_positive("batch_size", self.batch_size)
        check_positive("lr", self.lr, integer=False)
        if self.resume and self.state_path is None:
            raise UsageError("resume needs a state_path to resume from", param="resume")


@dataclass
class TrainRecord:
    """What happened in training; stored in the model file's ``training`` metadata."""

    epochs: int = 0
    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    train_terms: list[dict[str, float]] = field(default_factory=list)
    val_terms: list[dict[str, float]] = field(default_factory=list)
    train_samples: int = 0
    train_seconds: float = 0.0
    seconds: float = 0.0
    samples_per_second: float = 0.0
    device: str = ""
    world_size: int = 1
    seed: int = 0
    batch_size: int = 0
    lr: float = 0.0
    amp: str = "off"
    resumed_at_epoch: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# ----------------------------------------------------------------------------- batches


def _loader(data, batch_size: int, shuffle: bool, seed: int, epoch: int, num_workers: int) -> Iterator[dict]:
    rank, _, world_size = world()
    if isinstance(data, TensorBatches):
        gen = torch.Generator().manual_seed(_epoch_seed(seed, epoch, 0))  # same order on every rank
        yield from data.batches(batch_size, shuffle=shuffle, generator=gen, rank=rank, world_size=world_size)
        return
    from monai.data import DataLoader
    from torch.utils.data import DistributedSampler, RandomSampler

    if world_size > 1:
        sampler = DistributedSampler(data, num_replicas=world_size, rank=rank, shuffle=shuffle, seed=seed)
        sampler.set_epoch(epoch)
    elif shuffle:
        sampler = RandomSampler(data, generator=torch.Generator().manual_seed(_epoch_seed(seed, epoch, 0)))
    else:
        sampler = None
    yield from DataLoader(data, batch_size=batch_size, sampler=sampler, num_workers=num_workers)


def _to_device(batch: dict, device: torch.device, channels_last: bool = False) -> dict:
    def move(v):
        if not isinstance(v, Tensor):
            return v
        v = v.to(device, non_blocking=True)
        return v.contiguous(memory_format=torch.channels_last) if channels_last and v.ndim == 4 else v

    return {k: move(v) for k, v in batch.items()}


class _LossModule(nn.Module):
    """Routes ``loss`` through ``forward`` so DistributedDataParallel's gradient hooks see it."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch):
        out = self.model.loss(batch)
        return out.loss, out.terms


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


def _adam(params, lr: float, device: torch.device, betas=(0.9, 0.999)) -> torch.optim.Optimizer:
    # The fused kernel updates every parameter in one call; it exists on CPU and CUDA in current torch.
    try:
        return torch.optim.Adam(params, lr=lr, betas=betas, fused=device.type in ("cpu", "cuda"))
    except (RuntimeError, TypeError):
        return torch.optim.Adam(params, lr=lr, betas=betas)


# ----------------------------------------------------------------------------- the loop


def fit(
    model: nn.Module,
    train,
    val=None,
    config: TrainConfig | None = None,
    *,
    on_epoch_end: Callable[[int, nn.Module, TrainRecord], None] | None = None,
) -> TrainRecord:
    """Train ``model`` on ``train`` (a :class:`TensorBatches` or a map-style Dataset of dicts).

    Args:
        model: a medvae model (has ``loss(batch) -> LossOutput``). Trained in place.
        train: training data; batches are dicts of tensors such as ``{"image": (B, C, *spatial)}``.
        val: optional validation data, evaluated after every epoch.
        config: see :class:`TrainConfig`.
        on_epoch_end: called on rank 0 after each epoch's checkpoint, with ``(epoch, model, record)``;
            medvae's tasks save the model file here.

    Returns:
        The :class:`TrainRecord`, identical on every rank.

    Raises:
        TrainingError: the loss became NaN or infinite (names the epoch and step).
    """
    config = config or TrainConfig()
    device = resolve_device(config.device)
    distributed = _init_distributed(device)
    rank, _, world_size = world()
    main = rank == 0
    model.to(device)
    if config.channels_last:
        model.to(memory_format=torch.channels_last)
    gan = hasattr(model, "discriminator_loss")  # a VAE-GAN: the discriminator has its own optimiser
    if gan and distributed:
        raise UsageError("training a VAE-GAN under torchrun is not supported yet; run it in one process")
    opt = _adam(flatten_parameters(model.generator if gan else model), config.lr, device)
    opt_d = _adam(flatten_parameters(model.discriminator), config.lr, device, betas=(0.5, 0.999)) if gan else None
    record = TrainRecord(device=str(device), world_size=world_size, seed=config.seed,
                         batch_size=config.batch_size, lr=config.lr)

    start_epoch = 0
    if config.resume and config.state_path is not None:
        if not Path(config.state_path).is_file():
            raise UsageError(f"--resume: no training state at {config.state_path} to resume from; "
                             "run without --resume to start afresh")
        start_epoch, record = _load_state(config.state_path, model, opt, device, record, opt_d)
        record.resumed_at_epoch = start_epoch

    step_module: nn.Module = model
    if distributed:
        from torch.nn.parallel import DistributedDataParallel as DDP

        step_module = DDP(_LossModule(model), device_ids=[device.index] if device.type == "cuda" else None)

    amp_dtype = None
    if config.amp and device.type == "cuda":
        amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    elif config.amp and device.type == "cpu" and getattr(model, "cpu_bf16", False) and cpu_has_native_bf16():
        amp_dtype = torch.bfloat16  # only models that ask for it: see medvae/models/fused_mlp.py
    if amp_dtype is not None:
        record.amp = str(amp_dtype).removeprefix("torch.")
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)
    scaler_d = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16) if gan else None
    writer = _tensorboard(config.tensorboard) if main else None

    def compute(batch) -> tuple[Tensor, dict[str, Tensor]]:
        with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
            if distributed:
                return step_module(batch)
            out = model.loss(batch)
            return out.loss, out.terms

    for epoch in range(start_epoch, config.epochs):
        torch.manual_seed(_epoch_seed(config.seed, epoch, rank))
        if hasattr(model, "set_epoch"):  # warm-up schedules (KL, adversarial weight)
            model.set_epoch(epoch)
        if config.lr_schedule == "cosine":
            for group in opt.param_groups:
                group["lr"] = config.lr * 0.5 * (1 + math.cos(math.pi * epoch / config.epochs))
        model.train()
        t0 = time.perf_counter()
        sums: dict[str, Tensor] = {}
        n_seen = 0
        bar = _progress(train, config, epoch, enabled=config.progress and main)
        for step, batch in enumerate(_loader(train, config.batch_size, True, config.seed, epoch, config.num_workers)):
            batch = _to_device(batch, device, config.channels_last)
            loss, terms = compute(batch)
            if not torch.isfinite(loss.detach()):
                raise TrainingError(
                    f"training stopped: the loss became {loss.item()} at epoch {epoch + 1}, step {step + 1}; "
                    "lower --lr or check the inputs for NaN/inf values"
                )
            opt.zero_grad(set_to_none=False)  # keep the gradients as views of the flat buffer
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            if opt_d is not None:
                terms = {**terms, **_discriminator_step(model, batch, opt_d, scaler_d, device, amp_dtype)}
            b = next(iter(batch.values())).shape[0]
            n_seen += b
            _accumulate(sums, {"loss": loss.detach(), **terms}, b)
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
                _save_state(config.state_path, epoch + 1, model, opt, record, opt_d)
            if writer is not None:
                _log_tensorboard(writer, epoch + 1, record)
            if config.progress:
                _print_epoch(record, config.epochs, train_time)
            if on_epoch_end is not None:
                on_epoch_end(epoch + 1, model, record)
        if distributed:
            torch.distributed.barrier()
    if writer is not None:
        writer.close()
    if distributed:
        torch.distributed.destroy_process_group()
    return record


def _discriminator_step(model, batch, opt_d, scaler_d, device, amp_dtype) -> dict[str, Tensor]:
    """One discriminator update on the generator step's fakes; returns its loss terms."""
    opt_d.zero_grad(set_to_none=False)
    with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
        out = model.discriminator_loss(batch)
    if not torch.isfinite(out.loss.detach()):
        raise TrainingError(f"training stopped: the discriminator loss became {out.loss.item()}; lower --lr")
    scaler_d.scale(out.loss).backward()
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


# ----------------------------------------------------------------------------- state, progress, logs


def _save_state(path, epoch: int, model, opt, record: TrainRecord, opt_d=None) -> None:
    state = {
        "epoch": epoch,
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer": opt.state_dict(),
        "record": json.dumps(record.to_dict()),
    }
    if opt_d is not None:
        state["optimizer_d"] = opt_d.state_dict()
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def _load_state(path, model, opt, device, record: TrainRecord, opt_d=None) -> tuple[int, TrainRecord]:
    try:
        state = torch.load(path, map_location=device, weights_only=True)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        if opt_d is not None:
            opt_d.load_state_dict(state["optimizer_d"])
        saved = json.loads(state["record"])
    except Exception as e:  # unreadable file, or a state from another model or config
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise TrainingError(
            f"{path}: cannot resume from this training state (it is unreadable or comes from a different model "
            f"or config: {first}); run without --resume to start afresh"
        ) from None
    for k in ("train_loss", "val_loss", "train_terms", "val_terms", "train_samples", "train_seconds", "seconds"):
        setattr(record, k, saved[k])
    record.epochs = int(state["epoch"])
    return int(state["epoch"]), record


def _progress(train, config: TrainConfig, epoch: int, enabled: bool):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    _, _, world_size = world()
    total = math.ceil(len(train) / world_size)
    return tqdm(total=total, desc=f"epoch {epoch + 1}/{config.epochs}", unit="img", leave=False, dynamic_ncols=True)


def _print_epoch(record: TrainRecord, epochs: int, train_time: float) -> None:
    from tqdm.auto import tqdm

    line = f"epoch {record.epochs}/{epochs}  train loss {record.train_loss[-1]:.3f}"
    if record.val_loss:
        line += f"  val loss {record.val_loss[-1]:.3f}"
    line += f"  ({train_time:.1f} s, {record.samples_per_second:,.0f} img/s)"
    tqdm.write(line)


def _tensorboard(folder):
    if folder is None:
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise UsageError("tensorboard logging needs the tensorboard package: pip install tensorboard", param="tensorboard") from None
    return SummaryWriter(str(folder))


def _log_tensorboard(writer, epoch: int, record: TrainRecord) -> None:
    writer.add_scalar("loss/train", record.train_loss[-1], epoch)
    if record.val_loss:
        writer.add_scalar("loss/val", record.val_loss[-1], epoch)
    for k, v in record.train_terms[-1].items():
        writer.add_scalar(f"train/{k}", v, epoch)
    writer.flush()
