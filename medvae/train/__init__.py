"""Training: the one loop every model uses (:mod:`~medvae.train.loop`), what it is told and asks of a model
(:mod:`~medvae.train.config`), where it runs (:mod:`~medvae.train.device`), its optimiser, state file and
logs (:mod:`~medvae.train.optim`, :mod:`~medvae.train.state`, :mod:`~medvae.train.report`), and the one
recipe every training task follows (:mod:`~medvae.train.recipe`).

``from medvae.train import fit`` and friends work as before; they are imported on first use, so that the CLI
can import :mod:`medvae.train.recipe` without loading torch.
"""

from __future__ import annotations

import importlib

_HOME = {"fit": "loop", "TrainConfig": "config", "TrainRecord": "config", "evaluate_loss": "loop",
         "flatten_parameters": "optim", "Recipe": "recipe", "configure": "recipe", "world": "device", "is_main_process": "device", "resolve_device": "device",
         "cpu_has_native_bf16": "device", "seed_everything": "device"}


def __getattr__(name: str):
    if name in _HOME:
        return getattr(importlib.import_module(f"medvae.train.{_HOME[name]}"), name)
    raise AttributeError(f"module 'medvae.train' has no attribute {name!r}")


__all__ = list(_HOME)
