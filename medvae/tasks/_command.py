"""What every training task records and checks: the reproducing command line, the config as plain values,
and the model file name."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from medvae.errors import UsageError


def changed_options(config, defaults, skip: tuple[str, ...]) -> list[str]:
    """``--name value`` for each field of the dataclass ``config`` that differs from ``defaults``.

    Booleans become ``--name`` / ``--no-name`` and tuples ``--name a,b``; fields in ``skip`` are left out.
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
                parts.append(f"--{name} {','.join(map(str, value)) if isinstance(value, tuple) else value}")
    return parts


def check_model_path(out: Path) -> None:
    """Refuse an output that is a folder or not a ``.safetensors`` file name."""
    if out.is_dir() or out.suffix != ".safetensors":
        raise UsageError(f"out {out}: give a model file name ending in .safetensors")


def plain_config(config) -> dict:
    """The dataclass ``config`` as JSON-ready values (paths as strings)."""
    return {k: str(v) if isinstance(v, Path) else v for k, v in dataclasses.asdict(config).items()}


def fit_settings(config, state_path: Path):
    """The :class:`medvae.train.TrainConfig` for a task config that has the usual training fields."""
    from medvae.train import TrainConfig

    return TrainConfig(epochs=config.epochs, batch_size=config.batch_size, lr=config.lr, seed=config.seed,
                       device=config.device, amp=config.amp, state_path=state_path, resume=config.resume,
                       progress=config.progress)
