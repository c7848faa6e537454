"""A medvae model is ONE ``.safetensors`` file: the weights plus string metadata.

Metadata keys (all strings; the structured ones hold JSON):

``format``          ``"medvae-model"`` (how :func:`read_model_info` recognises a medvae file)
``kind``            registry name, e.g. ``"mlp_vae"`` (see :mod:`medvae.models`)
``config``          the model's config dataclass, as JSON
``preprocessing``   what the model expects of its input (pipeline name, intensity scaling, shape)
``training``        the training record (epochs, losses, data, seed, timings)
``medvae_version``  the version that wrote the file

Loading never unpickles: safetensors holds only tensors and strings. The training state kept for
``--resume`` (optimizer moments, epoch) is separate and loaded with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medvae import __version__
from medvae.io.atomic import atomic_path
from medvae.errors import InputError, UsageError

FORMAT = "medvae-model"


@dataclass
class ModelInfo:
    """What a model file says about itself (read without building the model)."""

    path: Path
    kind: str
    config: dict[str, Any]
    preprocessing: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    medvae_version: str = ""
    n_tensors: int = 0
    n_parameters: int = 0

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["path"] = str(self.path)
        return d


def _config_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config) if dataclasses.is_dataclass(config) else dict(config)


def save_model(
    path: str | os.PathLike,
    model,
    *,
    preprocessing: dict[str, Any] | None = None,
    training: dict[str, Any] | None = None,
) -> Path:
    """Write ``model`` (a registered medvae model) and its metadata to ``path``, atomically."""
    from safetensors.torch import save_file

    path = Path(path)
    # clone: parameters may be views of one training buffer, and safetensors refuses shared storage
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    metadata = {
        "format": FORMAT,
        "kind": model.kind,
        "config": json.dumps(_config_dict(model.config)),
        "preprocessing": json.dumps(preprocessing or {}),
        "training": json.dumps(training or {}),
        "medvae_version": __version__,
    }
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata=metadata)
    return path


def read_model_info(path: str | os.PathLike) -> ModelInfo:
    """Read a model file's metadata without torch.

    Raises:
        InputError: the file is missing, not safetensors, or not a medvae model; one line naming it.
    """
    from safetensors import safe_open

    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path}: is a folder; pass a model file (.safetensors)")
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        with safe_open(str(path), framework="numpy") as f:
            meta = f.metadata() or {}
            keys = list(f.keys())
            n_params = 0
            for k in keys:
                n = 1
                for s in f.get_slice(k).get_shape():
                    n *= s
                n_params += n
    except Exception as e:  # safetensors raises its own SafetensorError and OSError variants
        raise InputError(f"{path}: not a medvae model file (not readable as safetensors: {e})") from None
    if meta.get("format") != FORMAT or "kind" not in meta:
        raise InputError(f"{path}: a safetensors file but not a medvae model (no medvae metadata)")
    try:
        loads = {k: json.loads(meta.get(k) or "{}") for k in ("config", "preprocessing", "training")}
    except json.JSONDecodeError as e:
        raise InputError(f"{path}: medvae metadata is corrupt ({e})") from None
    return ModelInfo(
        path=path,
        kind=meta["kind"],
        medvae_version=meta.get("medvae_version", ""),
        n_tensors=len(keys),
        n_parameters=n_params,
        **loads,
    )


def load_model(path: str | os.PathLike, device: str = "cpu"):
    """Rebuild the model stored in ``path`` and load its weights; returns ``(model, info)``.

    Raises:
        InputError: not a medvae model, an unknown kind, or weights that do not fit the config.
    """
    from safetensors.torch import load_file

    from medvae.models import build_model

    info = read_model_info(path)
    model = build_model(info.kind, info.config)
    state = load_file(str(path), device=str(device))
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0:2]
        raise InputError(f"{path}: weights do not match the {info.kind} config ({' '.join(first)})") from None
    return model.to(device).eval(), info


#: the command that makes each kind of model, for messages
MADE_BY = {"vae": "train vae", "vaegan": "train vaegan", "synthesis": "train synthesis", "enhancer": "train enhance",
           "segmenter": "train segment"}


def load_model_of_kind(path: str | os.PathLike | None, kind: str, option: str = "model", device: str = "cpu"):
    """Load a medvae model file of ``kind`` (the packaged one when ``path`` is None); ``(model, info)``.

    ``option`` names the parameter the path came from, for the message when the file holds another kind.
    """
    from medvae.pretrained import packaged_model

    path = Path(path) if path is not None else packaged_model(kind)
    info = read_model_info(path)
    if info.kind != kind:
        made_by = f" (from 'medvae {MADE_BY[kind]}')" if kind in MADE_BY else ""
        raise UsageError(f"{option} {path}: is a {info.kind} model; pass a {kind} model{made_by}", param=option)
    return load_model(path, device)
