"""Models shipped inside the package, so ``medvae enhance`` and ``medvae segment`` work out of the box.

* ``enhancer.safetensors``: the chest X-ray VAE-U-Net;
* ``segmenter.safetensors``: the ResUNet++ lung segmenter.

Each was trained by medvae's own commands; the exact command, data and training record are in the
file's metadata (``medvae info medvae/pretrained/enhancer.safetensors``) and in the README.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from medvae.errors import InputError

FILES = {"enhancer": "enhancer.safetensors", "segmenter": "segmenter.safetensors"}


def packaged_model(kind: str) -> Path:
    """The path of the shipped model of ``kind`` (``"enhancer"`` or ``"segmenter"``)."""
    if kind not in FILES:
        raise InputError(f"medvae ships no {kind} model; pass one with --model")
    path = Path(str(files(__name__) / FILES[kind]))
    if not path.is_file():
        raise InputError(f"{path}: the packaged {kind} model is missing from this install; reinstall medvae "
                         "or pass a model with --model")
    return path
