"""``medvae phantom brain``: paired multi-contrast brain phantoms with ground truth (see
:mod:`medvae.data.phantoms`). ``phantom cxr`` comes with the chest X-ray issue."""

from __future__ import annotations

import os
from pathlib import Path


def phantom_brain(subjects: int, out: str | os.PathLike, *, seed: int = 0, overwrite: bool = False,
                  progress: bool = True) -> list[Path]:
    """Write ``subjects`` phantom subjects as ``out/sub-NNN/{t1,t2,flair,cbf,mask}.nii.gz``.

    The layout is the one ``medvae train synthesis`` reads for real data (BraTS-style subject folders).
    """
    from medvae.data.phantoms import write_brain_phantoms

    return write_brain_phantoms(subjects, out, seed=seed, overwrite=overwrite, progress=progress)
