"""The resumable training state written after every epoch (``<model>.state.pt``): weights, optimiser
moments and the record so far, written atomically; and reading it back for ``--resume``."""

from __future__ import annotations

import json

import torch

from medvae.errors import TrainingError, first_line
from medvae.io.atomic import atomic_path
from medvae.train.config import TrainRecord


def save_state(path, epoch: int, model, opt, record: TrainRecord, opt_d=None) -> None:
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


def load_state(path, model, opt, device, record: TrainRecord, opt_d=None) -> tuple[int, TrainRecord]:
    try:
        state = torch.load(path, map_location=device, weights_only=True)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        if opt_d is not None:
            opt_d.load_state_dict(state["optimizer_d"])
        saved = json.loads(state["record"])
    except Exception as e:  # unreadable file, or a state from another model or config
        raise TrainingError(
            f"{path}: cannot resume from this training state (it is unreadable or comes from a different model "
            f"or config: {first_line(e)}); run without --resume to start afresh"
        ) from None
    for k in ("train_loss", "val_loss", "train_terms", "val_terms", "train_samples", "train_seconds", "seconds"):
        setattr(record, k, saved[k])
    record.epochs = int(state["epoch"])
    return int(state["epoch"]), record
