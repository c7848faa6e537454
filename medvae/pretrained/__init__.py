"""Models shipped inside the package, so ``medvae enhance`` and ``medvae segment`` work out of the box.

* ``enhancer.safetensors``: the chest X-ray VAE-U-Net, fine-tuned on real NIH ChestX-ray14 films (NIH Clinical
  Center; Wang et al., CVPR 2017) of 85 % of their patients;
* ``segmenter.safetensors``: the ResUNet++ lung segmenter, trained on 71 real films of 36 patients from the
  COVID-19 image data collection (Cohen et al., arXiv:2003.11597; CC BY 3.0/4.0) with V7 Labs lung masks
  (CC BY 4.0), which count the lung behind the heart as lung; its "frontal chest film" check is calibrated on
  300 NIH ChestX-ray14 films.

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
