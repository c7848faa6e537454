"""What a training run is told (:class:`TrainConfig`), what it reports (:class:`TrainRecord`), and what it asks
of a model and a dataset (the protocols). Imports no torch, so task configs and the CLI can nest a
``TrainConfig`` without loading it."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from medvae.errors import UsageError, check_positive


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
    state_path: where the resumable training state is written after each epoch (None: not written). Tasks
        set it beside their model file.
    resume: continue from ``state_path`` if it exists.
    overwrite: a task whose model file exists trains again only with this (or ``resume``); otherwise it
        raises :class:`medvae.errors.OutputExists` before doing anything.
    progress: show a progress bar and one line per epoch.
    previews: tasks write preview images (PNG) beside the model file after every epoch.
    tensorboard: folder for TensorBoard logs: per-epoch losses and the preview images (needs the
        ``tensorboard`` package).
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
    overwrite: bool = False
    progress: bool = True
    previews: bool = True
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
        self.state_path = Path(self.state_path) if self.state_path is not None else None
        self.tensorboard = Path(self.tensorboard) if self.tensorboard is not None else None


TRAIN_FIELDS = frozenset(f.name for f in dataclasses.fields(TrainConfig))


def train_defaults(**values) -> Any:
    """A dataclass field holding a :class:`TrainConfig` with a task's own defaults (``epochs=20``, ...)."""
    return field(default_factory=lambda: TrainConfig(**values))


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


# ----------------------------------------------------------------------------- the contracts


@runtime_checkable
class Trainable(Protocol):
    """What :func:`medvae.train.fit` trains: a module whose ``loss(batch)`` returns a
    :class:`medvae.losses.LossOutput` (``.loss`` a scalar tensor, ``.terms`` a dict of scalar tensors)."""

    def loss(self, batch: dict) -> Any: ...


@runtime_checkable
class EpochAware(Protocol):
    """A model or dataset told the epoch before it starts (epochs counted from 0): warm-up schedules, and
    datasets whose items depend on ``(seed, epoch, index)``. Called again after a resume, with the epoch it
    continues from."""

    def set_epoch(self, epoch: int) -> None: ...


@runtime_checkable
class Adversarial(Protocol):
    """A GAN: ``generator`` is optimised on ``loss(batch)``, ``discriminator`` (its own Adam, betas 0.5/0.999)
    on ``discriminator_loss(batch)``, one step of each per batch."""

    generator: Any
    discriminator: Any

    def discriminator_loss(self, batch: dict) -> Any: ...
