"""What every training task records and checks: the reproducing command line, the config as plain values,
and the model file name."""

from __future__ import annotations

import dataclasses
import os
import shlex
from pathlib import Path

from medvae.errors import UsageError


def changed_options(config, defaults, skip: tuple[str, ...]) -> list[str]:
    """``--name value`` for each field of the dataclass ``config`` that differs from ``defaults``.

    Booleans become ``--name`` / ``--no-name``, tuples ``--name a,b`` and paths their file name; fields in
    ``skip`` are left out.
    """
    parts = []
    for f in dataclasses.fields(config):
        if f.name in skip:
            continue
        value, default = getattr(config, f.name), getattr(defaults, f.name)
        if value != default:
            name = f.name.replace("_", "-")
            if isinstance(value, bool):
                parts.append(f"--{name}" if value else f"--no-{name}")
            else:
                # a model file is named, not where it lay: the record holds no machine's own folders
                text = (",".join(map(str, value)) if isinstance(value, tuple) else
                        value.name if isinstance(value, Path) else str(value))
                parts.append(f"--{name} {shlex.quote(text)}")
    return parts


def check_model_path(out: Path) -> None:
    """Refuse an output that is a folder or not a ``.safetensors`` file name."""
    if out.is_dir() or out.suffix != ".safetensors":
        raise UsageError(f"out {out}: give a model file name ending in .safetensors", param="out")


def plain_config(config) -> dict:
    """The dataclass ``config`` as JSON-ready values (paths by file name, as :func:`changed_options` has them)."""
    return {k: v.name if isinstance(v, Path) else v for k, v in dataclasses.asdict(config).items()}


def portable_command(command: str) -> str:
    """A recorded command line with every absolute path cut to its file name (older model files kept them)."""
    return " ".join(Path(t).name if t.startswith("/") else t for t in command.split(" "))


def fit_settings(config, state_path: Path):
    """The :class:`medvae.train.TrainConfig` for a task config that has the usual training fields."""
    from medvae.train import TrainConfig

    return TrainConfig(epochs=config.epochs, batch_size=config.batch_size, lr=config.lr, seed=config.seed,
                       device=config.device, amp=config.amp, state_path=state_path, resume=config.resume,
                       progress=config.progress, lr_schedule=getattr(config, "lr_schedule", "constant"),
                       channels_last=getattr(config, "channels_last", False))


def portable_path(path: str | os.PathLike, root: str | os.PathLike) -> str:
    """``path`` relative to the data folder ``root`` (or its file name when outside it): what a model file
    records of its training images, so no machine's own folders end up in it."""
    path, root = Path(path).resolve(), Path(root).resolve()
    root = root if root.is_dir() else root.parent
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.name
