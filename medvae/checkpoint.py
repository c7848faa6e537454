"""A medvae model is ONE ``.safetensors`` file: the weights plus string metadata.

Metadata keys (all strings; the structured ones hold JSON):

``format``          ``"medvae-model"`` (how :func:`read_model_info` recognises a medvae file)
``kind``            registry name, e.g. ``"mlp_vae"`` (see :mod:`medvae.models`)
``config``          the model's config dataclass, as JSON
``preprocessing``   what the model expects of its input (pipeline name, intensity scaling, shape)
``training``        the training record (epochs, losses, data, seed, timings)
``medvae_version``  the version that wrote the file

Loading never unpickles: safetensors holds only tensors and strings, and a file is checked before anything is
built from it (its header by hand, its metadata, its config against its tensors and the memory limit
``MEDVAE_MAX_MODEL_BYTES``, finite weights: :mod:`medvae.model_checks`), so every bad file is one line. The training state kept for
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
from medvae.errors import InputError, UsageError, first_line

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
    """Read a model file's metadata without torch (its header is checked by hand, see :mod:`medvae.model_checks`).

    Raises:
        InputError: the file is missing, not safetensors, not a medvae model, or its metadata is malformed;
            one line naming it.
    """
    return _read(Path(path))[0]


def _read(path: Path) -> tuple[ModelInfo, dict[str, tuple[str, tuple[int, ...]]]]:
    """:func:`read_model_info` and the file's tensors (name -> (dtype, shape)), from its header alone."""
    import math

    from medvae.model_checks import parse_metadata, read_header

    if path.is_dir():
        raise InputError(f"{path}: is a folder; pass a model file (.safetensors)")
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        meta, tensors = read_header(path)
    except OSError as e:
        raise InputError(f"{path}: cannot be read ({e.strerror or type(e).__name__})") from None
    if meta.get("format") != FORMAT or not meta.get("kind"):
        raise InputError(f"{path}: a safetensors file but not a medvae model (no medvae metadata)")
    parsed = parse_metadata(path, meta["kind"], meta)
    info = ModelInfo(
        path=path,
        kind=meta["kind"],
        medvae_version=meta.get("medvae_version", ""),
        n_tensors=len(tensors),
        n_parameters=sum(math.prod(shape) for _, shape in tensors.values()),
        **parsed,
    )
    return info, tensors


def load_model(path: str | os.PathLike, device: str = "cpu"):
    """Rebuild the model stored in ``path`` and load its weights; returns ``(model, info)``.

    Nothing is built or allocated before the file passes :mod:`medvae.model_checks`: a safetensors header,
    well-formed metadata, a config the model class accepts, whose parameter shapes are the file's and whose
    memory is within ``MEDVAE_MAX_MODEL_BYTES``; then the weights must all be finite.

    Raises:
        InputError: any of those fails: one line naming the file and the problem.
    """
    from safetensors.torch import load_file

    from medvae.model_checks import check_config, check_finite, invalid
    from medvae.models import build_model

    path = Path(path)
    info, tensors = _read(path)
    check_config(path, info.kind, info.config, info.preprocessing, tensors)
    try:
        state = load_file(str(path), device=str(device))
    except Exception as e:  # the header was checked: what is left is safetensors' own stricter checks, or I/O
        raise invalid(path, f"its tensors cannot be read: {first_line(e)}") from None
    check_finite(path, state)
    model = build_model(info.kind, info.config)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0:2]
        raise InputError(f"{path}: weights do not match the {info.kind} config ({' '.join(first)})") from None
    return model.to(device).eval(), info


#: the command that makes each kind of model, for messages
MADE_BY = {"vae": "train vae", "vaegan": "train vaegan", "synthesis": "train synthesis", "enhancer": "train enhance",
           "segmenter": "train segment", "cvae_gan": "train cvaegan",
           "tabular_cvae_gan": "train cvaegan --data table.csv --label COLUMN"}


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
