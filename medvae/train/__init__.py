"""Training: the one loop every model uses (:mod:`~medvae.train.loop`), where it runs
(:mod:`~medvae.train.device`) and what every training task records (:mod:`~medvae.train.recipe`).

``from medvae.train import fit`` and friends work as before; they are imported on first use, so that the CLI
can import :mod:`medvae.train.recipe` without loading torch.
"""

from __future__ import annotations

import importlib

_HOME = {"fit": "loop", "TrainConfig": "loop", "TrainRecord": "loop", "evaluate_loss": "loop",
         "flatten_parameters": "loop", "world": "device", "is_main_process": "device", "resolve_device": "device",
         "cpu_has_native_bf16": "device", "seed_everything": "device"}


def __getattr__(name: str):
    if name in _HOME:
        return getattr(importlib.import_module(f"medvae.train.{_HOME[name]}"), name)
    raise AttributeError(f"module 'medvae.train' has no attribute {name!r}")


__all__ = list(_HOME)
