"""``medvae info PATH``: what a file is. For now, medvae model files (images come with the I/O layer)."""

from __future__ import annotations

import os
from typing import Any


def describe(path: str | os.PathLike) -> dict[str, Any]:
    """Describe a medvae model file: kind, config, preprocessing, training record, size.

    Raises:
        InputError: the file is missing or is not a medvae model (one line naming it).
    """
    from medvae.checkpoint import read_model_info

    return {"type": "model", **read_model_info(path).to_dict()}


def format_description(info: dict[str, Any]) -> str:
    """Human-readable text for :func:`describe`'s result (the long per-epoch lists are summarised)."""
    lines = [f"{info['path']}: medvae model, kind {info['kind']} (medvae {info['medvae_version']})",
             f"  parameters: {info['n_parameters']:,} in {info['n_tensors']} tensors"]
    lines.append("  config: " + ", ".join(f"{k}={v}" for k, v in info["config"].items()))
    if info["preprocessing"]:
        lines.append("  preprocessing: " + ", ".join(f"{k}={v}" for k, v in info["preprocessing"].items()))
    t = info["training"]
    if t:
        lines.append("  training:")
        for key in ("task", "data", "train_images", "epochs", "batch_size", "lr", "seed", "device", "world_size",
                    "samples_per_second", "train_seconds"):
            if key in t:
                v = t[key]
                lines.append(f"    {key}: {v:g}" if isinstance(v, float) else f"    {key}: {v}")
        if t.get("train_loss"):
            lines.append(f"    final train loss: {t['train_loss'][-1]:.3f}")
        if t.get("val_loss"):
            lines.append(f"    final validation loss: {t['val_loss'][-1]:.3f}")
    return "\n".join(lines)
