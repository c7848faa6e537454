"""What a training run shows and logs: the progress bar, one line per epoch, and TensorBoard (losses and
preview images per epoch)."""

from __future__ import annotations

import math

from medvae.errors import UsageError
from medvae.train.config import TrainConfig, TrainRecord
from medvae.train.device import world


def note(message: str) -> None:
    """One line ``note: message`` on stderr (rank 0 only) before a step that runs a while without output:
    stdout stays for results (``--json``)."""
    import sys

    from tqdm.auto import tqdm

    if world()[0] == 0:
        tqdm.write(f"note: {message}", file=sys.stderr)


def progress_bar(train, config: TrainConfig, epoch: int, enabled: bool):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    _, _, world_size = world()
    total = math.ceil(len(train) / world_size)
    return tqdm(total=total, desc=f"epoch {epoch + 1}/{config.epochs}", unit="img", leave=False, dynamic_ncols=True)


def print_epoch(record: TrainRecord, epochs: int, train_time: float) -> None:
    from tqdm.auto import tqdm

    line = f"epoch {record.epochs}/{epochs}  train loss {record.train_loss[-1]:.3f}"
    if record.val_loss:
        line += f"  val loss {record.val_loss[-1]:.3f}"
    line += f"  ({train_time:.1f} s, {record.samples_per_second:,.0f} img/s)"
    tqdm.write(line)


def tensorboard_writer(folder):
    if folder is None:
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise UsageError("tensorboard logging needs the tensorboard package: pip install tensorboard", param="tensorboard") from None
    return SummaryWriter(str(folder))


def log_tensorboard(writer, epoch: int, record: TrainRecord, images: dict | None = None) -> None:
    """The epoch's losses and terms (train and validation), the training speed, and ``images``: name →
    a 2-D array (grey) or ``(H, W, 3)`` (colour), values in [0, 1]."""
    writer.add_scalar("loss/train", record.train_loss[-1], epoch)
    if record.val_loss:
        writer.add_scalar("loss/val", record.val_loss[-1], epoch)
    for k, v in record.train_terms[-1].items():
        writer.add_scalar(f"train/{k}", v, epoch)
    for k, v in (record.val_terms[-1].items() if record.val_terms else ()):
        writer.add_scalar(f"val/{k}", v, epoch)
    writer.add_scalar("speed/samples_per_second", record.samples_per_second, epoch)
    for name, image in (images or {}).items():
        writer.add_image(name, image, epoch, dataformats="HW" if image.ndim == 2 else "HWC")
    writer.flush()
